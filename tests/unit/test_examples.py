"""Every shipped example request gets the determination its name promises."""

from __future__ import annotations

import pytest

from priorauth import PolicySet
from tests.conftest import EXAMPLES, example

EXPECTED = {
    "01-approved-every-3-weeks.json": ("approved", ()),
    "02-approved-weekly-mg-dose.json": ("approved", ()),
    "03-continuation-approved.json": ("approved", ()),
    "04-pended-criteria-not-met-age.json": ("pended", ("criteria-not-met",)),
    "05-pended-not-covered-indication.json": ("pended", ("not-covered-indication",)),
    "06-pended-missing-information.json": ("pended", ("missing-information",)),
    "07-pended-dose-exception.json": ("pended", ("dose-exception",)),
    "08-pended-conflicting-evidence.json": ("pended", ("missing-information",)),
    "09-pended-no-policy.json": ("pended", ("no-policy",)),
    "10-pended-safety-review.json": ("pended", ("safety-review",)),
}


def test_every_example_is_listed() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_outcome(policies: PolicySet, name: str) -> None:
    outcome, reasons = EXPECTED[name]
    determination = policies.evaluate(example(name))
    assert determination.outcome == outcome
    assert determination.reasons == reasons
