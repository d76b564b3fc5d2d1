"""Load a policy from YAML text through named checking stages, collecting every problem.

Stages, each with its own codes, in order (a stage runs only if the ones before found no error):

    parse       PA1xx  the text is YAML and a mapping at the top
    schema      PA2xx  the data fits the policy model (policy.model.Policy)
    references  PA3xx  names resolve: facts used by criteria exist, ids are unique, ...
    lint        PA4xx  warnings: facts never used, questions that do not end in "?", ...

Every issue carries the path in the document and its line, so an author can go straight to it.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError

from priorauth.errors import PolicyError, PolicyIssue
from priorauth.policy.model import (
    AgeFact,
    CriterionSpec,
    Policy,
)

__all__ = ["LoadResult", "check_policy_text", "load_policy_text"]

Path = tuple[str | int, ...]


class _Lines:
    """Maps a path in the YAML document to the line it starts on (1-based)."""

    def __init__(self, root: yaml.Node | None) -> None:
        self._lines: dict[Path, int] = {}
        if root is not None:
            self._walk(root, ())

    def _walk(self, node: yaml.Node, path: Path) -> None:
        self._lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                name = key.value
                self._lines[(*path, name)] = key.start_mark.line + 1
                self._walk(value, (*path, name))
                # Keep the key's own line for the path (a value's line may be the next one).
                self._lines[(*path, name)] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, (*path, index))

    def line(self, path: Path) -> int | None:
        while path:
            if path in self._lines:
                return self._lines[path]
            path = path[:-1]
        return self._lines.get(())


def _dotted(path: Path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class LoadResult:
    """What the stages found: the policy (when no stage found an error) and every issue."""

    def __init__(self, policy: Policy | None, issues: list[PolicyIssue]) -> None:
        self.policy = policy
        self.issues = issues

    @property
    def errors(self) -> list[PolicyIssue]:
        return [i for i in self.issues if i.severity == "error"]


def _parse(text: str, lines: list[_Lines], issues: list[PolicyIssue]) -> Any:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        issues.append(
            PolicyIssue("PA101", "parse", "", line, "error", f"not valid YAML: {problem}")
        )
        return None
    lines.append(_Lines(node))
    if not isinstance(data, dict):
        issues.append(
            PolicyIssue(
                "PA102", "parse", "", 1, "error", "a policy is a YAML mapping (id:, title:, ...)"
            )
        )
        return None
    return data


def _schema(data: Any, lines: _Lines, issues: list[PolicyIssue]) -> Policy | None:
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            # Drop the discriminated-union tags pydantic puts in paths (e.g. 'age').
            loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and _is_tag(p, error)))
            issues.append(
                PolicyIssue("PA201", "schema", _dotted(loc), lines.line(loc), "error", error["msg"])
            )
        return None


def _is_tag(part: str, error: Any) -> bool:
    return part in {
        "age",
        "diagnosis",
        "attested",
        "attested-or-diagnosis",
        "specialty",
        "function-after",
    }


def _references(policy: Policy, lines: _Lines, issues: list[PolicyIssue]) -> None:
    def add(code: str, path: Path, message: str) -> None:
        issues.append(
            PolicyIssue(code, "references", _dotted(path), lines.line(path), "error", message)
        )

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


def _lint(policy: Policy, lines: _Lines, issues: list[PolicyIssue]) -> None:
    def warn(code: str, path: Path, message: str) -> None:
        issues.append(
            PolicyIssue(code, "lint", _dotted(path), lines.line(path), "warning", message)
        )

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


def check_policy_text(text: str) -> LoadResult:
    """Run every stage over a policy's YAML text and return the policy with all the findings."""
    issues: list[PolicyIssue] = []
    found_lines: list[_Lines] = []
    data = _parse(text, found_lines, issues)
    if data is None:
        return LoadResult(None, issues)
    lines = found_lines[0]
    policy = _schema(data, lines, issues)
    if policy is None:
        return LoadResult(None, issues)
    _references(policy, lines, issues)
    if any(i.severity == "error" for i in issues):
        return LoadResult(None, issues)
    _lint(policy, lines, issues)
    return LoadResult(policy, issues)


def load_policy_text(text: str, source: str = "<policy>") -> Policy:
    """The policy in `text`, or PolicyError listing every error the stages found."""
    result = check_policy_text(text)
    if result.policy is None:
        raise PolicyError(source, result.issues)
    return result.policy
