"""Observations every policy may read (body measures, kidney function, blood counts), by LOINC
code, with their canonical units, the range any real value falls in and the range a value is
plausible in.

Two ranges, two answers. A value outside the *physical* range of a body measure (`KNOWN`: a
newborn to the heaviest patient on record) is refused by the request contract with the field
named: a height of 6.5 "cm" is no record of a person. A value inside it but outside the
*plausible* range for its unit and the patient (`PLAUSIBLE`: an adult 65 cm tall, neutrophils
of 1.8 per uL, meant as 1.8 x 10*3/uL) is not a fact: `implausible` says why, and the engine
asks the requester to confirm the value and its unit. A drug's own lab limits live in its
policy. docs/request.md lists the plausible ranges with their reasons.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from priorauth.clinical.units import UnitError, convert

__all__ = [
    "ADULT_YEARS",
    "BSA",
    "CRCL",
    "CREATININE",
    "HEIGHT",
    "KNOWN",
    "PLAUSIBLE",
    "PLAUSIBLE_CODES",
    "ULN",
    "WEIGHT",
    "Measure",
    "PlausibleRange",
    "check_plausible",
    "implausible",
    "in_unit",
]


class Measure(NamedTuple):
    """A well-known observation: its LOINC code, what it is, its unit and plausible range, and
    for a substance measured by mass or by amount, its molar mass (g/mol)."""

    code: str
    name: str
    unit: str
    low: float
    high: float
    molar_mass: float | None = None


HEIGHT = Measure("8302-2", "body height", "cm", 20, 272)
WEIGHT = Measure("29463-7", "body weight", "kg", 0.3, 700)
BSA = Measure("8277-6", "body surface area", "m2", 0.05, 5)
# Creatinine, 113.12 g/mol: 1 mg/dL is 88.4 umol/L (the SI unit most labs outside the US use).
CREATININE = Measure("2160-0", "serum creatinine", "mg/dL", 0.05, 40, molar_mass=113.12)
CRCL = Measure("2164-2", "creatinine clearance", "mL/min", 0, 400)

# The unit a policy names for a lab value read as a multiple of its upper limit of normal.
ULN = "{ULN}"

KNOWN: dict[str, Measure] = {m.code: m for m in (HEIGHT, WEIGHT, BSA, CREATININE, CRCL)}
# Other LOINC codes for the same measures (a measured or stated weight, a stated height, a
# creatinine reported in umol/L).
KNOWN.update(
    {"3141-9": WEIGHT, "8308-9": HEIGHT, "3137-7": HEIGHT, "3140-1": BSA, "14682-9": CREATININE}
)


def in_unit(measure: Measure, value: float, unit: str) -> float:
    """A value of a measure in the measure's own unit. A substance given by amount (umol/L)
    is converted by its molar mass; UnitError when the unit is not one of the measure's."""
    try:
        return convert(value, unit, measure.unit)
    except UnitError:
        if measure.molar_mass is None:
            raise
        mol_per_litre = convert(value, unit, "mol/L")
        return convert(mol_per_litre * measure.molar_mass, "g/L", measure.unit)


def check_plausible(code: str, value: float, unit: str | None) -> str | None:
    """What is wrong with a value of a known measure (no unit, a unit of another kind, out of
    range), or None when it is plausible or the code is not one this module knows."""
    measure = KNOWN.get(code)
    if measure is None:
        return None
    if unit is None:
        return f"a {measure.name} needs its unit (e.g. {measure.unit})"
    try:
        canonical = in_unit(measure, value, unit)
    except UnitError:
        return f"{unit!r} is not a unit of {measure.name} (e.g. {measure.unit})"
    if not measure.low <= canonical <= measure.high:
        return (
            f"a {measure.name} of {value:g} {unit} is not plausible "
            f"(expected {measure.low:g} to {measure.high:g} {measure.unit})"
        )
    return None


class PlausibleRange(NamedTuple):
    """Where a real value of an observation lies, in `unit`: `low` to `high`, for adults only
    when `adults_only` (the age must be known), and 0 as well when `zero` (a count with none
    found). `meant` are units a value is often written for by mistake (1.8 "/mm3" for
    1.8 x 10*3/uL), suggested when the value would be plausible in one. `why` is the reason for
    the numbers (docs/request.md shows it)."""

    codes: tuple[str, ...]
    name: str
    unit: str
    low: float
    high: float
    why: str
    adults_only: bool = False
    zero: bool = False
    meant: tuple[str, ...] = ()
    molar_mass: float | None = None


# The age from which the adult ranges apply.
ADULT_YEARS = 18
_COUNTS = ("10*3/uL", "/uL")

PLAUSIBLE: tuple[PlausibleRange, ...] = (
    PlausibleRange(
        ("8302-2", "8308-9", "3137-7"),
        "body height",
        "cm",
        100,
        250,
        "adults below 100 cm (severe skeletal dysplasias) or above 250 cm are a handful in the "
        "world; a value there is far likelier inches, metres or a child's record",
        adults_only=True,
    ),
    PlausibleRange(
        ("29463-7", "3141-9"),
        "body weight",
        "kg",
        25,
        350,
        "an adult below 25 kg or above 350 kg is extremely rare; pounds written as kg (or "
        "grams) land there",
        adults_only=True,
    ),
    PlausibleRange(
        ("8277-6", "3140-1"),
        "body surface area",
        "m2",
        0.8,
        3.5,
        "the adult heights and weights above give BSAs of about 0.8 to 3.5 m2",
        adults_only=True,
    ),
    PlausibleRange(
        ("751-8", "26499-4"),
        "neutrophils",
        "/uL",
        10,
        200_000,
        "a count is 0 (none seen) or at least tens per uL; a nonzero count below 10/uL is a "
        "count in thousands written per uL (1.8 for 1.8 x 10*3/uL); above 200,000/uL is beyond "
        "leukaemic counts",
        zero=True,
        meant=_COUNTS,
    ),
    PlausibleRange(
        ("6690-2", "26464-8"),
        "leukocytes",
        "/uL",
        10,
        1_000_000,
        "a white count is 0 or at least tens per uL; hyperleukocytosis stays below 1,000,000/uL",
        zero=True,
        meant=_COUNTS,
    ),
    PlausibleRange(
        ("777-3", "26515-7"),
        "platelets",
        "/uL",
        1_000,
        5_000_000,
        "the lowest platelet counts reported are about 1,000/uL (1 x 10*3/uL); a nonzero count "
        "below that is a count in thousands; extreme thrombocytosis stays below 5,000,000/uL",
        zero=True,
        meant=_COUNTS,
    ),
    PlausibleRange(
        ("718-7",),
        "hemoglobin",
        "g/dL",
        1,
        25,
        "survivable haemoglobin lies between about 1 and 25 g/dL; g/L written as g/dL lands above",
        meant=("g/L",),
    ),
    PlausibleRange(
        ("17861-6",),
        "serum calcium",
        "mg/dL",
        3,
        25,
        "serum calcium outside 3 to 25 mg/dL (0.75 to 6.2 mmol/L) is not compatible with life "
        "for long; mmol/L written as mg/dL lands below",
        meant=("mmol/L",),
        molar_mass=40.078,
    ),
    PlausibleRange(
        ("2160-0", "14682-9"),
        "serum creatinine",
        "mg/dL",
        0.1,
        30,
        "serum creatinine below 0.1 or above 30 mg/dL is not seen in patients; umol/L written "
        "as mg/dL lands above",
        meant=("umol/L",),
        molar_mass=113.12,
    ),
    PlausibleRange(
        ("2164-2",),
        "creatinine clearance",
        "mL/min",
        0,
        300,
        "a clearance above 300 mL/min is beyond even augmented renal clearance",
    ),
)
_PLAUSIBLE: dict[str, PlausibleRange] = {code: row for row in PLAUSIBLE for code in row.codes}
# The LOINC codes the table judges (any other is read as given).
PLAUSIBLE_CODES = frozenset(_PLAUSIBLE)
_AS_MEASURE = {
    row: Measure(row.codes[0], row.name, row.unit, row.low, row.high, row.molar_mass)
    for row in PLAUSIBLE
}


def _canonical(row: PlausibleRange, value: float, unit: str) -> float:
    """A value in the row's unit; a substance given by amount is converted by its molar mass.
    UnitError when the unit is not one of the row's."""
    if unit == row.unit:
        return value
    return in_unit(_AS_MEASURE[row], value, unit)


def _inside(row: PlausibleRange, value: float) -> bool:
    return row.low <= value <= row.high or (row.zero and value == 0)


def _number(value: float) -> str:
    """A bound as people write it: 200,000 and 0.1 (not 2e+05)."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def implausible(
    code: str,
    value: float,
    unit: str | None,
    *,
    age_years: int | None = None,
    system: str = "loinc",
) -> str | None:
    """Why an observation's value is not plausible for its unit and the patient, in a sentence
    a requester can act on; None when it is plausible, or when nothing is known to judge it by
    (a code not in PLAUSIBLE, no unit or one of another kind, an adult range with the age not
    known or under 18).

    >>> implausible("8302-2", 65, "cm", age_years=40)
    'body height 65 cm is outside the plausible range for an adult (100 to 250 cm)'
    >>> implausible("751-8", 1.8, "10*3/uL") is None
    True
    """
    row = _PLAUSIBLE.get(code) if system == "loinc" else None
    if row is None or unit is None or not math.isfinite(value):
        return None
    if row.adults_only and (age_years is None or age_years < ADULT_YEARS):
        return None
    try:
        canonical = _canonical(row, value, unit)
    except UnitError:
        return None
    if _inside(row, canonical):
        return None
    bounds = f"{_number(row.low)} to {_number(row.high)} {row.unit}"
    if row.zero:
        bounds = f"0, or {bounds}"
    who = " for an adult" if row.adults_only else ""
    message = f"{row.name} {value:g} {unit} is outside the plausible range{who} ({bounds})"
    for other in row.meant:
        if other != unit and _inside(row, _canonical(row, value, other)):
            return f"{message}; was {value:g} {other} meant?"
    return message
