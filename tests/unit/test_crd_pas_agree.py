"""CRD's answer at order time predicts what PAS decides for the same chart: satisfied exactly
when the PAS request is approved, no-auth exactly when no policy governs the drug, and the
form asks exactly the answerable questions the PAS determination leaves missing. Charts are
the shipped examples with any of their conditions, observations, medications and answers
taken out (hypothesis)."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from priorauth import PolicySet
from priorauth.adapters import cds
from priorauth.adapters.fhir import submit
from priorauth.adapters.fhir.bundle import Rejected
from priorauth.engine.answers import answerable
from priorauth.engine.request import parse_request
from tests.crd_fixtures import CHARTS, hook_call, other_drug

SHIPPED = PolicySet.from_directory()
CREATED = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)
REMOVABLE = ("Condition", "Observation", "MedicationStatement", "QuestionnaireResponse")


def crd_answer(bundle: dict[str, Any]) -> cds.OrderAnswer | None:
    call = cds.read_hook("priorauth-order-sign", hook_call(bundle))
    assert not isinstance(call, list), call
    (order,) = call.targets
    mapped = cds.chart_request(
        order, call.chart, SHIPPED, patient_id=call.patient_id, created=CREATED
    )
    if isinstance(mapped, Rejected) or mapped.request is None:
        return None
    parsed = parse_request(mapped.request)
    determination = SHIPPED.decide(parsed, CREATED.date(), mapped.request)
    compiled = SHIPPED.find(parsed.service)
    return cds.coverage_answer(
        determination,
        compiled,
        answerable(compiled.policy) if compiled else {},
        CREATED.date(),
        None,
        lambda facts: "Questionnaire/" + ",".join(facts),
    )


def as_pas(bundle: dict[str, Any]) -> dict[str, Any]:
    """The bundle as a PAS request made at the time of the hook call, its service date that
    of the order (none on the Claim item)."""
    changed = copy.deepcopy(bundle)
    claim = changed["entry"][0]["resource"]
    claim["created"] = CREATED.isoformat()
    for item in claim["item"]:
        item.pop("servicedDate", None)
        item.pop("servicedPeriod", None)
    return changed


@st.composite
def charts(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from(sorted(CHARTS)))
    bundle = CHARTS[name]()
    if draw(st.integers(0, 5)) == 0:
        bundle = other_drug(bundle)
    kept = []
    gone = set()
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] in REMOVABLE and draw(st.booleans()):
            gone.add(f"{resource['resourceType']}/{resource['id']}")
            continue
        kept.append(entry)
    bundle["entry"] = kept
    claim = bundle["entry"][0]["resource"]
    claim["diagnosis"] = [
        d
        for d in claim.get("diagnosis", [])
        if d.get("diagnosisReference", {}).get("reference") not in gone
    ]
    for index, diagnosis in enumerate(claim["diagnosis"]):
        diagnosis["sequence"] = index + 1
    if not claim["diagnosis"]:
        claim.pop("diagnosis")
    claim["supportingInfo"] = [
        i
        for i in claim.get("supportingInfo", [])
        if i.get("valueReference", {}).get("reference") not in gone
    ]
    if not claim["supportingInfo"]:
        claim.pop("supportingInfo")
    return bundle


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(bundle=charts())
def test_the_crd_answer_predicts_the_pas_determination(bundle: dict[str, Any]) -> None:
    answer = submit(as_pas(bundle), policies=SHIPPED, created=CREATED)
    assert answer.status == 200, answer.body
    (determination,) = answer.determinations
    assert determination is not None
    crd = crd_answer(bundle)
    assert crd is not None
    pa_needed = crd.coverage.pa_needed
    event(f"pa-needed {pa_needed}")
    assert (pa_needed == "satisfied") == (determination.outcome == "approved")
    assert (pa_needed == "no-auth") == ("no-policy" in determination.reasons)
    if determination.policy is not None:
        kinds = answerable(SHIPPED.get(determination.policy.id).policy)  # type: ignore[union-attr]
        missing = {m.fact for m in determination.missing if m.fact in kinds}
        assert set(crd.questions) == missing
        assert (crd.coverage.questionnaire is not None) == bool(missing)
