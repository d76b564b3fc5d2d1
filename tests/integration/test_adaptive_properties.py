"""Adaptive forms, any answers: whatever a prescriber answers (or leaves unanswered), the form
completes within as many `$next-question` calls as the policy has facts, and never asks a
question twice. Driven through the service's use cases on a real database."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from priorauth.adapters.fhir.adaptive import OUTCOME_ITEM, RECORD_ITEM
from priorauth.policy.model import AnswerFact
from priorauth.service.crd import CrdService
from tests.crd_fixtures import resources
from tests.integration.test_adaptive_api import open_chart
from tests.service_fixtures import TOKENS, Env

BASE = "http://payer.test/fhir"


def answer_for(item: dict[str, Any], spec: Any, draw: Any) -> dict[str, Any] | None:
    """An answer of the item's type (or none: left unanswered)."""
    if draw(st.booleans()):
        return None
    kind = item["type"]
    if kind == "boolean":
        return {"valueBoolean": draw(st.booleans())}
    if kind == "integer":
        return {"valueInteger": draw(st.integers(0, 4))}
    if kind == "decimal":
        return {"valueDecimal": draw(st.floats(-4, 40, allow_nan=False).map(lambda x: round(x, 1)))}
    if kind == "choice":
        assert isinstance(spec, AnswerFact)
        return {"valueCoding": {"code": draw(st.sampled_from(spec.choices))}}
    if kind == "date":
        day = draw(st.dates(dt.date(2020, 1, 1), dt.date(2026, 11, 25)))
        return {"valueDate": day.isoformat()}
    return {"valueString": draw(st.sampled_from(["negative", "positive", "yes", "unknown"]))}


def start(crd: CrdService, actor: Any, policy: str, with_chart: bool) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": "questionnaire", "valueCanonical": f"{BASE}/Questionnaire/{policy}.adaptive"}
    ]
    if with_chart:
        for resource in resources(open_chart(policy)):
            if resource["resourceType"] not in ("Claim", "QuestionnaireResponse"):
                name = "order" if resource["resourceType"] == "MedicationRequest" else "data"
                parameters.append({"name": name, "resource": resource})
    answer = crd.questionnaire_package(
        actor, json.dumps({"resourceType": "Parameters", "parameter": parameters}).encode(), BASE
    )
    assert answer.status == 200, answer.body
    bundle = answer.body["parameter"][0]["resource"]
    response: dict[str, Any] = bundle["entry"][-1]["resource"]
    return response


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    policy=st.sampled_from(["denosumab", "eribulin", "infliximab", "ixempra"]),
    with_chart=st.booleans(),
    data=st.data(),
)
def test_any_answers_complete_in_bounded_steps_asking_each_question_once(
    env: Env, policy: str, with_chart: bool, data: st.DataObject
) -> None:
    crd = CrdService(env.service)
    actor = env.service.authenticate(TOKENS["clinic"])
    facts = env.service.policies.get(policy).policy.facts  # type: ignore[union-attr]
    response = start(crd, actor, policy, with_chart)
    asked: list[str] = []
    for _ in range(len(facts)):
        answer = crd.next_question(actor, json.dumps(response).encode(), BASE)
        assert answer.status == 200, answer.body
        response = answer.body
        QuestionnaireResponse.model_validate(response)
        (contained,) = response["contained"]
        now = [
            i["linkId"]
            for i in contained.get("item", ())
            if i["linkId"] not in (RECORD_ITEM, OUTCOME_ITEM)
        ]
        added = now[len(asked) :]
        assert now[: len(asked)] == asked
        assert not set(added) & set(asked), "a question asked twice"
        asked = now
        if response["status"] == "completed":
            assert added == []
            return
        assert added
        items = {i["linkId"]: i for i in contained["item"]}
        for item in response["item"]:
            if item["linkId"] in added:
                given_answer = answer_for(items[item["linkId"]], facts[item["linkId"]], data.draw)
                if given_answer is not None:
                    item["answer"] = [given_answer]
    pytest.fail(f"not completed within {len(facts)} calls (the policy's facts)")
