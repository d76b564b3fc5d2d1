"""Fit a requested regimen to the policy's regimens.

How a regimen is judged (docs/dosing.md says the same for users):

* Each dose must not exceed the regimen's per-dose limit (mg/m2).
* Doses must come no more often than the regimen allows: doses per cycle / cycle length in days
  no higher than the regimen's. With the regimen's own cycle length this is "no more doses per
  cycle than allowed"; with another cycle length it is the natural reading of the policy:
  40 mg/m2 every 28 days fits "40 mg/m2 once in each 21-day cycle", every 14 days does not, and
  16 mg/m2 three times in 28 days does not (it is the weekly regimen, not the 3-weekly one).
  Together the two rules keep the dose intensity (mg/m2 a day) within the regimen's.
* A dose in mg is converted with the body surface area (given, or from height and weight by the
  policy's formula) rounded to `rounding.bsa_decimals`; the mg/m2 figure is rounded half-up to
  `rounding.mg_per_m2_decimals` and may exceed the limit by `rounding.tolerance_percent` at most.
* A mg dose with no body surface area cannot be checked: that is unknown (missing information),
  not a dose exception.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

from priorauth.clinical.bsa import FORMULAS
from priorauth.engine.determination import (
    DosingResult,
    Missing,
    RegimenCheck,
    RequestedRegimen,
)
from priorauth.engine.kept import remember
from priorauth.engine.request import Regimen as RequestedRegimenFields
from priorauth.engine.request import Request
from priorauth.policy.model import Dosing, Regimen

__all__ = ["DoseKey", "DosingEvaluator", "dose_key", "round_half_up"]


def round_half_up(value: float, decimals: int) -> float:
    """Round as people do on paper: 40.25 -> 40.3 at one decimal (not banker's rounding).

    The 1e-9 nudge keeps decimal halves that binary floats store a hair low (1.005) rounding up.
    """
    factor = 10.0**decimals
    return math.floor(value * factor + 0.5 + 1e-9) / factor


# status, the regimen fitted, the check against each regimen, the regimen as requested
_Fit = tuple[
    Literal["within", "outside", "unknown"], str | None, tuple[RegimenCheck, ...], RequestedRegimen
]


class _Bsa(NamedTuple):
    value: float | None
    source: str | None


_NO_BSA_VALUE = _Bsa(None, None)
DoseKey = tuple[object, ...]


def dose_key(regimen: RequestedRegimenFields, bsa: object) -> DoseKey:
    """What a dosing result depends on: the dose, its unit, the schedule and the BSA."""
    return (
        regimen.dose,
        regimen.dose_unit,
        regimen.doses_per_cycle,
        regimen.cycle_length_days,
        bsa,
    )


class DosingEvaluator:
    """The policy's dosing section prepared once; `evaluate` fits one request's regimen."""

    def __init__(self, dosing: Dosing) -> None:
        self.dosing = dosing
        self._formula = FORMULAS[dosing.bsa_formula]
        self._factor = 1.0 + dosing.rounding.tolerance_percent / 100.0
        self._regimens = list(dosing.regimens)
        self._allowed = {
            r.id: f"{r.max_doses_per_cycle} dose(s) of {r.max_dose_mg_per_m2:g} mg/m2 every "
            f"{r.cycle_length_days} days"
            for r in dosing.regimens
        }
        self._bsa_decimals = dosing.rounding.bsa_decimals
        self._bsa_source = f"{dosing.bsa_formula}(patient.height_cm, patient.weight_kg)"
        self._kept: dict[DoseKey, tuple[DosingResult, tuple[Missing, ...]]] = {}

    def body_surface_area(self, request: Request) -> _Bsa:
        """The BSA in m2 (rounded as the policy says) and where it came from, or unknown."""
        patient = request.patient
        decimals = self._bsa_decimals
        if patient.bsa_m2 is not None:
            return _Bsa(round_half_up(patient.bsa_m2, decimals), "patient.bsa_m2")
        if patient.height_cm is not None and patient.weight_kg is not None:
            value = self._formula(patient.height_cm, patient.weight_kg)
            return _Bsa(round_half_up(value, decimals), self._bsa_source)
        return _NO_BSA_VALUE

    def evaluate(self, request: Request) -> tuple[DosingResult, tuple[Missing, ...], _Bsa]:
        """The dosing result, the questions that would settle an unknown, and the BSA used."""
        regimen = request.regimen
        bsa = self.body_surface_area(request)
        # The result depends on these values alone, and they recur (standard doses and
        # schedules, a BSA to two decimals): it is kept by them.
        key = dose_key(regimen, bsa)
        found = self._kept.get(key)
        if found is None:
            found = remember(self._kept, key, self._evaluate(request, bsa))
        return found[0], found[1], bsa

    def _evaluate(self, request: Request, bsa: _Bsa) -> tuple[DosingResult, tuple[Missing, ...]]:
        regimen = request.regimen
        dose, unit = regimen.dose, regimen.dose_unit
        missing: list[Missing] = []
        dose_mg_m2: float | None = None
        if dose is None:
            missing.append(_NO_DOSE)
        elif unit == "mg/m2":
            dose_mg_m2 = dose
        elif bsa.value is not None:
            dose_mg_m2 = round_half_up(dose / bsa.value, self.dosing.rounding.mg_per_m2_decimals)
        else:
            missing.append(_NO_BSA)
        if regimen.doses_per_cycle is None or regimen.cycle_length_days is None:
            missing.append(_NO_SCHEDULE_QUESTION)
        status, fitted, checks, requested = self._fit(dose_mg_m2, request)
        result = DosingResult(
            status=status,
            requested=requested,
            bsa_m2=bsa.value,
            bsa_source=bsa.source,
            dose_mg_per_m2=dose_mg_m2,
            regimen=fitted,
            checks=checks,
        )
        return result, (tuple(missing) if status == "unknown" else ())

    def _fit(self, dose_mg_m2: float | None, request: Request) -> _Fit:
        regimen = request.regimen
        requested = RequestedRegimen(
            dose=regimen.dose,
            dose_unit=regimen.dose_unit,
            doses_per_cycle=regimen.doses_per_cycle,
            cycle_length_days=regimen.cycle_length_days,
        )
        checks = tuple(self._check(r, dose_mg_m2, request) for r in self._regimens)
        fitted = next((c.id for c in checks if c.status == "met"), None)
        status: Literal["within", "outside", "unknown"]
        if fitted is not None:
            status = "within"
        elif all(c.status == "not-met" for c in checks):
            status = "outside"
        else:
            status = "unknown"
        return status, fitted, checks, requested

    def _check(self, policy_regimen: Regimen, dose: float | None, request: Request) -> RegimenCheck:
        rid, text = policy_regimen.id, policy_regimen.text
        doses = request.regimen.doses_per_cycle
        days = request.regimen.cycle_length_days
        limit = policy_regimen.max_dose_mg_per_m2
        if dose is not None and dose > limit * self._factor:
            return RegimenCheck(
                rid, text, "not-met", f"{dose:g} mg/m2 a dose exceeds {limit:g} mg/m2"
            )
        if doses is None or days is None:
            return RegimenCheck(rid, text, "unknown", _NO_SCHEDULE)
        allowed = self._allowed[rid]
        # Cross-multiplied so whole numbers compare exactly: doses/days <= allowed/cycle.
        if doses * policy_regimen.cycle_length_days > policy_regimen.max_doses_per_cycle * days:
            return RegimenCheck(
                rid,
                text,
                "not-met",
                f"{doses} dose(s) every {days} days is more often than {allowed}",
            )
        if dose is None:
            return RegimenCheck(
                rid,
                text,
                "unknown",
                f"{doses} dose(s) every {days} days; the dose in mg/m2 is not known",
            )
        return RegimenCheck(
            rid, text, "met", f"{dose:g} mg/m2, {doses} dose(s) every {days} days, within {allowed}"
        )


_NO_SCHEDULE = "the schedule (doses per cycle, cycle length) is not known"
_NO_DOSE = Missing(
    fact="regimen.dose",
    question="What is each dose, in mg/m2 or mg?",
    fields=("regimen.dose", "regimen.dose_unit"),
    criteria=("Dosing",),
)
_NO_BSA = Missing(
    fact="patient.bsa_m2",
    question="The dose is in mg: what are the patient's height (cm) and weight (kg), or body "
    "surface area (m2)?",
    fields=("patient.height_cm", "patient.weight_kg", "patient.bsa_m2"),
    criteria=("Dosing",),
)
_NO_SCHEDULE_QUESTION = Missing(
    fact="regimen.schedule",
    question="How many doses are given in each cycle, and how many days is a cycle?",
    fields=("regimen.doses_per_cycle", "regimen.cycle_length_days"),
    criteria=("Dosing",),
)
