"""Load a policy from YAML text through named checking stages, collecting every problem.

Stages, each with its own codes, in order (a stage runs only if the ones before found no error;
policy.staged runs them):

    parse       PA1xx  the text is YAML and a mapping at the top
    schema      PA2xx  the data fits the policy model (policy.model.Policy)
    references  PA3xx  names resolve: facts used by criteria exist, ids are unique, ...
    lint        PA4xx  warnings: facts never used, questions that do not end in "?", ...

Every issue carries the path in the document and its line, so an author can go straight to it.
"""

from __future__ import annotations

from priorauth.policy.model import AgeFact, CriterionSpec, Policy
from priorauth.policy.staged import Checked, Path, Report, Stages, check_text, load_text

__all__ = ["check_policy_text", "load_policy_text"]


def _references(policy: Policy, add: Report) -> None:
    for i, indication in enumerate(policy.indications):
        base: Path = ("indications", i)
        gate = policy.facts.get(indication.when)
        if gate is None:
            add("PA301", (*base, "when"), f"fact {indication.when!r} is not defined under facts")
        elif isinstance(gate, AgeFact):
            add(
                "PA307",
                (*base, "when"),
                f"fact {indication.when!r} is a number: an indication needs a true/false fact",
            )
        seen: set[str] = set()
        for node, path in _nodes(indication.criteria, (*base, "criteria")):
            if node.id in seen:
                add("PA302", (*path, "id"), f"criterion id {node.id!r} is used twice")
            seen.add(node.id)
            if node.fact is None:
                continue
            spec = policy.facts.get(node.fact)
            if spec is None:
                add("PA301", (*path, "fact"), f"fact {node.fact!r} is not defined under facts")
                continue
            numeric = isinstance(spec, AgeFact)
            compares = node.at_least is not None or node.at_most is not None
            if numeric and not compares:
                add("PA303", path, f"fact {node.fact!r} is a number: give at_least or at_most")
            if compares and not numeric:
                add("PA304", path, f"fact {node.fact!r} is true/false: drop at_least/at_most")
    ids = [r.id for r in policy.dosing.regimens]
    for j, regimen_id in enumerate(ids):
        if ids.index(regimen_id) != j:
            add(
                "PA305", ("dosing", "regimens", j, "id"), f"regimen id {regimen_id!r} is used twice"
            )
    indication_ids = [ind.id for ind in policy.indications]
    for j, indication_id in enumerate(indication_ids):
        if indication_ids.index(indication_id) != j:
            add("PA306", ("indications", j, "id"), f"indication id {indication_id!r} is used twice")


def _nodes(node: CriterionSpec, path: Path) -> list[tuple[CriterionSpec, Path]]:
    found = [(node, path)]
    for key, children in (("all", node.all), ("any", node.any)):
        for k, child in enumerate(children or []):
            found.extend(_nodes(child, (*path, key, k)))
    if node.not_ is not None:
        found.extend(_nodes(node.not_, (*path, "not")))
    return found


def _lint(policy: Policy, warn: Report) -> None:
    used = {ind.when for ind in policy.indications}
    for indication in policy.indications:
        used.update(n.fact for n, _ in _nodes(indication.criteria, ()) if n.fact)
    for name, spec in policy.facts.items():
        if name not in used:
            warn("PA401", ("facts", name), f"fact {name!r} is defined but no criterion uses it")
        if not spec.question.rstrip().endswith("?"):
            warn("PA402", ("facts", name, "question"), "a question should end with '?'")
    if not policy.routing:
        warn("PA403", ("routing",), "no routing: every pended request goes to 'clinician'")


POLICY_STAGES = Stages(
    prefix="PA",
    model=Policy,
    not_a_mapping="a policy is a YAML mapping (id:, title:, ...)",
    references=_references,
    lint=_lint,
    # The fact kinds (discriminated-union tags) pydantic puts in error paths.
    hidden_path_parts=frozenset(
        {"age", "diagnosis", "attested", "attested-or-diagnosis", "specialty", "function-after"}
    ),
)


def check_policy_text(text: str) -> Checked[Policy]:
    """Run every stage over a policy's YAML text: the policy (`.value`) and all the findings."""
    return check_text(text, POLICY_STAGES)


def load_policy_text(text: str, source: str = "<policy>") -> Policy:
    """The policy in `text`, or PolicyError listing every error the stages found."""
    return load_text(text, POLICY_STAGES, source)
