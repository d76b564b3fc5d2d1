"""Answers are checked against the policy's questions: ids it asks, values of the right kind."""

from __future__ import annotations

from typing import Any

import pytest

from priorauth import InvalidRequest, PolicySet
from priorauth.engine.answers import answerable
from tests.unit.builders import compiled, decide, policy, request

FACTS = {
    "ecog": {"kind": "answer", "type": "number", "question": "What is the ECOG score?"},
    "her2_status": {
        "kind": "answer",
        "type": "choice",
        "choices": ["HER2-positive", "HER2-negative", "HER2-low"],
        "question": "What is the HER2 status?",
    },
    "diagnosed_on": {"kind": "answer", "type": "date", "question": "When was it diagnosed?"},
    "why": {"kind": "answer", "type": "text", "question": "Why this drug?"},
    "progressed": {"kind": "answer", "question": "Has the disease progressed?"},
    "metastatic": {
        "kind": "condition",
        "codes": ["C78.*"],
        "attestable": True,
        "question": "Is the disease metastatic?",
    },
    "anc": {
        "kind": "observation",
        "codes": ["751-8"],
        "unit": "/uL",
        "attestable": True,
        "question": "What is the ANC?",
    },
    "marker": {
        "kind": "observation",
        "codes": ["85319-2"],
        "attestable": True,
        "question": "What is the marker?",
    },
    "prior": {
        "kind": "medication-history",
        "classes": ["taxanes"],
        "attestable": True,
        "question": "How many taxanes?",
    },
    "age": {"kind": "age", "question": "What is the date of birth?"},
}
PARTS = {"agent_classes": {"taxanes": {"agents": ["paclitaxel"]}}}
POLICY = compiled(FACTS, **PARTS)


def problems(answers: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidRequest) as raised:
        decide(POLICY, request(answers=answers))
    return {p.field: p.message for p in raised.value.problems}


def test_the_questions_a_request_may_answer() -> None:
    assert answerable(policy(FACTS, **PARTS)) == {
        "ecog": "number",
        "her2_status": "choice",
        "diagnosed_on": "date",
        "why": "text",
        "progressed": "boolean",
        "metastatic": "boolean",
        "anc": "number",
        "marker": "any",
        "prior": "number",
    }


def test_good_answers_are_taken() -> None:
    answers = {
        "ecog": 1,
        "her2_status": "her2-low",
        "diagnosed_on": "2025-06-01",
        "why": "intolerant of the alternative",
        "progressed": {"value": True, "by": "1234567893"},
        "metastatic": False,
        "anc": 1500,
        "marker": "positive",
        "prior": 2,
        "age": None,  # null is no answer, whatever the question
    }
    determination = decide(POLICY, request(answers=answers))
    facts = determination.facts
    assert facts["her2_status"].value == "HER2-low"
    assert facts["diagnosed_on"].value == "2025-06-01"
    assert facts["marker"].value == "positive"
    assert facts["anc"].value == 1500
    assert facts["prior"].value == 2


def test_an_unknown_question_is_named_with_a_suggestion() -> None:
    found = problems({"her2status": "HER2-low"})
    assert found == {
        "answers.her2status": "policy examplumab asks no question 'her2status' "
        "(did you mean 'her2_status'?)"
    }


def test_an_unknown_question_far_from_any_gets_no_suggestion() -> None:
    (message,) = problems({"zzz": True}).values()
    assert message == "policy examplumab asks no question 'zzz'"


def test_a_fact_read_from_the_record_cannot_be_answered() -> None:
    (message,) = problems({"age": 40}).values()
    assert "does not take an answer for 'age': it is read from the record" in message
    (message,) = problems({"dx": True}).values()  # the gate fact: a condition, not attestable
    assert "read from the record" in message


@pytest.mark.parametrize(
    ("question", "given", "words"),
    [
        ("progressed", "yes", "takes true or false"),
        ("progressed", 1, "takes true or false"),
        ("metastatic", "true", "takes true or false"),
        ("ecog", True, "takes a number"),
        ("ecog", "1", "takes a number"),
        ("anc", "normal", "takes a number"),
        ("prior", False, "takes a number"),
        ("diagnosed_on", "June 2025", "takes a date (YYYY-MM-DD)"),
        ("diagnosed_on", "2025-02-30", "takes a date (YYYY-MM-DD)"),
        ("diagnosed_on", 2025, "takes a date (YYYY-MM-DD)"),
        ("why", True, "takes text"),
        ("her2_status", 3, "takes a choice"),
        ("her2_status", "HER2-ultralow", "is not one of the choices"),
    ],
)
def test_answers_of_the_wrong_kind(question: str, given: Any, words: str) -> None:
    found = problems({question: given})
    assert list(found) == [f"answers.{question}.value"]
    assert words in found[f"answers.{question}.value"]


def test_every_bad_answer_is_reported() -> None:
    found = problems({"ecog": "one", "nope": True, "age": 3, "progressed": True})
    assert set(found) == {"answers.ecog.value", "answers.nope", "answers.age"}


def test_shipped_policy_answers(policies: PolicySet, approvable: dict[str, Any]) -> None:
    approvable["answers"] = {"metastatic": "yes"}
    with pytest.raises(InvalidRequest) as raised:
        policies.evaluate(approvable)
    assert [p.field for p in raised.value.problems] == ["answers.metastatic.value"]
    approvable["answers"] = {"recurrent_unresectable_locoregional": True, "metastasis": True}
    with pytest.raises(InvalidRequest) as raised:
        policies.evaluate(approvable)
    (problem,) = raised.value.problems
    assert problem.field == "answers.metastasis"
    assert "did you mean 'metastatic'?" in problem.message
