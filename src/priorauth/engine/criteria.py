"""Evaluate a policy's criteria tree over derived facts, in Kleene logic, keeping every node.

The tree of results *is* the trace: each node keeps the policy's id and wording, its status and
the facts it read, so the explanation is built from it rather than from ad hoc strings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from priorauth.engine.determination import CriterionResult, FactResult, Status
from priorauth.engine.kleene import Truth, all_of, any_of, at_least, not_
from priorauth.policy.model import CriterionSpec

__all__ = ["CriterionEvaluator", "compile_criteria", "judge_fact", "unknown_leaves"]

CriterionEvaluator = Callable[[Mapping[str, FactResult]], tuple[Truth, CriterionResult]]

STATUS: dict[Truth, Status] = {True: "met", False: "not-met", None: "unknown"}


def _compare(value: Any, name: str, limit: Any) -> bool:
    if name == "at_least":
        return bool(value >= limit)
    if name == "at_most":
        return bool(value <= limit)
    if name == "below":
        return bool(value < limit)
    if name == "above":
        return bool(value > limit)
    if name == "equals":
        return bool(value == limit)
    if name == "in":
        return value in limit
    raise ValueError(name)


def _by_bounds(bounds: tuple[int, int | None], name: str, limit: Any) -> Truth:
    """A comparison of a count known only to lie between `bounds` (an upper bound of None: no
    limit): decided when every count in the range gives the same answer."""
    least, most = bounds
    if name in ("equals", "in"):
        # Not monotone in the count: every count in the range has its say.
        if most is None:
            wanted: list[Any] = limit if name == "in" else [limit]
            reachable = any(
                isinstance(w, int | float) and not isinstance(w, bool) and w >= least
                for w in wanted
            )
            return None if reachable else False
        answers = {_compare(count, name, limit) for count in range(least, most + 1)}
        return answers.pop() if len(answers) == 1 else None
    low = _compare(least, name, limit)
    if most is None:
        # Any count from `least` up: "at least"/"above" hold for them all once they hold for
        # the least; "at most"/"below" fail for them all once they fail for the least.
        if name in ("at_least", "above"):
            return True if low else None
        if name in ("at_most", "below"):
            return None if low else False
        return None
    high = _compare(most, name, limit)
    return low if low == high else None


def judge_fact(fact: FactResult, comparators: Mapping[str, Any]) -> Truth:
    """A fact against a leaf's comparisons (all must hold); no comparison: the fact itself
    (with `is`: the fact equals it)."""
    value = fact.value
    if value is None and fact.bounds is None:
        return None
    if "is" in comparators:
        return None if value is None else value is comparators["is"]
    if not comparators:
        return None if value is None else bool(value)
    truths: list[Truth] = []
    for name, limit in comparators.items():
        try:
            if value is None:
                assert fact.bounds is not None
                truths.append(_by_bounds(fact.bounds, name, limit))
            else:
                truths.append(_compare(value, name, limit))
        except TypeError:
            # A value of another kind than the comparison (text against a number): the policy
            # checks prevent it for facts; an answer may still surprise. Never decide on it.
            truths.append(None)
    return all_of(truths)


def compile_criteria(spec: CriterionSpec) -> CriterionEvaluator:
    """Prepare a criteria tree once; the returned function evaluates it over a fact mapping."""
    if spec.fact is not None:
        return _leaf(spec)
    children = tuple(compile_criteria(child) for child in spec.children())
    operator = spec.operator
    needed = int(spec.at_least or 0)

    def evaluate(facts: Mapping[str, FactResult]) -> tuple[Truth, CriterionResult]:
        truths: list[Truth] = []
        nodes: list[CriterionResult] = []
        for child in children:
            truth, node = child(facts)
            truths.append(truth)
            nodes.append(node)
        if operator == "all":
            result = all_of(truths)
        elif operator == "any":
            result = any_of(truths)
        elif operator == "at-least":
            result = at_least(needed, truths)
        else:
            result = not_(truths[0])
        node = CriterionResult(spec.id, spec.text, operator, STATUS[result], (), tuple(nodes))
        return result, node

    return evaluate


def _leaf(spec: CriterionSpec) -> CriterionEvaluator:
    name = spec.fact
    assert name is not None
    comparators = spec.comparators()

    def evaluate(facts: Mapping[str, FactResult]) -> tuple[Truth, CriterionResult]:
        truth = judge_fact(facts[name], comparators)
        return truth, CriterionResult(spec.id, spec.text, "fact", STATUS[truth], (name,), ())

    return evaluate


def unknown_leaves(node: CriterionResult) -> list[tuple[str, str]]:
    """(criterion id, fact) for each unknown leaf that keeps an unknown node from being decided.

    Only unknown branches are followed: a fact under a branch already met or not met could not
    change the outcome, so nobody should be asked about it.
    """
    if node.status != "unknown":
        return []
    if node.operator == "fact":
        return [(node.id, fact) for fact in node.facts]
    found: list[tuple[str, str]] = []
    for child in node.children:
        found.extend(unknown_leaves(child))
    return found
