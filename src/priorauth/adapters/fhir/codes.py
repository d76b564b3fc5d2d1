"""The adapter's code tables (codes.yaml beside this file), loaded once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

__all__ = ["CodeTable", "ObservationCode", "ReviewAction", "StagingCode", "code_table"]


@dataclass(frozen=True, slots=True)
class ReviewAction:
    """An X12 306 action code and its display text."""

    code: str
    display: str


@dataclass(frozen=True, slots=True)
class ObservationCode:
    """What an Observation with one LOINC code fills: a request field, and its unit factors
    (or `uln`: a multiple of the reference range's upper limit)."""

    field: str
    units: dict[str, float]
    uln: bool


@dataclass(frozen=True, slots=True)
class StagingCode:
    """Staging Observations (by LOINC) whose value shows distant metastasis when it matches."""

    loinc: frozenset[str]
    positive: re.Pattern[str]


@dataclass(frozen=True, slots=True)
class CodeTable:
    """Every code system, extension URL and code the adapter reads or writes."""

    icd10cm: str
    nucc: str
    npi: str
    loinc: str
    ucum: str
    ndc: str
    rxnorm: str
    hcpcs: frozenset[str]
    x12_review_action: str
    adjudication: str
    extensions: dict[str, str]
    review_actions: dict[str, ReviewAction]
    continuation_certification_types: frozenset[str]
    observations: dict[str, ObservationCode]
    dose_units: dict[str, str]
    period_units: dict[str, int]
    routes: dict[str, str]
    attestations: dict[str, str]
    staging: tuple[StagingCode, ...]


@cache
def code_table() -> CodeTable:
    """The code table shipped with the adapter."""
    text = resources.files(__package__).joinpath("codes.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    systems = data["systems"]
    return CodeTable(
        icd10cm=systems["icd10cm"],
        nucc=systems["nucc"],
        npi=systems["npi"],
        loinc=systems["loinc"],
        ucum=systems["ucum"],
        ndc=systems["ndc"],
        rxnorm=systems["rxnorm"],
        hcpcs=frozenset(systems["hcpcs"]),
        x12_review_action=systems["x12_review_action"],
        adjudication=systems["adjudication"],
        extensions=dict(data["extensions"]),
        review_actions={k: ReviewAction(**v) for k, v in data["review_actions"].items()},
        continuation_certification_types=frozenset(data["continuation_certification_types"]),
        observations={
            str(code): ObservationCode(
                spec["field"],
                {str(u): float(f) for u, f in spec.get("units", {}).items()},
                bool(spec.get("uln", False)),
            )
            for code, spec in data["observations"].items()
        },
        dose_units={str(k): str(v) for k, v in data["dose_units"].items()},
        period_units={str(k): int(v) for k, v in data["period_units"].items()},
        routes={str(k): str(v) for k, v in data["routes"].items()},
        attestations={str(k): str(v) for k, v in data["attestations"].items()},
        staging=tuple(
            StagingCode(frozenset(spec["loinc"]), re.compile(spec["positive"]))
            for spec in data["staging"]
        ),
    )
