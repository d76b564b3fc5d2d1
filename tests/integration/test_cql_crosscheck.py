"""The generated ELM, run by the reference CQL engine (npm cql-execution with cql-exec-fhir),
gives every fact it expresses the same value as the Python engine, over the same FHIR data:
on the example charts and on patients hypothesis makes up (birth dates on either side of the
service date, conditions coded in each system by any of its names, refuted ones, histology
extensions, codes with and without dots; observations of every status, value type and dating;
weights, heights, BSAs, creatinine, clearances and lab values in units of their kind and of
another, with reference ranges; QuestionnaireResponses with answers of every type, nested and
contradicting), for every shipped policy and for a made-up one with every measure formula,
unit conversions, ULN readings and each type of question; and on boundaries written out.

The patients of one policy go to one node process (its start is most of the cost).

Needs node and the packages of tests/cql (`make test` installs them with `npm ci`). Without
them the tests are skipped, except under CI=true, where they fail.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from priorauth import PolicySet
from priorauth.adapters.cds import Chart, chart_request
from priorauth.adapters.cql import CqlLibrary, compile_policy
from priorauth.adapters.fhir.bundle import Rejected
from priorauth.engine.request import parse_request
from priorauth.errors import InvalidRequest
from priorauth.policy.model import AnswerFact, FactSpec, Policy
from tests.crd_fixtures import CHARTS, remove_condition, resources

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "tests" / "cql" / "run-elm.js"
MODULES = ROOT / "tests" / "cql" / "node_modules"
SHIPPED = PolicySet.from_directory()
HISTOLOGY = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-histology-morphology-behavior"
HCPCS = "https://bluebutton.cms.gov/resources/codesystem/hcpcs"


def _node_missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed (.ci/install-node installs Debian's nodejs and npm)"
    if not (MODULES / "cql-execution").is_dir() or not (MODULES / "cql-exec-fhir").is_dir():
        return "the npm packages of tests/cql are not installed (make test runs npm ci)"
    return None


# Each example is a node run (about a second): shrinking a failure would take minutes, so it
# is not shrunk; the assertion shows the patient as it was made.
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)

MISSING = _node_missing()
if MISSING is not None and os.environ.get("CI") == "true":
    raise RuntimeError(f"the ELM cross-check needs its parts under CI: {MISSING}")
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"ELM cross-check: {MISSING}")


def run_elm(
    library: CqlLibrary, patients: list[tuple[list[dict[str, Any]], dt.date]]
) -> list[dict[str, Any]]:
    """Each patient's define values from the reference engine."""
    payload = {
        "elm": library.elm,
        "defines": sorted(library.defines),
        "patients": [
            {
                "bundle": {
                    "resourceType": "Bundle",
                    "type": "collection",
                    "entry": [{"resource": r} for r in found],
                },
                "serviceDate": day.isoformat(),
                "orderId": ORDER_ID,
            }
            for found, day in patients
        ],
    }
    answer = subprocess.run(
        ["node", str(RUNNER)],
        input=json.dumps(payload).encode(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert answer.returncode == 0, answer.stderr.decode()
    results: list[dict[str, Any]] = json.loads(answer.stdout)
    return results


def python_facts(
    policy_id: str,
    found: list[dict[str, Any]],
    day: dt.date,
    policies: PolicySet = SHIPPED,
) -> dict[str, Any] | None:
    """The engine's facts for the chart with its order (the MedicationRequest `order-x`, see
    `with_order`), or None when the mapping or the request contract refuses the chart (the ELM
    is then not asked either)."""
    compiled = policies.get(policy_id)
    assert compiled is not None
    order = next(r for r in found if _is_order(r))
    chart = Chart()
    for index, resource in enumerate(r for r in found if not _is_order(r)):
        chart.add(resource, f"chart[{index}]")
    located = chart.add(order, "order")
    if any(p.blocking for p in chart.problems) or located is None:
        return None
    created = dt.datetime.combine(day, dt.time(12), dt.UTC)
    mapped = chart_request(located, chart, policies, patient_id="pat-1", created=created)
    if isinstance(mapped, Rejected) or mapped.request is None:
        return None
    try:
        request = parse_request(mapped.request)
        determination = compiled.evaluate(request, day)
    except InvalidRequest:
        return None
    facts: dict[str, Any] = {name: fact.value for name, fact in determination.facts.items()}
    # An attestable fact the form answered is the answer's, not the chart's: the library
    # pre-fills from the chart, so such a fact is not compared.
    for name in request.answers:
        if getattr(compiled.policy.facts.get(name), "attestable", False):
            facts[name] = ATTESTED
    return facts


ATTESTED = object()
ORDER_ID = "order-x"


def _is_order(resource: dict[str, Any]) -> bool:
    return resource["resourceType"] == "MedicationRequest" and resource.get("id") == ORDER_ID


def order_of(medication: dict[str, Any]) -> dict[str, Any]:
    """The order (its id is the library's `OrderId`), of a medication (`medication[x]`)."""
    return {
        "resourceType": "MedicationRequest",
        "id": ORDER_ID,
        "status": "draft",
        "intent": "order",
        **medication,
        "subject": {"reference": "Patient/pat-1"},
    }


def with_order(
    policy_id: str, found: list[dict[str, Any]], policies: PolicySet = SHIPPED
) -> list[dict[str, Any]]:
    """The chart with its order: the one it has, else an order of the policy's first drug by
    its HCPCS code, no dose."""
    if any(_is_order(r) for r in found):
        return found
    compiled = policies.get(policy_id)
    assert compiled is not None
    code = compiled.policy.drugs[0].hcpcs[0]
    medication = {"medicationCodeableConcept": {"coding": [{"system": HCPCS, "code": code}]}}
    return [*found, order_of(medication)]


# Where the two engines may differ in the last digits, and by how much (see `agree`).
CONVERTED = 1e-10


def agree(cql: Any, python: Any) -> bool:
    """Whether the reference engine's value is the Python engine's.

    Equal, except for numbers after a unit conversion: the engine keeps 12 significant digits
    of a converted value, cql-execution 8 decimal places (the library converts 10^12 of the
    unit to keep the factor's digits), so the values may differ by 1e-10 (relative to values
    above 1). Rounded measures (a body
    surface area, an estimated clearance) are held to the same: both engines compute in IEEE
    doubles in the same order, so they differ only if a converted input moves the unrounded
    value across a rounding half, which none of the values here does."""
    if isinstance(python, bool) or isinstance(cql, bool) or python is None or cql is None:
        return cql is python or (cql == python and type(cql) is type(python))
    if isinstance(python, int | float) and isinstance(cql, int | float):
        return abs(cql - python) <= CONVERTED * max(1.0, abs(python))
    return bool(cql == python)


@functools.cache
def _library(policy_id: str, policies: PolicySet) -> CqlLibrary:
    compiled = policies.get(policy_id)
    assert compiled is not None
    return compile_policy(compiled.policy)


def compare(
    policy_id: str,
    patients: list[tuple[list[dict[str, Any]], dt.date]],
    policies: PolicySet = SHIPPED,
) -> int:
    """Assert the two engines agree on every compiled fact; returns how many were compared."""
    library = _library(policy_id, policies)
    patients = [(with_order(policy_id, found, policies), day) for found, day in patients]
    expected = [python_facts(policy_id, found, day, policies) for found, day in patients]
    kept = [(p, e) for p, e in zip(patients, expected, strict=True) if e is not None]
    if not kept:
        return 0
    actual = run_elm(library, [p for p, _ in kept])
    compared = 0
    for (patient, facts), values in zip(kept, actual, strict=True):
        for name in library.defines:
            if facts[name] is ATTESTED:
                continue
            assert agree(values.get(name), facts[name]), (
                name,
                values.get(name),
                facts[name],
                patient,
            )
            compared += 1
    return compared


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_the_examples_agree(name: str) -> None:
    read = ("Patient", "Condition", "Observation", "QuestionnaireResponse")
    chart = [r for r in resources(CHARTS[name]()) if r["resourceType"] in read]
    unknown_site = [
        r for r in resources(remove_condition(CHARTS[name](), "C78")) if r["resourceType"] in read
    ]
    no_conditions = [r for r in chart if r["resourceType"] != "Condition"]
    patients = [
        (chart, dt.date(2026, 12, 1)),
        (unknown_site, dt.date(2026, 12, 1)),
        (no_conditions, dt.date(2026, 12, 1)),
        # The day before an 18th birthday, and on it.
        (chart, dt.date(1986, 3, 13)),
        (chart, dt.date(1986, 3, 14)),
        (chart, dt.date(1960, 1, 1)),
    ]
    assert compare(name, patients) > 0


# --- made-up patients ----------------------------------------------------------------------

ICD10 = ["http://hl7.org/fhir/sid/icd-10-cm", "urn:oid:2.16.840.1.113883.6.90", "icd-10-cm"]
LOINC = ["http://loinc.org", "http://loinc.org", "urn:oid:2.16.840.1.113883.6.1"]
ICDO3 = ["http://terminology.hl7.org/CodeSystem/icd-o-3"]
SNOMED = ["http://snomed.info/sct"]


def _codes_of(policy_id: str) -> list[str]:
    """Codes around the policy's code sets: matching ones (exact, under a stem, without the
    dot) and near misses."""
    compiled = SHIPPED.get(policy_id)
    assert compiled is not None
    found: set[str] = {"E11.9", "C34.90", "C77.3", "I10", "K52.9", "Z85.3"}
    for spec in compiled.policy.facts.values():
        for pattern in getattr(spec, "codes", []) if spec.kind == "condition" else []:
            if pattern.endswith("*"):
                stem = pattern[:-1].rstrip(".")
                found |= (
                    {f"{stem}.9", f"{stem}.01", f"{stem}9"}
                    if "." not in stem
                    else {
                        f"{stem}1",
                        f"{stem}9",
                    }
                )
            else:
                found |= {pattern, pattern.replace(".", "")}
    return sorted(c for c in found if "/" not in c)


@st.composite
def patient(draw: st.DrawFn, policy_id: str) -> tuple[list[dict[str, Any]], dt.date]:
    day = draw(st.dates(dt.date(2020, 1, 1), dt.date(2030, 12, 31)))
    person: dict[str, Any] = {"resourceType": "Patient", "id": "pat-1"}
    # Any birth date, some after the service date, some on the 18th birthday; one in ten
    # patients without one.
    eighteenth = day.replace(year=day.year - 18) if (day.month, day.day) != (2, 29) else day
    birth = draw(
        st.one_of(st.dates(dt.date(1920, 1, 1), dt.date(2035, 12, 31)), st.just(eighteenth))
    )
    if draw(st.integers(0, 9)) > 0:
        person["birthDate"] = birth.isoformat()
    gender = draw(st.sampled_from([None, "female", "male", "female", "male", "other", "unknown"]))
    if gender is not None:
        person["gender"] = gender
    found: list[dict[str, Any]] = [person]
    codes = _codes_of(policy_id)
    for index in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["icd10", "icd10", "icd10", "icdo3", "snomed"]))
        if kind == "icd10":
            coding = {"system": draw(st.sampled_from(ICD10)), "code": draw(st.sampled_from(codes))}
        elif kind == "icdo3":
            coding = {
                "system": ICDO3[0],
                "code": draw(st.sampled_from(["8852/3", "8140/3", "8850/3"])),
            }
        else:
            coding = {
                "system": SNOMED[0],
                "code": draw(st.sampled_from(["254837009", "363346000"])),
            }
        condition: dict[str, Any] = {
            "resourceType": "Condition",
            "id": f"cond-{index}",
            "subject": {"reference": "Patient/pat-1"},
            "code": {"coding": [coding]},
        }
        status = draw(
            st.sampled_from([None, "confirmed", "unconfirmed", "refuted", "entered-in-error"])
        )
        if status is not None:
            condition["verificationStatus"] = {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                        "code": status,
                    }
                ]
            }
        if draw(st.integers(0, 5)) == 0:
            condition["extension"] = [
                {
                    "url": HISTOLOGY,
                    "valueCodeableConcept": {
                        "coding": [
                            {
                                "system": ICDO3[0],
                                "code": draw(st.sampled_from(["8852/3", "8140/3"])),
                            }
                        ]
                    },
                }
            ]
        found.append(condition)
    loinc = _observation_codes(policy_id)
    for index in range(draw(st.integers(0, 4))):
        found.append(draw(observation(index, loinc, day)))
    for index in range(draw(st.integers(0, 5))):
        found.append(draw(measured(index, day)))
    questions = _questions(policy_id)
    for index in range(draw(st.integers(0, 2)) if questions else 0):
        found.append(draw(response(index, questions)))
    return found, day


def _observation_codes(policy_id: str) -> list[str]:
    compiled = SHIPPED.get(policy_id)
    assert compiled is not None
    codes = {"8302-2", "29463-7"}
    for spec in compiled.policy.facts.values():
        if spec.kind == "observation":
            codes |= set(getattr(spec, "codes", []))
    return sorted(codes)


SNOMED_RESULTS = ["260385009", "10828004", "82334004", "123456"]


@st.composite
def observation(draw: st.DrawFn, index: int, loinc: list[str], day: dt.date) -> dict[str, Any]:
    """An Observation coded in LOINC (sometimes after a SNOMED CT coding), of any status, with
    a value of any kind the mapping reads (or not), dated in any of the ways FHIR has."""
    codings = [{"system": draw(st.sampled_from(LOINC)), "code": draw(st.sampled_from(loinc))}]
    if draw(st.integers(0, 3)) == 0:
        codings.insert(0, {"system": SNOMED[0], "code": "252465000"})
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"obs-{index}",
        "status": draw(
            st.sampled_from(
                ["final", "final", "amended", "preliminary", "entered-in-error", "cancelled"]
            )
        ),
        "code": {"coding": codings},
        "subject": {"reference": "Patient/pat-1"},
    }
    kind = draw(
        st.sampled_from(["quantity", "quantity", "coded", "boolean", "integer", "string", "none"])
    )
    if kind == "quantity":
        quantity: dict[str, Any] = {
            "value": draw(st.sampled_from([-2.7, -2.5, -1.0, 0, 1.5, 9.4, 10.2, 2]))
        }
        unit = draw(st.sampled_from([None, "{T-score}", "mg/dL"]))
        if unit is not None:
            quantity |= {"unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
        if draw(st.integers(0, 7)) == 0:
            quantity["comparator"] = "<"
        resource["valueQuantity"] = quantity
    elif kind == "coded":
        system = draw(st.sampled_from([SNOMED[0], "http://loinc.org"]))
        code = draw(st.sampled_from([*SNOMED_RESULTS, "LA6577-6"]))
        resource["valueCodeableConcept"] = {"coding": [{"system": system, "code": code}]}
    elif kind == "boolean":
        resource["valueBoolean"] = draw(st.booleans())
    elif kind == "integer":
        resource["valueInteger"] = draw(st.integers(-5, 5))
    elif kind == "string":
        resource["valueString"] = draw(st.sampled_from(["negative", "see report", "x" * 201]))
    when = draw(st.sampled_from(["dateTime", "period", "issued", "none"]))
    on = day - dt.timedelta(days=draw(st.integers(-40, 800)))
    if when == "dateTime":
        resource["effectiveDateTime"] = on.isoformat()
    elif when == "period":
        resource["effectivePeriod"] = {"start": on.isoformat()}
    elif when == "issued":
        resource["issued"] = f"{on.isoformat()}T10:00:00Z"
    return resource


@pytest.mark.parametrize("name", [*sorted(CHARTS), "denosumab"])
@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow], phases=NO_SHRINK
)
@given(data=st.data())
def test_made_up_patients_agree(name: str, data: st.DataObject) -> None:
    patients = data.draw(st.lists(patient(name), min_size=1, max_size=25))
    compare(name, patients)


# Measures and unit conversions: codes, with units of their kind (and a few of another) and
# values around the plausible and physical limits.
MEASURED: dict[str, tuple[list[str], list[float]]] = {
    "29463-7": (["kg", "g", "[lb_av]", "lb", "[oz_av]"], [24.9, 25, 70.3, 80, 55.1, 150, 350, 351]),
    "3141-9": (["kg", "[lb_av]"], [3.2, 61.25, 400]),
    "8302-2": (["cm", "m", "[in_i]", "in", "mm"], [1.7, 65, 99.9, 100, 170.2, 250, 1702]),
    "8308-9": (["cm", "[in_i]"], [64, 180]),
    "8277-6": (["m2"], [0.79, 0.8, 1.865, 2.155, 3.5, 3.6]),
    "2160-0": (["mg/dL", "umol/L", "mmol/L", "mg/L"], [0.09, 0.1, 0.85, 1.3, 30, 88.4, 123.456]),
    "14682-9": (["umol/L", "mg/dL"], [70, 265.2, 2.9]),
    "2164-2": (["mL/min", "mL/s"], [0, 45.5, 1.2, 300, 301]),
    "17861-6": (["mg/dL", "mmol/L", "mg/L"], [2.99, 3, 9.4, 2.5, 0.75, 25, 25.1, 100]),
    "46099-8": (["mg/dL", "mmol/L"], [1.2, 4.8]),
    "718-7": (["g/dL", "g/L"], [0.9, 1, 13.5, 135, 25, 26]),
    "777-3": (["10*3/uL", "/uL"], [0, 1.8, 250, 250000]),
    "1742-6": (["U/L", "ukat/L"], [-1, 0, 20, 45, 120, 0.75]),
}


@st.composite
def measured(draw: st.DrawFn, index: int, day: dt.date) -> dict[str, Any]:
    """An Observation a measure or a unit conversion reads, of any status and dating, in a
    unit of its kind or not, now and then with a comparator or no unit at all."""
    code = draw(st.sampled_from(sorted(MEASURED)))
    units, values = MEASURED[code]
    quantity: dict[str, Any] = {"value": draw(st.sampled_from(values))}
    unit = draw(st.sampled_from([*units, *units, *units, "mg/dL", None, "{score}"]))
    if unit is not None:
        spelt = draw(st.sampled_from(["code", "code", "unit", "both"]))
        if spelt in ("code", "both"):
            quantity |= {"system": "http://unitsofmeasure.org", "code": unit}
        if spelt in ("unit", "both"):
            quantity["unit"] = f" {unit}" if spelt == "unit" and draw(st.booleans()) else unit
    if draw(st.integers(0, 11)) == 0:
        quantity["comparator"] = ">"
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"measure-{index}",
        "status": draw(st.sampled_from(["final", "final", "amended", "entered-in-error"])),
        "code": {"coding": [{"system": draw(st.sampled_from(LOINC)), "code": code}]},
        "subject": {"reference": "Patient/pat-1"},
        "valueQuantity": quantity,
    }
    ranges = []
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2]))):
        limit: dict[str, Any] = {}
        if draw(st.integers(0, 5)) > 0:
            limit["value"] = draw(st.sampled_from([0, 40, 45, 0.67, 3]))
            limit_unit: str | None = draw(
                st.sampled_from([unit, unit, "U/L", "ukat/L", "mg/dL", None, "{ULN}"])
            )
            if limit_unit is not None:
                limit |= {"system": "http://unitsofmeasure.org", "code": limit_unit}
        ranges.append({"high": limit} if limit else {"low": {"value": 1}})
    if ranges:
        resource["referenceRange"] = ranges
    when = draw(st.sampled_from(["dateTime", "dateTime", "period", "none"]))
    on = day - dt.timedelta(
        days=draw(st.sampled_from([-3, 0, 1, 29, 30, 31, 59, 60, 61, 89, 90, 91, 400]))
    )
    if when == "dateTime":
        resource["effectiveDateTime"] = on.isoformat()
    elif when == "period":
        resource["effectivePeriod"] = {"start": on.isoformat()}
    return resource


def _questions(policy_id: str) -> dict[str, str]:
    """The policy's questions of kind `answer`, each with its type."""
    compiled = SHIPPED.get(policy_id)
    assert compiled is not None
    return _typed(compiled.policy)


def _typed(policy: Policy) -> dict[str, str]:
    return {name: spec.type for name, spec in policy.facts.items() if isinstance(spec, AnswerFact)}


LOINC_ANSWERS = "http://loinc.org"
YES_NO_V2 = "http://terminology.hl7.org/CodeSystem/v2-0136"


# The answer types that suit each type of question (another type refuses the whole chart).
SUITED = {
    "boolean": ["boolean", "coding"],
    "number": ["decimal", "integer"],
    "choice": ["string", "coding"],
    "date": ["date", "dateTime"],
    "text": ["string", "coding"],
}


@st.composite
def answer_value(draw: st.DrawFn, question: str | None = None) -> dict[str, Any]:
    """One answer of any type a QuestionnaireResponse may carry; mostly of a type that suits
    the question (`question`: its type)."""
    kinds = ["boolean", "boolean", "decimal", "integer", "date", "dateTime", "coding", "string"]
    if question is not None and draw(st.integers(0, 4)) > 0:
        kinds = SUITED[question]
    kind = draw(st.sampled_from(kinds))
    if kind == "boolean":
        return {"valueBoolean": draw(st.booleans())}
    if kind == "decimal":
        return {"valueDecimal": draw(st.sampled_from([0, 1, 1.0, 2.5, 19.99, 20, -3]))}
    if kind == "integer":
        return {"valueInteger": draw(st.sampled_from([0, 1, 2, 20]))}
    if kind == "date":
        return {"valueDate": draw(st.sampled_from(["2026-03-14", "2026-03", "2026"]))}
    if kind == "dateTime":
        return {
            "valueDateTime": draw(
                st.sampled_from(["2026-03-14T10:00:00Z", "2026-03-14T23:30:00-05:00", "2026-03"])
            )
        }
    if kind == "coding":
        system, code = draw(
            st.sampled_from(
                [
                    (LOINC_ANSWERS, "LA33-6"),
                    (LOINC_ANSWERS, "LA32-8"),
                    (YES_NO_V2, "Y"),
                    (YES_NO_V2, "N"),
                    (SNOMED[0], "260385009"),
                    (SNOMED[0], "123456"),
                    (LOINC_ANSWERS, "LA6577-6"),
                ]
            )
        )
        return {"valueCoding": {"system": system, "code": code}}
    text = draw(st.sampled_from(["A", "b", "  c ", "None", "none", "x" * 600, "yes", "2026-03-14"]))
    return {"valueString": text}


@st.composite
def item(draw: st.DrawFn, questions: dict[str, str], depth: int) -> dict[str, Any]:
    """An item answering one of the questions (or another linkId), with nested items."""
    link = draw(st.sampled_from([*questions, *questions, "other_question", "3.1"]))
    found: dict[str, Any] = {"linkId": link}
    answers = [
        draw(answer_value(questions.get(link))) for _ in range(draw(st.sampled_from([0, 1, 1, 2])))
    ]
    if answers and depth < 3 and draw(st.integers(0, 4)) == 0:
        answers[0]["item"] = [draw(item(questions, depth + 1))]
    if answers:
        found["answer"] = answers
    if depth < 3 and draw(st.integers(0, 4)) == 0:
        found["item"] = [draw(item(questions, depth + 1))]
    return found


@st.composite
def response(draw: st.DrawFn, index: int, questions: dict[str, str]) -> dict[str, Any]:
    """A QuestionnaireResponse of any status answering some of the policy's questions."""
    return {
        "resourceType": "QuestionnaireResponse",
        "id": f"qr-{index}",
        "status": draw(
            st.sampled_from(["completed", "completed", "in-progress", "entered-in-error"])
        ),
        "subject": {"reference": "Patient/pat-1"},
        "item": [draw(item(questions, 0)) for _ in range(draw(st.integers(1, 3)))],
    }


# --- a made-up policy with every measure and conversion the shipped ones lack -------------


def _made_up_policy() -> Policy:
    compiled = SHIPPED.get("denosumab")
    assert compiled is not None
    policy = compiled.policy
    facts: dict[str, Any] = {
        "bsa_mosteller": {"function": "body-surface-area", "cap_m2": 2.0, "within_days": 60},
        "bsa_dubois": {"function": "body-surface-area", "formula": "dubois"},
        "bsa_haycock": {"function": "body-surface-area", "formula": "haycock", "within_days": 30},
        "bsa_gehan": {"function": "body-surface-area", "formula": "gehan-george"},
        "bsa_boyd": {"function": "body-surface-area", "formula": "boyd", "within_days": 90},
        "weight": {"function": "body-weight", "within_days": 30},
        "weight_any_time": {"function": "body-weight"},
        "clearance": {"function": "creatinine-clearance", "within_days": 90},
    }
    specs: dict[str, Any] = {
        name: {"kind": "measure", "question": "?", **spec} for name, spec in facts.items()
    }
    specs |= {
        "calcium_mg_dl": {
            "kind": "observation",
            "codes": ["17861-6", "46099-8"],
            "unit": "mg/dL",
            "within_days": 30,
        },
        "calcium_mg_l": {"kind": "observation", "codes": ["17861-6"], "unit": "mg/L"},
        "weight_lb": {"kind": "observation", "codes": ["29463-7", "3141-9"], "unit": "[lb_av]"},
        "height_in": {"kind": "observation", "codes": ["8302-2"], "unit": "in", "within_days": 60},
        "hemoglobin": {"kind": "observation", "codes": ["718-7"], "unit": "g/L"},
        "platelets": {"kind": "observation", "codes": ["777-3"], "unit": "10*3/uL"},
        "creatinine_as_given": {"kind": "observation", "codes": ["2160-0"]},
        "alt_uln": {"kind": "observation", "codes": ["1742-6"], "unit": "{ULN}"},
        "creatinine_uln": {
            "kind": "observation",
            "codes": ["2160-0", "14682-9"],
            "unit": "{ULN}",
            "within_days": 30,
        },
        "yes_no": {"kind": "answer", "question": "?"},
        "how_many": {"kind": "answer", "type": "number", "question": "?"},
        "which": {
            "kind": "answer",
            "type": "choice",
            "choices": ["A", "B", "none"],
            "question": "?",
        },
        "when": {"kind": "answer", "type": "date", "question": "?"},
        "what": {"kind": "answer", "type": "text", "question": "?"},
    }
    for spec in specs.values():
        spec.setdefault("question", "?")
    adapter: TypeAdapter[Any] = TypeAdapter(FactSpec)
    parsed = {name: adapter.validate_python(spec) for name, spec in specs.items()}
    return policy.model_copy(update={"id": "made-up", "facts": {**policy.facts, **parsed}})


MADE_UP = _made_up_policy()
MADE_UP_SET = PolicySet([MADE_UP])


@st.composite
def measured_patient(draw: st.DrawFn) -> tuple[list[dict[str, Any]], dt.date]:
    """A patient of any age and sex with measures, conversions and answers to read."""
    day = draw(st.dates(dt.date(2024, 1, 1), dt.date(2028, 12, 31)))
    person: dict[str, Any] = {"resourceType": "Patient", "id": "pat-1"}
    eighteenth = day.replace(year=day.year - 18) if (day.month, day.day) != (2, 29) else day
    birth = draw(st.one_of(st.dates(dt.date(1925, 1, 1), day), st.just(eighteenth)))
    if draw(st.integers(0, 9)) > 0:
        person["birthDate"] = birth.isoformat()
    gender = draw(st.sampled_from([None, "female", "male", "female", "male", "unknown"]))
    if gender is not None:
        person["gender"] = gender
    found: list[dict[str, Any]] = [person]
    for index in range(draw(st.integers(1, 9))):
        found.append(draw(measured(index, day)))
    questions = _typed(MADE_UP)
    for index in range(draw(st.integers(0, 2))):
        found.append(draw(response(index, questions)))
    return found, day


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow], phases=NO_SHRINK
)
@given(patients=st.lists(measured_patient(), min_size=30, max_size=40))
def test_measures_conversions_and_answers_agree(patients: list[Any]) -> None:
    compare("made-up", patients, MADE_UP_SET)


# --- the order: the product it asks for -----------------------------------------------------

# Systems of an order's medication codings: each by URI and by short name in another case, one
# the mapping does not know, none.
PRODUCT_SYSTEMS = [
    HCPCS,
    "HCPCS",
    "http://www.ama-assn.org/go/cpt",
    "cpt",
    "http://hl7.org/fhir/sid/ndc",
    "NDC",
    "http://www.nlm.nih.gov/research/umls/rxnorm",
    "http://example.org/product",
    None,
]
# Codes around the listed ones: in upper and lower case, a CPT code, NDCs of the listed product
# in every form (11 digits, 4-4-2, 5-3-2, 5-4-1, 5-4-2), of another product, and not NDCs.
PRODUCT_CODES = [
    *("J9179", "j9179", "Q5103", "q5103", "Q5121", "J1745", "96413", "J0897"),
    *("62856038901", "62856-389-01", "62856-0389-1", "62856-0389-01", "2856-0389-01"),
    *("02856-0389-01", "62856-0390-01", "62856-0389", "6285603890", "1234", "1723"),
]


@st.composite
def ordered(draw: st.DrawFn) -> dict[str, Any]:
    """An order's medication: codings of any system and code, or (one in ten) a reference
    the library does not resolve."""
    if draw(st.integers(0, 9)) == 0:
        return order_of({"medicationReference": {"reference": "Medication/med-1"}})
    codings = []
    for _ in range(draw(st.integers(1, 3))):
        coding = {"code": draw(st.sampled_from(PRODUCT_CODES))}
        system = draw(st.sampled_from(PRODUCT_SYSTEMS))
        if system is not None:
            coding["system"] = system
        codings.append(coding)
    return order_of({"medicationCodeableConcept": {"coding": codings}})


def _products_policy() -> Policy:
    """Infliximab's policy (whose preferred products a `product` fact without codes reads)
    with products listed in every system and NDC form."""
    compiled = SHIPPED.get("infliximab")
    assert compiled is not None
    adapter: TypeAdapter[Any] = TypeAdapter(FactSpec)
    codes = [
        {"system": "ndc", "code": "62856-0389"},
        {"system": "ndc", "code": "2856038901"},
        {"system": "hcpcs", "code": "J9179"},
        {"system": "cpt", "code": "96413"},
        {"system": "rxnorm", "code": "1723"},
    ]
    facts = {
        "listed": adapter.validate_python({"kind": "product", "codes": codes, "question": "?"}),
        # A package in 4-4-2 form, and one that is not an NDC (it matches nothing).
        "package": adapter.validate_python(
            {
                "kind": "product",
                "codes": [{"system": "ndc", "code": "2856-0389-01"}, codes[1]],
                "question": "?",
            }
        ),
    }
    return compiled.policy.model_copy(
        update={"id": "products", "facts": {**compiled.policy.facts, **facts}, "safety": None}
    )


PRODUCTS_SET = PolicySet([_products_policy()])


def test_the_product_reads_the_order() -> None:
    library = _library("products", PRODUCTS_SET)
    assert {"listed", "package", "preferred_product"} <= set(library.defines)
    assert 'parameter "OrderId" String' in library.cql
    person = {"resourceType": "Patient", "id": "pat-1"}
    day = dt.date(2026, 12, 1)

    def order(*codings: tuple[str, str]) -> dict[str, Any]:
        concept = {"coding": [{"system": s, "code": c} for s, c in codings]}
        return order_of({"medicationCodeableConcept": concept})

    charts = [
        [person, order(("NDC", "62856-389-01"))],
        [person, order(("hcpcs", "q5121"))],
        [person, order(("cpt", "Q5103"))],
        [person, order(("hcpcs", "J1745"))],
    ]
    python = [python_facts("products", found, day, PRODUCTS_SET) for found in charts]
    assert [p and (p["listed"], p["preferred_product"]) for p in python] == [
        (True, False),
        (False, True),
        (False, True),
        (False, False),
    ]
    assert compare("products", [(found, day) for found in charts], PRODUCTS_SET) > 12
    # What the library does not read is unknown: a medication by reference, an order it is
    # not given (no OrderId matches), an NDC that is not one, no coding in a known system.
    unread = [
        [person, order_of({"medicationReference": {"reference": "Medication/med-1"}})],
        [person, order_of({"medicationCodeableConcept": {"coding": [{"code": "Q5121"}]}})],
        [person, order(("hcpcs", "Q5121"), ("ndc", "1234"))],
        [person, order(("http://example.org/product", "Q5121"))],
        [person, {**order(("hcpcs", "Q5121")), "id": "another"}],
    ]
    for values in run_elm(library, [(found, day) for found in unread]):
        assert values["listed"] is None and values["preferred_product"] is None, values


@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow], phases=NO_SHRINK
)
@given(
    charts=st.lists(
        st.tuples(ordered(), st.dates(dt.date(2024, 1, 1), dt.date(2028, 12, 31))),
        min_size=30,
        max_size=40,
    )
)
def test_made_up_orders_agree(charts: list[tuple[dict[str, Any], dt.date]]) -> None:
    person = {"resourceType": "Patient", "id": "pat-1", "birthDate": "1970-01-01"}
    compare("products", [([person, order], day) for order, day in charts], PRODUCTS_SET)


# --- boundaries, written out ---------------------------------------------------------------


def _person(birth: str | None = "1960-05-20", gender: str | None = "female") -> dict[str, Any]:
    found: dict[str, Any] = {"resourceType": "Patient", "id": "pat-1"}
    if birth is not None:
        found["birthDate"] = birth
    if gender is not None:
        found["gender"] = gender
    return found


def _quantity(
    index: int, code: str, value: float, unit: str | None, on: dt.date | None
) -> dict[str, Any]:
    quantity: dict[str, Any] = {"value": value}
    if unit is not None:
        quantity |= {"system": "http://unitsofmeasure.org", "code": unit}
    found: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"q-{index}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": "Patient/pat-1"},
        "valueQuantity": quantity,
    }
    if on is not None:
        found["effectiveDateTime"] = on.isoformat()
    return found


_RESPONSES = itertools.count()


def _answers(*items: tuple[str, dict[str, Any]], status: str = "completed") -> dict[str, Any]:
    return {
        "resourceType": "QuestionnaireResponse",
        "id": f"qr-{next(_RESPONSES)}",
        "status": status,
        "subject": {"reference": "Patient/pat-1"},
        "item": [{"linkId": link, "answer": [value]} for link, value in items],
    }


DAY = dt.date(2026, 6, 1)


def test_the_latest_of_two_same_day_values_is_the_later_in_the_chart() -> None:
    """cql-execution's `sort by` orders equal dates at random: the library must not use it."""
    same_day = DAY - dt.timedelta(days=10)
    patients = [
        (
            [
                _person(),
                _quantity(0, "38267-1", -2.4, None, same_day),
                _quantity(1, "38267-1", -2.6, None, same_day),
            ],
            DAY,
        ),
        (
            [
                _person(),
                _quantity(0, "38267-1", -2.6, None, same_day),
                _quantity(1, "38267-1", -2.4, None, same_day),
            ],
            DAY,
        ),
        (
            [
                _person(),
                _quantity(0, "38267-1", -1.0, None, None),
                _quantity(1, "38267-1", -3.0, None, None),
            ],
            DAY,
        ),
        (
            [
                _person(),
                _quantity(0, "38267-1", -3.0, None, None),
                _quantity(1, "38267-1", -1.0, None, same_day),
                _quantity(2, "38267-1", -2.0, None, None),
            ],
            DAY,
        ),
    ]
    compiled = SHIPPED.get("denosumab")
    assert compiled is not None
    assert compare("denosumab", patients) == 4 * len(compile_policy(compiled.policy).defines)


def test_measure_and_unit_boundaries_agree() -> None:
    on = DAY - dt.timedelta(days=5)
    adult = "2008-06-01"  # 18 on the service date
    child = "2008-06-02"  # 17 on the service date
    patients: list[tuple[list[dict[str, Any]], dt.date]] = []
    # Weights at the adult plausibility limit (25 kg), in kg and in pounds, adult and child.
    for birth in (adult, child, None):
        for value, unit in (
            (25, "kg"),
            (24.9, "kg"),
            (55.1, "[lb_av]"),
            (55.2, "[lb_av]"),
            (24900, "g"),
        ):
            patients.append(
                (
                    [
                        _person(birth),
                        _quantity(0, "29463-7", value, unit, on),
                        _quantity(1, "8302-2", 170, "cm", on),
                    ],
                    DAY,
                )
            )
    # Serum calcium at 3 and 25 mg/dL, by mass and by amount.
    for value, unit in (
        (3, "mg/dL"),
        (2.99, "mg/dL"),
        (25, "mg/dL"),
        (25.1, "mg/dL"),
        (0.75, "mmol/L"),
        (0.74, "mmol/L"),
        (2.5, "mmol/L"),
        (94, "mg/L"),
    ):
        patients.append(([_person(), _quantity(0, "17861-6", value, unit, on)], DAY))
    # Dated on the last day of the window, and the day before it.
    for days in (29, 30, 31):
        when = DAY - dt.timedelta(days=days)
        patients.append(
            (
                [
                    _person(),
                    _quantity(0, "29463-7", 70, "kg", when),
                    _quantity(1, "17861-6", 9.5, "mg/dL", when),
                ],
                DAY,
            )
        )
    # Creatinine clearance: measured, estimated for each sex, without a sex, by amount.
    for gender in ("female", "male", "unknown", None):
        for value, unit in ((1.0, "mg/dL"), (88.4, "umol/L"), (0.1, "mg/dL")):
            patients.append(
                (
                    [
                        _person("1950-01-01", gender),
                        _quantity(0, "2160-0", value, unit, on),
                        _quantity(1, "29463-7", 72.5, "kg", on),
                    ],
                    DAY,
                )
            )
    patients.append(
        (
            [
                _person(),
                _quantity(0, "2164-2", 45.5, "mL/min", on),
                _quantity(1, "2160-0", 1.0, "mg/dL", on),
            ],
            DAY,
        )
    )
    # A measured BSA on a rounding half, above the cap, and height and weight that give one.
    for value in (2.155, 1.865, 2.5):
        patients.append(([_person(), _quantity(0, "8277-6", value, "m2", on)], DAY))
    patients.append(
        (
            [
                _person(),
                _quantity(0, "8302-2", 72, "[in_i]", on),
                _quantity(1, "29463-7", 180, "[lb_av]", on),
            ],
            DAY,
        )
    )
    assert compare("made-up", patients, MADE_UP_SET) > 0


def test_answers_agree() -> None:
    patients = [
        (
            [
                _person(),
                _answers(("yes_no", {"valueBoolean": True}), ("how_many", {"valueDecimal": 2.5})),
            ],
            DAY,
        ),
        # Two responses that disagree leave the question unknown; that agree, answered.
        (
            [
                _person(),
                _answers(("yes_no", {"valueBoolean": True})),
                _answers(("yes_no", {"valueBoolean": False})),
            ],
            DAY,
        ),
        (
            [
                _person(),
                _answers(("how_many", {"valueInteger": 2})),
                _answers(("how_many", {"valueDecimal": 2.0})),
            ],
            DAY,
        ),
        # Entered in error: not read.
        ([_person(), _answers(("yes_no", {"valueBoolean": True}), status="entered-in-error")], DAY),
        # Coded yes/no, a choice spelt otherwise, a date, a partial date, text.
        (
            [
                _person(),
                _answers(
                    ("yes_no", {"valueCoding": {"system": "http://loinc.org", "code": "LA32-8"}}),
                    ("which", {"valueString": "  NONE "}),
                    ("when", {"valueDate": "2026-03-14"}),
                    ("what", {"valueString": "see the notes"}),
                ),
            ],
            DAY,
        ),
        (
            [
                _person(),
                _answers(
                    ("when", {"valueDate": "2026-03"}),
                    ("which", {"valueCoding": {"system": "http://snomed.info/sct", "code": "B"}}),
                ),
            ],
            DAY,
        ),
        ([_person()], DAY),
    ]
    assert compare("made-up", patients, MADE_UP_SET) > 0
