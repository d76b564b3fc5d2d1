"""Observations every policy may read (body measures, kidney function), by LOINC code, with
their canonical units and the range a real value falls in.

A value outside its range is refused with the field named: an adult height of 6.5 "cm" is a
typing slip, never a fact to decide on. The ranges are wide on purpose (a newborn to the
heaviest patient on record); a drug's own lab limits live in its policy.
"""

from __future__ import annotations

from typing import NamedTuple

from priorauth.clinical.units import UnitError, convert

__all__ = [
    "BSA",
    "CRCL",
    "CREATININE",
    "HEIGHT",
    "KNOWN",
    "ULN",
    "WEIGHT",
    "Measure",
    "check_plausible",
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
