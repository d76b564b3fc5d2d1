"""The adapter's code tables (codes.yaml beside this file), loaded once."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

__all__ = ["CodeTable", "ReviewAction", "code_table"]


@dataclass(frozen=True, slots=True)
class ReviewAction:
    """An X12 306 action code and its display text."""

    code: str
    display: str


@dataclass(frozen=True, slots=True)
class CodeTable:
    """Every code system, extension URL and code the adapter reads or writes."""

    nucc: str
    npi: str
    ucum: str
    hcpcs: str
    x12_review_action: str
    adjudication: str
    extensions: dict[str, str]
    review_actions: dict[str, ReviewAction]
    continuation_certification_types: frozenset[str]
    period_units: dict[str, int]
    routes: dict[str, str]
    condition_statuses: dict[str, str]
    medication_statuses: dict[str, str]
    yes_no: dict[str, dict[str, bool]]
    coded_words: dict[str, dict[str, str]]
    patient_answers: dict[str, str]


@cache
def code_table() -> CodeTable:
    """The code table shipped with the adapter."""
    text = resources.files(__package__).joinpath("codes.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    systems = data["systems"]
    return CodeTable(
        nucc=systems["nucc"],
        npi=systems["npi"],
        ucum=systems["ucum"],
        hcpcs=systems["hcpcs"],
        x12_review_action=systems["x12_review_action"],
        adjudication=systems["adjudication"],
        extensions=dict(data["extensions"]),
        review_actions={k: ReviewAction(**v) for k, v in data["review_actions"].items()},
        continuation_certification_types=frozenset(data["continuation_certification_types"]),
        period_units={str(k): int(v) for k, v in data["period_units"].items()},
        routes={str(k): str(v) for k, v in data["routes"].items()},
        condition_statuses={str(k): str(v) for k, v in data["condition_statuses"].items()},
        medication_statuses={str(k): str(v) for k, v in data["medication_statuses"].items()},
        yes_no={
            str(system): {str(code): bool(value) for code, value in codes.items()}
            for system, codes in data["yes_no"].items()
        },
        coded_words={
            str(system): {str(code): str(word) for code, word in codes.items()}
            for system, codes in data["coded_words"].items()
        },
        patient_answers={str(k): str(v) for k, v in data["patient_answers"].items()},
    )
