"""Code checks: the NPI check digit against the Luhn rule written out longhand, ICD-10-CM and
NDC forms, code-pattern sets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from priorauth.clinical.codes import CodeSet, normalize_icd10, normalize_ndc, npi_is_valid


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


# --- ICD-10-CM, NDC and code-pattern sets ----------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [("c50912", "C50.912"), ("C50.912", "C50.912"), (" z853 ", "Z85.3"), ("C80", "C80")],
)
def test_icd10_normal_form(given: str, expected: str) -> None:
    assert normalize_icd10(given) == expected


@pytest.mark.parametrize("text", ["", "50.912", "C5", "C50.91234", "breast cancer", "C50..1"])
def test_not_icd10(text: str) -> None:
    with pytest.raises(ValueError, match="is not an ICD-10-CM code"):
        normalize_icd10(text)


@given(st.text(alphabet="0123456789", min_size=11, max_size=11))
def test_every_11_digit_ndc_round_trips(digits: str) -> None:
    assert normalize_ndc(digits).replace("-", "") == digits


def test_code_sets() -> None:
    codes = CodeSet(["C50.*", "Z85.3", "C80.0"])
    assert codes.matches("C50.912")
    assert codes.matches("C50912")
    assert codes.matches("Z85.3")
    assert not codes.matches("Z85.38")  # exact, not a prefix
    assert not codes.matches("C80.1")
    assert not codes.matches("C5")
    assert codes.first_match(["C34.90", "C50.A1", "Z85.3"]) == "C50.A1"
    assert codes.first_match([]) is None
