"""UCUM units: parse them, tell what they measure, convert between them.

Parsing is ucumvert's (a UCUM grammar onto pint's registry); this module only keeps the answers,
since a request names a handful of units over and over. Every conversion here is a factor
(no unit in clinical use for these requests has an offset, such as degrees Celsius, and one
that does is refused).

>>> convert(150, "[lb_av]", "kg")
68.0388555
>>> convert(1.8, "10*3/uL", "/uL")
1800.0
"""

from __future__ import annotations

import difflib
import re
from functools import cache, lru_cache
from typing import Any

__all__ = ["UnitError", "compatible", "convert", "dimension", "normalize_unit"]

# Spellings people and EHRs write that are not UCUM, mapped to the UCUM unit they mean.
_ALIASES = {
    "mcg": "ug",
    "µg": "ug",
    "μg": "ug",
    "mcg/kg": "ug/kg",
    "mcg/m2": "ug/m2",
    "mg/m²": "mg/m2",
    "m²": "m2",
    "mm³": "mm3",
    "lb": "[lb_av]",
    "lbs": "[lb_av]",
    "in": "[in_i]",
    "cells/uL": "/uL",
    "cells/mm3": "/mm3",
    "x10^3/uL": "10*3/uL",
    "x10^9/L": "10*9/L",
    "K/uL": "10*3/uL",
}
_SUGGEST = [
    "mg",
    "g",
    "ug",
    "mg/m2",
    "mg/kg",
    "kg",
    "[lb_av]",
    "cm",
    "[in_i]",
    "m2",
    "/uL",
    "/mm3",
    "10*3/uL",
    "10*9/L",
    "mg/dL",
    "umol/L",
    "mL/min",
    "U/L",
    "%",
    "a",
    "mo",
    "wk",
    "d",
]


class UnitError(ValueError):
    """A unit that is not UCUM, or two units that measure different things."""


@cache
def _registry() -> Any:
    # Imported here: building the registry takes about half a second, and most requests never
    # need a unit converted.
    from ucumvert import PintUcumRegistry

    return PintUcumRegistry()


def normalize_unit(text: str) -> str:
    """The UCUM spelling of a unit (common non-UCUM spellings such as `mcg` mapped)."""
    text = text.strip()
    return _ALIASES.get(text, text)


# A UCUM annotation ({score}, {T-Score}, {cells}) names what is counted and does not change
# the unit: `{T-Score}` is the unit 1, `{cells}/uL` is `/uL`.
_ANNOTATION = re.compile(r"\{[^{}]*\}")


@lru_cache(maxsize=512)
def _quantity(unit: str) -> Any:
    registry = _registry()
    bare = _ANNOTATION.sub("", unit)
    if bare in ("", "."):
        bare = "1"
    elif bare.startswith("/"):
        bare = "1" + bare
    try:
        quantity = registry.from_ucum(bare)
        if not hasattr(quantity, "to"):
            quantity = registry.Quantity(1, quantity)
    except Exception as exc:  # ucumvert raises lark's and pint's errors: all mean "not UCUM"
        near = difflib.get_close_matches(unit, _SUGGEST, n=2, cutoff=0.5)
        hint = f" (did you mean {' or '.join(repr(n) for n in near)}?)" if near else ""
        raise UnitError(f"unknown unit {unit!r}{hint}: units are UCUM codes") from exc
    return quantity


@lru_cache(maxsize=1024)
def dimension(unit: str) -> str:
    """What a unit measures, as pint names it (`[mass] / [length] ** 2` for mg/m2)."""
    return str(_quantity(normalize_unit(unit)).dimensionality)


@lru_cache(maxsize=1024)
def _factor(source: str, target: str) -> float:
    a, b = _quantity(source), _quantity(target)
    if a.dimensionality != b.dimensionality:
        raise UnitError(
            f"{source!r} cannot be converted to {target!r}: they measure different things"
        )
    try:
        return float((a / b).to_base_units().magnitude)
    except Exception as exc:  # pint's offset units (temperatures) have no factor
        raise UnitError(f"{source!r} cannot be converted to {target!r}") from exc


def compatible(source: str, target: str) -> bool:
    """Whether a value in `source` can be converted to `target`."""
    try:
        _factor(normalize_unit(source), normalize_unit(target))
    except UnitError:
        return False
    return True


def convert(value: float, source: str, target: str) -> float:
    """`value` in `source` units expressed in `target` units; UnitError when it cannot be.

    The result keeps 12 significant digits: binary floats make 9 ug 0.009000000000000001 mg,
    which a limit of 0.009 mg would refuse; no clinical value has more digits than that.
    """
    source, target = normalize_unit(source), normalize_unit(target)
    if source == target:
        return value
    return float(f"{value * _factor(source, target):.12g}")
