"""Check a YAML document through named stages, collecting every problem with its line.

The policy loader (codes PA...) and the safety data loader (PS...) share these stages:

    parse       x1xx  the text is YAML and a mapping at the top
    schema      x2xx  the data fits the document's pydantic model
    references  x3xx  names resolve, ids are unique, ... (each document's own checks)
    lint        x4xx  warnings (each document's own)

A stage runs only if the ones before it found no error. Every issue carries the path in the
document and the line it starts on, so an author can go straight to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from priorauth.errors import PolicyError, PolicyIssue

__all__ = ["Checked", "Lines", "Path", "Report", "Stages", "check_text", "dotted", "load_text"]

Path = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


class Lines:
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
                self._walk(value, (*path, name))
                # The key's own line stands for the path (a value may start on the next one).
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


def dotted(path: Path) -> str:
    """`("facts", "age", 0)` -> `facts.age[0]`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class Report:
    """Where a stage writes what it finds: errors, or warnings in the lint stage."""

    def __init__(self, stage: str, lines: Lines | None, issues: list[PolicyIssue]) -> None:
        self.stage, self._lines, self._issues = stage, lines, issues

    def __call__(self, code: str, path: Path, message: str) -> None:
        line = self._lines.line(path) if self._lines is not None else None
        severity: Any = "warning" if self.stage == "lint" else "error"
        self._issues.append(PolicyIssue(code, self.stage, dotted(path), line, severity, message))


@dataclass(frozen=True)
class Stages(Generic[M]):
    """A kind of document: its code prefix and model, and its own reference and lint checks."""

    prefix: str
    model: type[M]
    # What to tell an author whose document is YAML but not a mapping.
    not_a_mapping: str
    references: Callable[[M, Report], None]
    lint: Callable[[M, Report], None]
    # Path parts pydantic adds that mean nothing to an author (union tags, validator names).
    hidden_path_parts: frozenset[str] = field(default_factory=frozenset)


@dataclass
class Checked(Generic[M]):
    """What the stages found: the document (when no stage found an error) and every issue."""

    value: M | None
    issues: list[PolicyIssue]

    @property
    def errors(self) -> list[PolicyIssue]:
        return [i for i in self.issues if i.severity == "error"]


def check_text(text: str, stages: Stages[M]) -> Checked[M]:
    """Run every stage over a document's YAML text."""
    issues: list[PolicyIssue] = []
    prefix = stages.prefix
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        issues.append(
            PolicyIssue(f"{prefix}101", "parse", "", line, "error", f"not valid YAML: {problem}")
        )
        return Checked(None, issues)
    lines = Lines(node)
    if not isinstance(raw, dict):
        Report("parse", lines, issues)(f"{prefix}102", (), stages.not_a_mapping)
        return Checked(None, issues)
    try:
        document = stages.model.model_validate(raw)
    except ValidationError as exc:
        schema = Report("schema", lines, issues)
        hidden = stages.hidden_path_parts
        for error in exc.errors():
            loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p in hidden))
            schema(f"{prefix}201", loc, error["msg"])
        return Checked(None, issues)
    stages.references(document, Report("references", lines, issues))
    if any(i.severity == "error" for i in issues):
        return Checked(None, issues)
    stages.lint(document, Report("lint", lines, issues))
    return Checked(document, issues)


def load_text(text: str, stages: Stages[M], source: str) -> M:
    """The document in `text`, or PolicyError (naming `source`) with every issue found."""
    result = check_text(text, stages)
    if result.value is None:
        raise PolicyError(source, result.issues)
    return result.value
