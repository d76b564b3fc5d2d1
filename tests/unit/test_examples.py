"""Every example request gets the determination its name promises.

Names read `NN-<outcome>-<what>.json`: `approved`, or `pended` with the reason it is pended for
first (`07-pended-dose-exception.json`). New examples are picked up on their own; the shipped
ones are also listed with their exact reasons.
"""

from __future__ import annotations

import pytest

from priorauth import PolicySet
from priorauth.engine.determination import REASON_ORDER
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
KNOWN_WRONG: dict[str, str] = {}  # name: why its determination is wrong for now
NAMES = sorted(p.name for p in EXAMPLES.glob("*.json"))


def _params() -> list[object]:
    return [
        pytest.param(name, marks=pytest.mark.xfail(reason=KNOWN_WRONG[name], strict=True))
        if name in KNOWN_WRONG
        else name
        for name in NAMES
    ]


def promised(name: str) -> tuple[str, str | None]:
    """The outcome a file name promises and, for a pended one, the first reason it names."""
    if "-approved" in name:
        return "approved", None
    assert "-pended" in name, f"examples/{name}: the name says neither approved nor pended"
    named = [r for r in REASON_ORDER if r in name]
    return "pended", named[0] if named else None


def test_the_shipped_examples_are_there() -> None:
    assert set(EXPECTED) <= set(NAMES)


@pytest.mark.parametrize("name", _params())
def test_example_outcome(policies: PolicySet, name: str) -> None:
    determination = policies.evaluate(example(name))
    outcome, reason = promised(name)
    assert determination.outcome == outcome
    if reason is not None:
        assert determination.reasons[0] == reason
    if name in EXPECTED:
        assert (determination.outcome, determination.reasons) == EXPECTED[name]
    # An approval always comes with its authorization, from the service date.
    if determination.outcome == "approved":
        assert determination.authorization is not None
        assert determination.authorization.valid_from == determination.service_date
    else:
        assert determination.authorization is None
        assert determination.route is not None
