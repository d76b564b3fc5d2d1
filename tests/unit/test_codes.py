"""Code checks: the NPI check digit against the Luhn rule written out longhand."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from priorauth.clinical.codes import npi_is_valid


def _luhn_with_prefix(npi: str) -> bool:
    """The CMS rule as written: prefix 80840, double every second digit from the right."""
    total = 0
    for position, char in enumerate(reversed("80840" + npi)):
        digit = int(char)
        if position % 2 == 1:
            digit = digit * 2 - 9 if digit * 2 > 9 else digit * 2
        total += digit
    return total % 10 == 0


@given(st.text(alphabet="0123456789", min_size=10, max_size=10))
def test_the_check_digit_agrees_with_the_longhand_rule(npi: str) -> None:
    assert npi_is_valid(npi) == _luhn_with_prefix(npi)


def test_known_numbers() -> None:
    assert npi_is_valid("1234567893")  # the CMS example
    assert not npi_is_valid("1234567890")


@given(st.text(max_size=12))
def test_anything_else_is_not_an_npi_and_never_raises(text: str) -> None:
    shaped = len(text) == 10 and text.isascii() and text.isdigit()
    assert npi_is_valid(text) == (shaped and _luhn_with_prefix(text))


def test_non_ascii_digits_are_refused() -> None:
    assert not npi_is_valid("１２３４５６７８９３")  # full-width digits
