"""UCUM units: aliases, dimensions, conversions exact to the decimal, and clear refusals."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from priorauth.clinical.units import UnitError, compatible, convert, dimension, normalize_unit


@pytest.mark.parametrize(
    ("given_unit", "ucum"),
    [
        ("mcg", "ug"),
        ("µg", "ug"),
        ("μg", "ug"),
        ("mcg/kg", "ug/kg"),
        ("mg/m²", "mg/m2"),
        ("lb", "[lb_av]"),
        ("lbs", "[lb_av]"),
        ("in", "[in_i]"),
        ("K/uL", "10*3/uL"),
        ("x10^9/L", "10*9/L"),
        (" mg ", "mg"),
        ("mg", "mg"),
    ],
)
def test_aliases(given_unit: str, ucum: str) -> None:
    assert normalize_unit(given_unit) == ucum


@pytest.mark.parametrize(
    ("value", "source", "target", "expected"),
    [
        (150, "[lb_av]", "kg", 68.0388555),
        (65, "[in_i]", "cm", 165.1),
        (1.8, "10*3/uL", "/uL", 1800),
        (1500, "/mm3", "/uL", 1500),
        (1500, "cells/mm3", "/uL", 1500),
        (2.5, "10*9/L", "10*3/uL", 2.5),
        (400, "mcg", "mg", 0.4),
        (1.1, "mg/dL", "mg/L", 11),
        (1, "g", "mg", 1000),
        (60, "mL/min", "L/h", 3.6),
        (7, "mg", "mg", 7),
    ],
)
def test_conversions(value: float, source: str, target: str, expected: float) -> None:
    assert convert(value, source, target) == expected


@settings(max_examples=200)
@given(
    st.decimals(min_value=Decimal("0.001"), max_value=Decimal(100000), places=3),
    st.sampled_from([("g", "mg", 1000), ("ug", "mg", Decimal("0.001")), ("mg", "ug", 1000)]),
)
def test_metric_conversions_are_exact_to_the_decimal(
    amount: Decimal, units: tuple[str, str, Decimal | int]
) -> None:
    """A dose of 9 ug is 0.009 mg, not 0.009000000000000001: float noise at a limit would turn
    a dose at the limit into a dose exception."""
    source, target, factor = units
    assert convert(float(amount), source, target) == float(amount * factor)


def test_dimensions() -> None:
    assert dimension("mg") == "[mass]"
    assert dimension("mcg") == "[mass]"
    assert dimension("mg/m2") == "[mass] / [length] ** 2"
    assert dimension("10*3/uL") == dimension("/mm3")


@pytest.mark.parametrize(
    ("unit", "hint"),
    [("mgg", "did you mean 'mg'"), ("kgs", "did you mean 'kg'"), ("cel", None)],
)
def test_unknown_units_are_named(unit: str, hint: str | None) -> None:
    with pytest.raises(UnitError) as raised:
        dimension(unit)
    message = str(raised.value)
    assert f"unknown unit {unit!r}" in message
    assert "UCUM" in message
    if hint is None:
        assert "did you mean" not in message
    else:
        assert hint in message


def test_units_of_different_kinds_are_not_converted() -> None:
    assert not compatible("mg", "m2")
    assert compatible("[lb_av]", "kg")
    with pytest.raises(UnitError, match="measure different things"):
        convert(1, "mg", "mL")


def test_temperatures_have_no_factor() -> None:
    assert not compatible("Cel", "K")
    with pytest.raises(UnitError):
        convert(37, "Cel", "K")
