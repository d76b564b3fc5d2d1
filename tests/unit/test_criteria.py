"""Criteria: Kleene logic exhaustively, every comparator with values and bounds, which unknowns
are asked about, and the shipped policy's criteria on the general request."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from priorauth import Determination, PolicySet
from priorauth.engine.criteria import compile_criteria, unknown_leaves
from priorauth.engine.criteria import judge_fact as judge
from priorauth.engine.determination import FactResult
from priorauth.engine.kleene import Truth, all_of, any_of, at_least, not_
from priorauth.policy.model import CriterionSpec

TRUTHS: tuple[Truth, ...] = (True, False, None)


def leaf(name: str, **comparators: Any) -> dict[str, Any]:
    return {"id": name, "text": name, "fact": name, **comparators}


def tree(data: dict[str, Any]) -> Callable[[dict[str, Any]], tuple[Truth, Any]]:
    evaluate = compile_criteria(CriterionSpec.model_validate(data))

    def run(values: dict[str, Any]) -> tuple[Truth, Any]:
        return evaluate({k: FactResult(k, "", v, ()) for k, v in values.items()})

    return run


# --- Kleene logic, exhaustively ------------------------------------------------------------


def _kleene_and(values: tuple[Truth, ...]) -> Truth:
    """AND as its truth table: the answer every way of filling in the unknowns agrees on."""
    return _settled(values, all)


def _kleene_or(values: tuple[Truth, ...]) -> Truth:
    return _settled(values, any)


def _settled(values: tuple[Truth, ...], combine: Callable[[list[bool]], bool]) -> Truth:
    unknown = [i for i, v in enumerate(values) if v is None]
    outcomes = set()
    for filling in itertools.product((True, False), repeat=len(unknown)):
        filled = list(values)
        for i, v in zip(unknown, filling, strict=True):
            filled[i] = v
        outcomes.add(combine([bool(v) for v in filled]))
    return outcomes.pop() if len(outcomes) == 1 else None


@pytest.mark.parametrize("size", [1, 2, 3])
def test_all_any_and_at_least_agree_with_every_filling_of_the_unknowns(size: int) -> None:
    for values in itertools.product(TRUTHS, repeat=size):
        assert all_of(values) == _kleene_and(values), values
        assert any_of(values) == _kleene_or(values), values
        for n in range(1, size + 1):
            expected = _settled(values, lambda vs, n=n: sum(vs) >= n)
            assert at_least(n, values) == expected, (n, values)


def test_not() -> None:
    assert [not_(v) for v in TRUTHS] == [False, True, None]


@pytest.mark.parametrize("operator", ["all", "any", "of"])
def test_trees_of_three_leaves_over_every_combination(operator: str) -> None:
    children = [leaf("a"), {"id": "n", "text": "not b", "not": leaf("b")}, leaf("c")]
    spec: dict[str, Any] = {"id": "root", "text": "root", operator: children}
    if operator == "of":
        spec["at_least"] = 2
    run = tree(spec)
    for a, b, c in itertools.product(TRUTHS, repeat=3):
        truth, node = run({"a": a, "b": b, "c": c})
        children_truths = (a, not_(b), c)
        if operator == "all":
            expected = _kleene_and(children_truths)
        elif operator == "any":
            expected = _kleene_or(children_truths)
        else:
            expected = _settled(children_truths, lambda vs: sum(vs) >= 2)
        assert truth == expected, (a, b, c)
        status = {True: "met", False: "not-met", None: "unknown"}[truth]
        assert node.status == status
        assert [child.status for child in node.children] == [
            {True: "met", False: "not-met", None: "unknown"}[t] for t in children_truths
        ]


def test_nested_tree_keeps_every_node() -> None:
    run = tree(
        {
            "id": "1",
            "text": "all",
            "all": [leaf("a"), {"id": "B", "text": "any", "any": [leaf("b"), leaf("c")]}],
        }
    )
    truth, node = run({"a": True, "b": None, "c": True})
    assert truth is True
    assert [n.id for n in node.children] == ["a", "B"]
    assert [n.status for n in node.children[1].children] == ["unknown", "met"]
    assert node.children[1].operator == "any"
    assert node.children[0].facts == ("a",)


# --- comparators ---------------------------------------------------------------------------


def fact_of(value: Any, bounds: tuple[int, int | None] | None = None) -> FactResult:
    return FactResult("f", "", value, (), bounds=bounds)


@pytest.mark.parametrize(
    ("comparator", "limit", "value", "expected"),
    [
        ("at_least", 18, 18, True),
        ("at_least", 18, 17, False),
        ("at_least", 18, 17.999, False),
        ("at_most", 2, 2, True),
        ("at_most", 2, 3, False),
        ("below", 50, 49.9, True),
        ("below", 50, 50, False),
        ("above", 1.5, 1.5, False),
        ("above", 1.5, 1.51, True),
        ("equals", "HER2-positive", "HER2-positive", True),
        ("equals", "HER2-positive", "HER2-negative", False),
        ("equals", 3, 3, True),
        ("in", ["a", "b"], "b", True),
        ("in", ["a", "b"], "c", False),
        ("is", False, False, True),
        ("is", False, True, False),
        ("is", True, True, True),
    ],
)
def test_comparators(comparator: str, limit: Any, value: Any, expected: bool) -> None:
    assert judge(fact_of(value), {comparator: limit}) is expected
    assert judge(fact_of(None), {comparator: limit}) is None


def test_a_bare_fact_is_its_truth() -> None:
    assert judge(fact_of(True), {}) is True
    assert judge(fact_of(False), {}) is False
    assert judge(fact_of(None), {}) is None


def test_several_comparators_must_all_hold() -> None:
    between = {"at_least": 2, "below": 5}
    assert [judge(fact_of(v), between) for v in (1, 2, 4.9, 5)] == [False, True, True, False]


def test_a_value_of_another_kind_is_never_decided() -> None:
    assert judge(fact_of("positive"), {"at_least": 2}) is None
    assert judge(fact_of(None, (1, 3)), {"is": True}) is None


@pytest.mark.parametrize(
    ("bounds", "comparator", "limit", "expected"),
    [
        # A closed range: decided when every count in it gives the same answer.
        ((2, 4), "at_least", 2, True),
        ((2, 4), "at_least", 3, None),
        ((2, 4), "at_least", 5, False),
        ((2, 4), "at_most", 4, True),
        ((2, 4), "at_most", 3, None),
        ((2, 4), "at_most", 1, False),
        ((2, 4), "below", 5, True),
        ((2, 4), "above", 1, True),
        ((2, 4), "above", 3, None),
        ((2, 2), "equals", 2, True),
        ((2, 3), "equals", 2, None),
        ((1, 3), "equals", 2, None),  # 2 lies between: it may be exactly 2
        ((1, 3), "equals", 4, False),
        ((1, 3), "in", ["2"], False),  # a count is never text
        # An open range (the list may be incomplete): at least the sure count, no upper limit.
        ((2, None), "at_least", 2, True),
        ((2, None), "at_least", 3, None),  # more may be found: never false
        ((2, None), "above", 1, True),
        ((2, None), "above", 2, None),
        ((2, None), "at_most", 2, None),  # more may be found: never true
        ((2, None), "at_most", 1, False),  # already more than allowed
        ((2, None), "below", 2, False),
        ((2, None), "below", 3, None),
        ((0, None), "at_most", 0, None),
        ((2, None), "equals", 2, None),
        ((2, None), "equals", 1, False),  # already more than one
    ],
)
def test_comparisons_of_bounded_counts(
    bounds: tuple[int, int | None], comparator: str, limit: float, expected: Truth
) -> None:
    assert judge(fact_of(None, bounds), {comparator: limit}) is expected


def test_bounds_agree_with_every_count_they_allow() -> None:
    """Decided only when every count in the range (up to well past the limit) agrees."""
    for least in range(4):
        for most in [*range(least, 6), None]:
            counts = range(least, (most if most is not None else 12) + 1)
            for comparator in ("at_least", "at_most", "below", "above", "equals"):
                for limit in range(5):
                    answers = {judge(fact_of(c), {comparator: limit}) for c in counts}
                    expected = answers.pop() if len(answers) == 1 else None
                    got = judge(fact_of(None, (least, most)), {comparator: limit})
                    assert got == expected, (least, most, comparator, limit)


# --- what is asked -------------------------------------------------------------------------


def test_unknown_leaves_follow_only_unknown_branches() -> None:
    run = tree(
        {
            "id": "1",
            "text": "all",
            "all": [
                leaf("a"),
                {"id": "B", "text": "any", "any": [leaf("b"), leaf("c")]},
                {"id": "C", "text": "any", "any": [leaf("d"), leaf("e")]},
                {
                    "id": "D",
                    "text": "two of",
                    "at_least": 2,
                    "of": [leaf("f"), leaf("g"), leaf("h")],
                },
            ],
        }
    )
    values = {
        "a": None,
        "b": None,
        "c": False,
        "d": True,
        "e": None,
        "f": True,
        "g": None,
        "h": None,
    }
    truth, node = run(values)
    assert truth is None
    # C is met already: e is not asked; every unknown under unknown nodes is.
    assert unknown_leaves(node) == [("a", "a"), ("b", "b"), ("g", "g"), ("h", "h")]


def test_a_decided_tree_asks_nothing() -> None:
    run = tree({"id": "1", "text": "all", "all": [leaf("a"), leaf("b")]})
    truth, node = run({"a": False, "b": None})
    assert truth is False
    assert unknown_leaves(node) == []


def test_not_of_an_unknown_asks_its_fact() -> None:
    run = tree({"id": "1", "text": "not", "not": leaf("a")})
    assert unknown_leaves(run({"a": None})[1]) == [("a", "a")]


# --- the shipped policy on the general request ------------------------------------------------


def status(determination: Determination, criterion: str) -> str:
    """The status of one criterion node by its policy id."""
    assert determination.criteria is not None
    stack = [determination.criteria]
    while stack:
        node = stack.pop()
        if node.id == criterion:
            return node.status
        stack.extend(node.children)
    raise AssertionError(f"no criterion {criterion}")


def only_b(request: dict[str, Any], answer: str | None, value: bool | None) -> dict[str, Any]:
    """The request with no metastasis code and one of B's answers given."""
    request["conditions"] = ["C50.912"]
    request["answers"] = {answer: value} if answer else {}
    return request


@pytest.mark.parametrize(
    ("birth_date", "expected"),
    [
        ("2008-12-01", "met"),  # 18th birthday is the service date itself
        ("2008-12-02", "not-met"),  # turns 18 the day after
        ("2008-11-30", "met"),
        ("1930-01-01", "met"),
    ],
)
def test_age_boundary_on_the_birthday(
    policies: PolicySet, approvable: dict[str, Any], birth_date: str, expected: str
) -> None:
    approvable["patient"]["birth_date"] = birth_date  # service date 2026-12-01
    determination = policies.evaluate(approvable)
    assert status(determination, "A") == expected
    if expected == "not-met":
        assert determination.outcome == "pended"
        assert determination.reasons == ("criteria-not-met",)
        assert determination.route == "medical-director"
        assert "criterion A not met" in determination.summary


def test_leap_day_birthday_turns_18_on_march_first(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    approvable["patient"]["birth_date"] = "2008-02-29"
    approvable["service"]["start_date"] = "2026-02-28"
    assert status(policies.evaluate(approvable), "A") == "not-met"
    approvable["service"]["start_date"] = "2026-03-01"
    assert status(policies.evaluate(approvable), "A") == "met"


def test_service_date_falls_back_to_received_date(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    del approvable["service"]["start_date"]
    approvable["patient"]["birth_date"] = "2008-11-20"  # 18 on the received date 2026-11-20
    determination = policies.evaluate(approvable)
    assert determination.service_date.isoformat() == "2026-11-20"
    assert status(determination, "A") == "met"
    assert determination.facts["age_years"].evidence[1].field == "received_at"
    assert determination.authorization is not None
    assert determination.authorization.valid_through.isoformat() == "2027-11-19"


def test_missing_birth_date_is_unknown_not_false(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    del approvable["patient"]["birth_date"]
    determination = policies.evaluate(approvable)
    assert status(determination, "A") == "unknown"
    assert determination.reasons == ("missing-information",)
    assert [m.fact for m in determination.missing] == ["age_years"]
    assert determination.missing[0].fields == ("patient.birth_date",)
    assert determination.missing[0].criteria == ("A",)


def test_birth_date_after_service_date_is_a_conflict(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    approvable["patient"]["birth_date"] = "2027-01-01"
    determination = policies.evaluate(approvable)
    assert status(determination, "A") == "unknown"
    assert [c.fact for c in determination.conflicts] == ["age_years"]
    assert determination.outcome == "pended"


@pytest.mark.parametrize(
    "answer",
    ["recurrent_unresectable_locoregional", "metastatic", "no_response_to_preoperative_therapy"],
)
def test_each_b_branch_alone_meets_b(
    policies: PolicySet, approvable: dict[str, Any], answer: str
) -> None:
    determination = policies.evaluate(only_b(approvable, answer, True))
    assert status(determination, "B") == "met"
    assert determination.outcome == "approved"


def test_all_b_branches_false_fails_b(policies: PolicySet, approvable: dict[str, Any]) -> None:
    approvable["conditions"] = ["C50.912"]
    approvable["answers"] = {
        "recurrent_unresectable_locoregional": False,
        "metastatic": False,
        "no_response_to_preoperative_therapy": False,
    }
    determination = policies.evaluate(approvable)
    assert status(determination, "B") == "not-met"
    assert determination.reasons == ("criteria-not-met",)
    assert "criterion B not met" in determination.summary
    assert determination.missing == ()


def test_b_unknown_asks_only_the_unknown_branches(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    determination = policies.evaluate(only_b(approvable, "metastatic", False))
    assert status(determination, "B") == "unknown"
    assert status(determination, "B.ii") == "not-met"
    assert determination.reasons == ("missing-information",)
    asked = {m.fact for m in determination.missing}
    assert asked == {"recurrent_unresectable_locoregional", "no_response_to_preoperative_therapy"}
    assert all(m.question.endswith("?") for m in determination.missing)


def test_false_criterion_outranks_unknowns(policies: PolicySet, approvable: dict[str, Any]) -> None:
    """A is false: B's unknowns could not change the outcome, so nobody is asked about them."""
    only_b(approvable, None, None)
    approvable["patient"]["birth_date"] = "2010-01-01"
    determination = policies.evaluate(approvable)
    assert status(determination, "B") == "unknown"
    assert determination.reasons == ("criteria-not-met",)
    assert determination.missing == ()


@pytest.mark.parametrize("code", ["C78.01", "C78.7", "C79.51", "C79.31", "C80.0", "C7951"])
def test_distant_metastasis_codes(
    policies: PolicySet, approvable: dict[str, Any], code: str
) -> None:
    approvable["conditions"] = ["C50.912", code]
    approvable["answers"] = {}
    determination = policies.evaluate(approvable)
    assert determination.facts["metastatic"].value is True
    assert determination.facts["metastatic"].evidence[0].field == "conditions[1]"
    assert determination.outcome == "approved"


@pytest.mark.parametrize("code", ["C77.3", "C80.1"])
def test_regional_or_unspecified_codes_are_not_metastatic(
    policies: PolicySet, approvable: dict[str, Any], code: str
) -> None:
    approvable["conditions"] = ["C50.912", code]
    approvable["answers"] = {}
    determination = policies.evaluate(approvable)
    assert determination.facts["metastatic"].value is None
    assert status(determination, "B.ii") == "unknown"
    assert determination.outcome == "pended"


def test_conflict_attested_not_metastatic_with_metastasis_code(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    approvable["conditions"] = ["C50.912", "C78.7"]
    approvable["answers"] = {"metastatic": False}
    determination = policies.evaluate(approvable)
    assert determination.facts["metastatic"].value is None
    (conflict,) = determination.conflicts
    assert conflict.fact == "metastatic"
    assert {e.field for e in conflict.evidence} == {"answers.metastatic", "conditions[1]"}
    assert determination.outcome == "pended"
    assert "missing-information" in determination.reasons


def test_conflict_is_shown_even_when_another_branch_decides(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    approvable["conditions"] = ["C50.912", "C78.7"]
    approvable["answers"] = {"metastatic": False, "recurrent_unresectable_locoregional": True}
    determination = policies.evaluate(approvable)
    assert determination.outcome == "approved"
    assert [c.fact for c in determination.conflicts] == ["metastatic"]


@pytest.mark.parametrize("code", ["C50.912", "C50.A12", "C50011", "Z85.3"])
def test_breast_cancer_codes(policies: PolicySet, approvable: dict[str, Any], code: str) -> None:
    approvable["conditions"] = [code, "C78.01"]
    determination = policies.evaluate(approvable)
    assert determination.facts["breast_cancer"].value is True
    assert determination.outcome == "approved"


@pytest.mark.parametrize("code", ["D05.10", "C34.90", "C56.9", "Z85.038"])
def test_other_diagnoses_are_not_covered(
    policies: PolicySet, approvable: dict[str, Any], code: str
) -> None:
    approvable["conditions"] = [code, "C78.01"]
    determination = policies.evaluate(approvable)
    assert determination.reasons[0] == "not-covered-indication"
    # The criteria of an indication that does not apply are not shown (all "met" would mislead).
    assert determination.criteria is None
    assert determination.dosing is None
    assert determination.indication is not None
    assert determination.indication.status == "not-met"
    assert determination.authorization is None


def test_no_conditions_is_missing_not_uncovered(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    approvable["conditions"] = []
    determination = policies.evaluate(approvable)
    assert determination.reasons == ("missing-information",)
    assert determination.missing[0].fact == "breast_cancer"
    assert determination.missing[0].criteria == ("indication",)
    assert determination.indication is not None
    assert determination.indication.status == "unknown"


@pytest.mark.parametrize(
    "specialty",
    [
        "207RX0202X",
        "207rh0003x",
        "medical-oncology",
        "Hematology & Oncology",
        "hem-onc",
        "Gynecologic Oncology",
        "oncologist",
    ],
)
def test_oncology_specialties(
    policies: PolicySet, approvable: dict[str, Any], specialty: str
) -> None:
    approvable["practitioners"][0]["specialty"] = specialty
    assert status(policies.evaluate(approvable), "C") == "met"


def test_non_oncologist_without_consult_is_unknown_and_asked(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    approvable["practitioners"][0]["specialty"] = "207Q00000X"  # family medicine
    determination = policies.evaluate(approvable)
    assert status(determination, "C") == "unknown"
    assert [m.criteria for m in determination.missing] == [("C",)]


def test_consulting_oncologist_meets_c(policies: PolicySet, approvable: dict[str, Any]) -> None:
    approvable["practitioners"] = [
        {"role": "prescriber", "npi": "1234567893", "specialty": "family medicine"},
        {"role": "consultant", "npi": "1245319599", "specialty": "oncology"},
    ]
    determination = policies.evaluate(approvable)
    assert status(determination, "C") == "met"
    fields = [e.field for e in determination.facts["prescribed_by_or_with_oncologist"].evidence]
    assert fields == ["practitioners[1].specialty"]


def test_reasons_are_ordered_most_serious_first(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    approvable["patient"]["birth_date"] = "2012-01-01"
    approvable["service"]["dose"]["value"] = 50
    determination = policies.evaluate(approvable)
    assert determination.reasons == ("criteria-not-met", "dose-exception")
    assert determination.route == "medical-director"
