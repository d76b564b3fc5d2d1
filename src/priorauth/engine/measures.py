"""Reading observations and the measures worked out from them (body surface area, weight,
creatinine clearance), each with the evidence it came from.

A measure is a value, the evidence behind it and, when it is unknown, why. Observations are
matched by code and system; the latest (by date; undated ones count as older than any dated
one, in the order given) is the one read.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection
from typing import NamedTuple

from priorauth.clinical.bsa import FORMULAS
from priorauth.clinical.dates import age_in_years
from priorauth.clinical.observations import (
    ADULT_YEARS,
    BSA,
    CRCL,
    CREATININE,
    HEIGHT,
    KNOWN,
    PLAUSIBLE_CODES,
    ULN,
    WEIGHT,
    Measure,
    implausible,
    in_unit,
)
from priorauth.clinical.renal import cockcroft_gault
from priorauth.clinical.units import UnitError, convert
from priorauth.engine.determination import Evidence
from priorauth.engine.request import Observation, Request

__all__ = [
    "Reading",
    "body_surface_area",
    "body_weight",
    "creatinine_clearance",
    "doubts",
    "implausible_observation",
    "latest",
    "round_half_up",
]


def round_half_up(value: float, decimals: int) -> float:
    """Round as people do on paper: 40.25 -> 40.3 at one decimal (not banker's rounding).

    The 1e-9 nudge keeps decimal halves that binary floats store a hair low (1.005) rounding up.
    """
    factor = 10.0**decimals
    return math.floor(value * factor + 0.5 + 1e-9) / factor


class Reading(NamedTuple):
    """A measure's value (None: unknown), the evidence it was read from, and a note."""

    value: float | None
    evidence: tuple[Evidence, ...]
    note: str | None = None


def _observation_evidence(index: int, observation: Observation) -> Evidence:
    if observation.value is None:
        shown: object = f"{observation.uln_multiple:g} x ULN"
    elif observation.unit is not None:
        shown = f"{observation.value:g} {observation.unit}"
    else:
        shown = observation.value
    if observation.date is not None:
        shown = f"{shown} on {observation.date.isoformat()}"
    return Evidence(f"observations[{index}]", shown)  # type: ignore[arg-type]


def latest(
    request: Request,
    codes: Collection[str],
    system: str = "loinc",
    on: dt.date | None = None,
    within_days: int | None = None,
) -> tuple[int, Observation] | str | None:
    """The latest observation with one of `codes`, and its place in `observations`; None when
    there is none; a note (a string) when there are some but none counts (too old, or undated
    where a recent one is needed). A value dated after the service date still counts: a
    request decided before the first dose may carry the latest results."""
    found = [
        (i, o) for i, o in enumerate(request.observations) if o.code in codes and o.system == system
    ]
    if not found:
        return None
    if within_days is not None and on is not None:
        recent = [
            (i, o)
            for i, o in found
            if o.date is not None and on - dt.timedelta(days=within_days) <= o.date
        ]
        if not recent:
            dated = any(o.date is not None for _, o in found)
            return (
                f"no value within {within_days} days before {on.isoformat()}"
                if dated
                else f"no date on the value (it must be within {within_days} days)"
            )
        found = recent
    # Undated first, then by date; among equals the later in the list wins.
    found.sort(key=lambda pair: (pair[1].date or dt.date.min, pair[0]))
    return found[-1]


def implausible_observation(request: Request, observation: Observation, on: dt.date) -> str | None:
    """Why one of the request's observations is not plausible for its unit and the patient (aged
    as on `on`), or None when it is plausible or cannot be judged (clinical.observations).

    The engine reads an implausible value as unknown and asks the requester to confirm it; a
    safety screen should do the same rather than read it as a fact.
    """
    value = observation.value
    if observation.code not in PLAUSIBLE_CODES or observation.system != "loinc":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    code, number, unit = observation.code, float(value), observation.unit
    # What is plausible for an adult is plausible for anyone (a child is judged by fewer
    # ranges), so the age is worked out only for a value an adult could not have.
    if implausible(code, number, unit, age_years=ADULT_YEARS) is None:
        return None
    birth = request.patient.birth_date
    age = age_in_years(birth, on) if birth is not None and birth <= on else None
    return implausible(code, number, unit, age_years=age)


def doubts(request: Request, on: dt.date) -> dict[str, str]:
    """Every implausible observation of the request, by its field (`observations[1]`), with
    why."""
    found: dict[str, str] = {}
    for index, observation in enumerate(request.observations):
        problem = implausible_observation(request, observation, on)
        if problem is not None:
            found[f"observations[{index}]"] = problem
    return found


def quantity(index: int, observation: Observation, unit: str | None) -> Reading:
    """An observation's value in `unit` (`{ULN}`: as a multiple of the upper limit of normal),
    or as given when `unit` is None."""
    evidence = (_observation_evidence(index, observation),)
    if unit == ULN:
        if observation.uln_multiple is not None:
            return Reading(observation.uln_multiple, evidence)
        if observation.unit == ULN and isinstance(observation.value, int | float):
            return Reading(float(observation.value), evidence)
        return Reading(None, evidence, "the value is not given as a multiple of the upper limit")
    value = observation.value
    if unit is None:
        return Reading(value, evidence)  # type: ignore[arg-type]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return Reading(None, evidence, f"not a number in {unit}")
    if observation.unit is None:
        return Reading(None, evidence, f"the value has no unit (expected {unit})")
    try:
        return Reading(convert(float(value), observation.unit, unit), evidence)
    except UnitError:
        return Reading(None, evidence, f"{observation.unit!r} cannot be read as {unit!r}")


# Each measure's LOINC codes (a weight may be measured or stated, ...).
_CODES: dict[Measure, frozenset[str]] = {
    measure: frozenset(code for code, known in KNOWN.items() if known == measure)
    for measure in set(KNOWN.values())
}


def _measure(request: Request, measure: Measure, on: dt.date, within_days: int | None) -> Reading:
    found = latest(request, _CODES[measure], "loinc", on, within_days)
    if found is None:
        return Reading(None, (), f"no {measure.name} given")
    if isinstance(found, str):
        return Reading(None, (), f"{measure.name}: {found}")
    index, observation = found
    doubt = implausible_observation(request, observation, on)
    if doubt is not None:
        return Reading(None, (_observation_evidence(index, observation),), doubt)
    value, unit = observation.value, observation.unit
    if measure.molar_mass is not None and isinstance(value, int | float) and unit is not None:
        # A substance reported by amount (creatinine in umol/L) is read by its molar mass.
        evidence = (_observation_evidence(index, observation),)
        try:
            return Reading(in_unit(measure, float(value), unit), evidence)
        except UnitError:
            return Reading(None, evidence, f"{unit!r} cannot be read as {measure.unit!r}")
    return quantity(index, observation, measure.unit)


def body_weight(request: Request, on: dt.date, within_days: int | None = None) -> Reading:
    """The latest body weight, in kg."""
    return _measure(request, WEIGHT, on, within_days)


def body_surface_area(
    request: Request,
    on: dt.date,
    formula: str = "mosteller",
    decimals: int = 2,
    cap_m2: float | None = None,
    within_days: int | None = None,
) -> Reading:
    """The body surface area in m2: measured, else from the latest height and weight by the
    formula; rounded to `decimals` and, when `cap_m2` is given, no more than the cap."""
    measured = _measure(request, BSA, on, within_days)
    if measured.value is not None:
        value, evidence, note = round_half_up(measured.value, decimals), measured.evidence, None
    else:
        height = _measure(request, HEIGHT, on, within_days)
        weight = _measure(request, WEIGHT, on, within_days)
        if height.value is None or weight.value is None:
            missing = [r.note for r in (height, weight) if r.value is None and r.note]
            return Reading(None, height.evidence + weight.evidence, "; ".join(missing))
        computed = FORMULAS[formula](height.value, weight.value)
        value = round_half_up(computed, decimals)
        evidence, note = height.evidence + weight.evidence, f"{formula} from height and weight"
    if cap_m2 is not None and value > cap_m2:
        return Reading(cap_m2, evidence, f"{value:g} m2, capped at {cap_m2:g} m2")
    return Reading(value, evidence, note)


def creatinine_clearance(request: Request, on: dt.date, within_days: int | None = None) -> Reading:
    """Creatinine clearance in mL/min: measured, else Cockcroft-Gault from the latest serum
    creatinine, the age on the service date, the latest weight and the sex."""
    measured = _measure(request, CRCL, on, within_days)
    if measured.value is not None:
        return measured
    creatinine = _measure(request, CREATININE, on, within_days)
    weight = _measure(request, WEIGHT, on, within_days)
    patient = request.patient
    evidence = creatinine.evidence + weight.evidence
    lacking = [r.note for r in (creatinine, weight) if r.value is None and r.note]
    if patient.birth_date is None:
        lacking.append("no birth date given")
    else:
        evidence += (Evidence("patient.birth_date", patient.birth_date.isoformat()),)
        if patient.birth_date > on:
            lacking.append("the birth date is after the service date")
    if patient.sex not in ("female", "male"):
        lacking.append("the sex (female or male) is needed for Cockcroft-Gault")
    else:
        evidence += (Evidence("patient.sex", patient.sex),)
    if lacking or creatinine.value is None or weight.value is None or patient.birth_date is None:
        return Reading(None, evidence, "; ".join(lacking))
    if creatinine.value <= 0:
        return Reading(None, evidence, "a serum creatinine of 0 gives no clearance")
    value = cockcroft_gault(
        age_years=age_in_years(patient.birth_date, on),
        weight_kg=weight.value,
        serum_creatinine_mg_dl=creatinine.value,
        female=patient.sex == "female",
    )
    return Reading(round_half_up(value, 1), evidence, "Cockcroft-Gault")
