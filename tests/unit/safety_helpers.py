"""Requests for the safety tests: one approvable base, changed a field at a time."""

from __future__ import annotations

from typing import Any

from tests.conftest import example

NORMAL_LABS = {
    "anc_per_mm3": 3200,
    "platelets_per_mm3": 240000,
    "ast_uln_ratio": 0.8,
    "alt_uln_ratio": 0.7,
    "bilirubin_uln_ratio": 0.5,
    "collected_on": "2026-11-25",
}


def base(**regimen: Any) -> dict[str, Any]:
    """An approvable request, Ixempra alone at 40 mg/m2 every 21 days, normal labs."""
    request = example("01-approved-every-3-weeks.json")
    request["regimen"].pop("with")
    request["regimen"].update(regimen)
    request["labs"] = dict(NORMAL_LABS)
    request["medications"] = ["ondansetron"]
    request["allergies"] = [{"name": "penicillin", "severity": "mild"}]
    return request


def with_capecitabine(**regimen: Any) -> dict[str, Any]:
    request = base(**regimen)
    request["regimen"]["with"] = ["capecitabine"]
    return request
