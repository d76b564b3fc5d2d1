"""Code formats: ICD-10-CM, NDC, NPI and code-pattern sets."""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["ICD10_CODE_PATTERN", "CodeSet", "normalize_icd10", "normalize_ndc", "npi_is_valid"]

# An ICD-10-CM code, with or without its dot: C50.912, C50912, Z85.3, C80.0 (either case; the
# request contract upper-cases it after this check).
ICD10_CODE_PATTERN = r"^[A-Za-z][0-9][0-9A-Za-z](\.?[0-9A-Za-z]{1,4})?$"
_ICD10 = re.compile(r"^([A-Z][0-9][0-9A-Z])\.?([0-9A-Z]{0,4})$")


def normalize_icd10(code: str) -> str:
    """An ICD-10-CM code in its dotted upper-case form: `c50912` -> `C50.912`.

    Raises ValueError when the text is not shaped like an ICD-10-CM code.
    """
    text = code.strip().upper()
    match = _ICD10.match(text)
    if match is None:
        raise ValueError(f"{code!r} is not an ICD-10-CM code (like C50.912)")
    category, rest = match.groups()
    return f"{category}.{rest}" if rest else category


class CodeSet:
    """A set of code patterns: `C50.*` matches every code under C50, `Z85.3` only itself.

    Dots do not matter (`C50912` and `C50.912` are the same code); codes are compared in
    upper case, as the request contract delivers them.

    >>> CodeSet(["C50.*", "Z85.3"]).matches("C50.A12")
    True
    """

    __slots__ = ("_exact", "_prefixes", "patterns")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(patterns)
        exact: set[str] = set()
        prefixes: list[str] = []
        for pattern in self.patterns:
            bare = pattern.replace(".", "")
            if bare.endswith("*"):
                prefixes.append(bare[:-1])
            else:
                exact.add(bare)
        self._exact = frozenset(exact)
        self._prefixes = tuple(prefixes)

    def matches(self, code: str) -> bool:
        """Whether a code (dotted or not, upper case) falls under one of the patterns."""
        bare = code.replace(".", "")
        return bare in self._exact or bare.startswith(self._prefixes)

    def first_match(self, codes: Iterable[str]) -> str | None:
        """The first of `codes` that matches, or None."""
        for code in codes:
            if self.matches(code):
                return code
        return None


_NDC_DIGITS = re.compile(r"^[0-9]{11}$")
_NDC_SHAPES = {
    (4, 4, 2): (1, 0, 0),
    (5, 3, 2): (0, 1, 0),
    (5, 4, 1): (0, 0, 1),
    (5, 4, 2): (0, 0, 0),
}


def normalize_ndc(ndc: str) -> str:
    """An NDC in 5-4-2 form (`70020-1910-01`) from any hyphenated 10-digit or the 11-digit form.

    Raises ValueError for anything else.
    """
    text = ndc.strip()
    if _NDC_DIGITS.match(text):
        return f"{text[:5]}-{text[5:9]}-{text[9:]}"
    parts = text.split("-")
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        pad = _NDC_SHAPES.get((len(parts[0]), len(parts[1]), len(parts[2])))
        if pad is not None:
            return "-".join("0" * z + p for z, p in zip(pad, parts, strict=True))
    raise ValueError(f"{ndc!r} is not an NDC (like 70020-1910-01 or 70020191001)")


def npi_is_valid(npi: str) -> bool:
    """Whether a 10-digit NPI passes its check digit: the Luhn algorithm over the NPI with the
    prefix 80840 (the health-industry issuer) before it.

    >>> npi_is_valid("1234567893"), npi_is_valid("1234567890")
    (True, False)
    """
    if len(npi) != 10 or not npi.isascii() or not npi.isdigit():
        return False
    total = 0
    # From the right, every second digit is doubled, less 9 when over 9.
    for place, digit in enumerate(reversed("80840" + npi)):
        value = int(digit) * (2 if place % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0
