"""Errors raised by priorauth.

The tree::

    PriorAuthError                 anything priorauth raises on purpose
    ├── InvalidRequest             a request that does not fit the contract (field + message)
    └── PolicyError                a policy file with problems (every issue, with its line)

A determination is never an error: pended requests, unknown facts and drugs no policy governs
are all answered with a determination.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["FieldProblem", "InvalidRequest", "PolicyError", "PolicyIssue", "PriorAuthError"]


class PriorAuthError(Exception):
    """The base of every error priorauth raises on purpose."""


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One problem with one field of a request: `patient.weight_kg` and what is wrong with it."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class InvalidRequest(PriorAuthError):
    """A request that does not fit the contract. `problems` names each field at fault."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems) or "invalid request")


@dataclass(frozen=True, slots=True)
class PolicyIssue:
    """A finding about a policy file: a stable code, where it is, how bad, and what is wrong."""

    code: str
    stage: str
    path: str
    line: int | None
    severity: Literal["error", "warning"]
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "?"
        at = f" at {self.path}" if self.path else ""
        return f"{where}: {self.severity} {self.code}{at}: {self.message}"


class PolicyError(PriorAuthError):
    """A policy that cannot be used. `issues` holds every problem found, not just the first."""

    def __init__(self, source: str, issues: list[PolicyIssue]) -> None:
        self.source = source
        self.issues = issues
        errors = [i for i in issues if i.severity == "error"]
        super().__init__(
            f"{source}: {len(errors)} error(s)" + (f"; first: {errors[0]}" if errors else "")
        )
