"""The generated ELM, run by the reference CQL engine (npm cql-execution with cql-exec-fhir),
gives every fact it expresses the same value as the Python engine, over the same FHIR data:
on the example charts and on patients hypothesis makes up (birth dates on either side of the
service date, conditions coded in each system by any of its names, refuted ones, histology
extensions, codes with and without dots).

Needs node and the packages of tests/cql (`make test` installs them with `npm ci`). Without
them the tests are skipped, except under CI=true, where they fail.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from priorauth import PolicySet
from priorauth.adapters.cds import Chart, chart_request
from priorauth.adapters.cql import CqlLibrary, compile_policy
from priorauth.adapters.fhir.bundle import Rejected
from priorauth.engine.request import parse_request
from priorauth.errors import InvalidRequest
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
        "patients": [
            {
                "bundle": {
                    "resourceType": "Bundle",
                    "type": "collection",
                    "entry": [{"resource": r} for r in found],
                },
                "serviceDate": day.isoformat(),
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
    policy_id: str, found: list[dict[str, Any]], day: dt.date
) -> dict[str, Any] | None:
    """The engine's facts for the chart (an order of the policy's drug, no dose), or None when
    the mapping refuses the chart (the ELM is then not asked either)."""
    compiled = SHIPPED.get(policy_id)
    assert compiled is not None
    drug = compiled.policy.drugs[0]
    order = {
        "resourceType": "MedicationRequest",
        "id": "order-x",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": HCPCS, "code": drug.hcpcs[0]}]},
        "subject": {"reference": "Patient/pat-1"},
    }
    chart = Chart()
    for index, resource in enumerate(found):
        chart.add(resource, f"chart[{index}]")
    located = chart.add(order, "order")
    if any(p.blocking for p in chart.problems) or located is None:
        return None
    created = dt.datetime.combine(day, dt.time(12), dt.UTC)
    mapped = chart_request(located, chart, SHIPPED, patient_id="pat-1", created=created)
    if isinstance(mapped, Rejected) or mapped.request is None:
        return None
    try:
        determination = compiled.evaluate(parse_request(mapped.request), day)
    except InvalidRequest:
        return None
    return {name: fact.value for name, fact in determination.facts.items()}


def compare(policy_id: str, patients: list[tuple[list[dict[str, Any]], dt.date]]) -> int:
    """Assert the two engines agree on every compiled fact; returns how many were compared."""
    library = compile_policy(SHIPPED.get(policy_id).policy)  # type: ignore[union-attr]
    expected = [python_facts(policy_id, found, day) for found, day in patients]
    kept = [(p, e) for p, e in zip(patients, expected, strict=True) if e is not None]
    if not kept:
        return 0
    actual = run_elm(library, [p for p, _ in kept])
    compared = 0
    for (patient, facts), values in zip(kept, actual, strict=True):
        for name in library.defines:
            assert values.get(name) == facts[name], (policy_id, name, patient, values, facts)
            compared += 1
    return compared


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_the_examples_agree(name: str) -> None:
    read = ("Patient", "Condition", "Observation")
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
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_made_up_patients_agree(name: str, data: st.DataObject) -> None:
    patients = data.draw(st.lists(patient(name), min_size=1, max_size=25))
    compare(name, patients)
