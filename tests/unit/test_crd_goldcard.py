"""CRD with gold cards: an order from a prescriber exempt for the service answers `no-auth` with
the reason `gold-card`, where the same order from anyone else needs authorization."""

from __future__ import annotations

import datetime as dt
from typing import Any

from priorauth import PolicySet
from priorauth.adapters.cds.coverage import coverage_answer
from priorauth.engine.answers import answerable
from priorauth.engine.goldcard import ExemptionEntry, ExemptionList
from tests.conftest import example

NPI = "1234567893"  # the prescriber of the example
EXEMPT = ExemptionList([ExemptionEntry(NPI, "ixempra", dt.date(2026, 7, 1), dt.date(2027, 6, 30))])


def _answer(policies: PolicySet, request: dict[str, Any]) -> dict[str, Any]:
    determination = policies.evaluate(request)
    compiled = policies.get("ixempra")
    assert compiled is not None
    answer = coverage_answer(
        determination,
        compiled,
        answerable(compiled.policy),
        dt.date(2026, 11, 23),
        None,
        lambda facts: "Questionnaire/ixempra",
    )
    extension = answer.coverage.extension()["extension"]
    return {part["url"]: part for part in extension}


def test_an_exempt_prescriber_needs_no_authorization() -> None:
    request = example("04-pended-criteria-not-met-age.json")
    exempt = _answer(PolicySet.from_directory(exemptions=EXEMPT), request)
    assert exempt["pa-needed"]["valueCode"] == "no-auth"
    reason = exempt["reason"]["valueCodeableConcept"]
    assert reason["coding"][0]["code"] == "gold-card"
    assert NPI in reason["text"]
    # The same order without the gold card needs authorization.
    other = _answer(PolicySet.from_directory(), request)
    assert other["pa-needed"]["valueCode"] == "auth-needed"
