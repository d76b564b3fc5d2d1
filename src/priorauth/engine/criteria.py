"""Evaluate a policy's criteria tree over derived facts, in Kleene logic, keeping every node.

The tree of results *is* the trace: each node keeps the policy's id and wording, its status and
the facts it read, so the explanation is built from it rather than from ad hoc strings. Result
nodes are immutable and depend only on their statuses, so each distinct node is built once and
shared between determinations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from operator import itemgetter

from priorauth.engine.determination import CriterionResult, FactResult, Operator, Status
from priorauth.engine.kept import remember
from priorauth.engine.kleene import Truth, all_of, any_of, not_
from priorauth.policy.model import CriterionSpec

__all__ = ["CriterionEvaluator", "compile_criteria", "unknown_leaves"]

CriterionEvaluator = Callable[[Mapping[str, FactResult]], tuple[Truth, CriterionResult]]

_STATUS: dict[Truth, Status] = {True: "met", False: "not-met", None: "unknown"}


def _compile_leaf(spec: CriterionSpec) -> CriterionEvaluator:
    name = spec.fact
    assert name is not None
    at_least, at_most = spec.at_least, spec.at_most
    nodes = {
        truth: CriterionResult(spec.id, spec.text, "fact", status, (name,), ())
        for truth, status in _STATUS.items()
    }

    def evaluate(facts: Mapping[str, FactResult]) -> tuple[Truth, CriterionResult]:
        value = facts[name].value
        truth: Truth
        if value is None:
            truth = None
        elif at_least is None and at_most is None:
            truth = bool(value)
        else:
            truth = (at_least is None or value >= at_least) and (
                at_most is None or value <= at_most
            )
        return truth, nodes[truth]

    return evaluate


def compile_criteria(spec: CriterionSpec) -> CriterionEvaluator:
    """Prepare a criteria tree once; the returned function evaluates it over a fact mapping.

    The result depends only on the values of the facts the tree reads, so it is kept by those
    values (a bounded table: an age, a few true/false/unknown flags recur endlessly).
    """
    tree = _compile_node(spec)
    names = sorted(_facts_read(spec))
    read = itemgetter(*names)
    single = len(names) == 1
    kept: dict[tuple[object, ...], tuple[Truth, CriterionResult]] = {}

    def evaluate(facts: Mapping[str, FactResult]) -> tuple[Truth, CriterionResult]:
        found = read(facts)
        key = (found.value,) if single else tuple([fact.value for fact in found])
        result = kept.get(key)
        if result is None:
            result = remember(kept, key, tree(facts))
        return result

    return evaluate


def _facts_read(spec: CriterionSpec) -> set[str]:
    if spec.fact is not None:
        return {spec.fact}
    return set().union(*(_facts_read(child) for child in spec.children()))


def _compile_node(spec: CriterionSpec) -> CriterionEvaluator:
    if spec.fact is not None:
        return _compile_leaf(spec)
    children = tuple(_compile_node(child) for child in spec.children())
    operator: Operator = "all" if spec.all is not None else "any" if spec.any is not None else "not"
    node_id, text = spec.id, spec.text
    shared: dict[tuple[int, ...], CriterionResult] = {}
    decide = {"all": all_of, "any": any_of}.get(operator)

    def evaluate(facts: Mapping[str, FactResult]) -> tuple[Truth, CriterionResult]:
        truths: list[Truth] = []
        nodes: list[CriterionResult] = []
        for child in children:
            truth, node = child(facts)
            truths.append(truth)
            nodes.append(node)
        result = decide(truths) if decide is not None else not_(truths[0])
        # Keyed by the child nodes' identities: the cached node keeps those children alive, so
        # an id cannot be reused by another object while its entry exists.
        key = tuple(map(id, nodes))
        found = shared.get(key)
        if found is None:
            node = CriterionResult(node_id, text, operator, _STATUS[result], (), tuple(nodes))
            found = remember(shared, key, node)
        return result, found

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
