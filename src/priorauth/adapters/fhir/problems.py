"""Problems found in a FHIR document, collected (never raised) and rendered as OperationOutcome.

Each problem names the element at fault as a FHIRPath expression from the Bundle, e.g.
`Bundle.entry[0].resource.use`, as the PAS guide's errorPath does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

__all__ = ["Problem", "Severity", "operation_outcome", "problems_from_validation"]

Severity = Literal["fatal", "error", "warning", "information"]

# OperationOutcome.issue.code (http://hl7.org/fhir/issue-type) for each kind of problem.
IssueCode = Literal[
    "structure",
    "required",
    "value",
    "invalid",
    "not-found",
    "duplicate",
    "informational",
    "not-supported",
    "too-long",
    "business-rule",
]


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem: where (a FHIRPath from the Bundle), how bad, what kind, and what is wrong.

    Messages name elements and expectations, never a patient's values.
    """

    path: str
    severity: Severity
    message: str
    code: IssueCode = "invalid"

    def __str__(self) -> str:
        return f"{self.severity} at {self.path}: {self.message}"

    @property
    def blocking(self) -> bool:
        """Whether the problem stops the bundle from being used at all."""
        return self.severity in ("fatal", "error")


def operation_outcome(problems: Iterable[Problem]) -> dict[str, Any]:
    """An OperationOutcome (as JSON data) with one issue per problem, errors first.

    >>> outcome = operation_outcome([Problem("Bundle.type", "error", "missing", "required")])
    >>> outcome["issue"][0]["expression"], outcome["issue"][0]["code"]
    (['Bundle.type'], 'required')
    """
    order = {"fatal": 0, "error": 1, "warning": 2, "information": 3}
    issues = [
        {
            "severity": p.severity,
            "code": p.code,
            "diagnostics": p.message,
            "expression": [p.path],
        }
        for p in sorted(problems, key=lambda p: order[p.severity])
    ]
    if not issues:
        issues = [
            {"severity": "information", "code": "informational", "diagnostics": "no problems"}
        ]
    return {"resourceType": "OperationOutcome", "issue": issues}


_FRIENDLY = {
    "json_invalid": "expected a JSON object (a FHIR complex type) here, not a plain value",
    "list_type": "expected a JSON array here (the element repeats)",
    "extra_forbidden": "not an element of this resource or type",
    "missing": "required element is missing",
    "model_type": "expected a JSON object here",
    "string_type": "expected a string here",
    "bool_type": "expected true or false here",
    "int_type": "expected an integer here",
    "float_type": "expected a number here",
    "decimal_type": "expected a number here",
}


def _location(prefix: str, loc: Sequence[int | str]) -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part not in ("", "__root__"):
            path += f".{part}"
    return path


def problems_from_validation(prefix: str, exc: ValidationError) -> list[Problem]:
    """Problems from a pydantic (fhir.resources) validation error, paths under `prefix`.

    The input values are left out of the messages: they may be a patient's.
    """
    found: list[Problem] = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        kind = str(error["type"])
        message = _FRIENDLY.get(kind) or str(error["msg"]).removeprefix("Value error, ")
        code: IssueCode = "required" if "missing" in kind or "required" in message else "structure"
        found.append(Problem(_location(prefix, tuple(error["loc"])), "error", message, code))
    return found
