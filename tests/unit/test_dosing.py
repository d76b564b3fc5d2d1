"""Dosing: every boundary of both regimens, other cycle lengths, mg conversion, units."""

from __future__ import annotations

from typing import Any

import pytest

from priorauth import PolicySet
from priorauth.clinical.bsa import body_surface_area, dubois, mosteller
from priorauth.engine.dosing import round_half_up


def regimen(request: dict[str, Any], dose: float, unit: str, doses: int, days: int) -> None:
    request["regimen"].update(
        dose=dose, dose_unit=unit, doses_per_cycle=doses, cycle_length_days=days
    )


@pytest.mark.parametrize(
    ("dose", "doses", "days", "status", "fitted"),
    [
        (40, 1, 21, "within", "A"),  # regimen A at its limit
        (40.1, 1, 21, "outside", None),  # a hair over the per-dose limit
        (39.9, 1, 21, "within", "A"),
        (40, 2, 21, "outside", None),  # twice in a 21-day cycle
        (40, 1, 20, "outside", None),  # more often than every 21 days
        (40, 1, 28, "within", "A"),  # less often is within
        (32, 1, 14, "outside", None),  # smaller dose, too often
        (16, 3, 28, "within", "B"),  # regimen B at its limit
        (16.1, 3, 28, "outside", None),
        (16, 4, 28, "outside", None),  # four doses in 28 days
        (16, 1, 7, "outside", None),  # weekly without a week off: more often than B
        (16, 2, 28, "within", "B"),
        (16, 1, 21, "within", "A"),  # fits A first (policy order)
        (12, 3, 21, "outside", None),  # three in 21 days is denser than three in 28
        (20, 3, 28, "outside", None),  # B's schedule with A-range dose
    ],
)
def test_regimen_boundaries(
    policies: PolicySet,
    approvable: dict[str, Any],
    dose: float,
    doses: int,
    days: int,
    status: str,
    fitted: str | None,
) -> None:
    regimen(approvable, dose, "mg/m2", doses, days)
    determination = policies.evaluate(approvable)
    assert determination.dosing is not None
    assert determination.dosing.status == status
    assert determination.dosing.regimen == fitted
    if status == "outside":
        assert determination.reasons == ("dose-exception",)
        assert determination.route == "clinician"
        assert determination.authorization is None
    else:
        assert determination.outcome == "approved"
        assert determination.authorization is not None
        assert determination.authorization.regimen == fitted


def test_mg_dose_converted_with_rounded_bsa(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    # 165 cm, 68 kg: Mosteller 1.7701 -> 1.77 m2; 70 mg / 1.77 = 39.548 -> 39.5 mg/m2.
    regimen(approvable, 70, "mg", 1, 21)
    determination = policies.evaluate(approvable)
    assert determination.dosing is not None
    assert determination.dosing.bsa_m2 == 1.77
    assert determination.dosing.dose_mg_per_m2 == 39.5
    assert determination.outcome == "approved"
    assert determination.authorization is not None
    assert determination.authorization.mg_per_dose == 70
    assert determination.authorization.units_per_dose == 70


def test_mg_dose_rounding_boundary(policies: PolicySet, approvable: dict[str, Any]) -> None:
    approvable["patient"]["bsa_m2"] = 2.0
    regimen(approvable, 80.09, "mg", 1, 21)  # 40.045 -> 40.0: within
    assert policies.evaluate(approvable).outcome == "approved"
    regimen(approvable, 80.1, "mg", 1, 21)  # 40.05 -> 40.1 (half up): outside
    determination = policies.evaluate(approvable)
    assert determination.dosing is not None
    assert determination.dosing.dose_mg_per_m2 == 40.1
    assert determination.reasons == ("dose-exception",)


def test_mg_dose_without_height_and_weight_is_missing_information(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    del approvable["patient"]["height_cm"]
    regimen(approvable, 70, "mg", 1, 21)
    determination = policies.evaluate(approvable)
    assert determination.reasons == ("missing-information",)
    assert determination.dosing is not None
    assert determination.dosing.status == "unknown"
    (question,) = determination.missing
    assert "patient.height_cm" in question.fields
    assert question.criteria == ("Dosing",)


def test_mg_per_m2_dose_needs_no_bsa_but_units_do(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    del approvable["patient"]["height_cm"]
    determination = policies.evaluate(approvable)
    assert determination.outcome == "approved"
    assert determination.authorization is not None
    assert determination.authorization.mg_per_dose is None
    assert determination.authorization.units is None
    assert determination.authorization.cycles == 18


def test_too_dense_schedule_is_an_exception_even_with_unknown_dose(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    del approvable["patient"]["height_cm"]
    regimen(approvable, 70, "mg", 5, 21)
    determination = policies.evaluate(approvable)
    assert determination.dosing is not None
    assert determination.dosing.status == "outside"
    assert determination.reasons == ("dose-exception",)


def test_missing_schedule_is_missing_information(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    del approvable["regimen"]["cycle_length_days"]
    determination = policies.evaluate(approvable)
    assert determination.reasons == ("missing-information",)
    assert determination.missing[0].fact == "regimen.schedule"


def test_measured_bsa_is_used_over_height_and_weight(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    approvable["patient"]["bsa_m2"] = 1.5
    determination = policies.evaluate(approvable)
    assert determination.dosing is not None
    assert determination.dosing.bsa_source == "patient.bsa_m2"
    assert determination.authorization is not None
    assert determination.authorization.mg_per_dose == 60.0


def test_units_for_a_year_weekly(policies: PolicySet, approvable: dict[str, Any]) -> None:
    approvable["patient"]["bsa_m2"] = 1.8
    regimen(approvable, 16, "mg/m2", 3, 28)
    determination = policies.evaluate(approvable)
    auth = determination.authorization
    assert auth is not None
    # 16 x 1.8 = 28.8 mg -> 29 units a dose; 14 cycles start within 2026-12-01..2027-11-30.
    assert (auth.mg_per_dose, auth.units_per_dose, auth.cycles) == (28.8, 29, 14)
    assert auth.units == 29 * 3 * 14
    assert auth.billing_code == "J9207"


def test_bsa_check_values() -> None:
    # The domain sheet's check values for 177.8 cm, 72.6 kg (given to 3 decimals, truncated).
    assert mosteller(177.8, 72.6) == pytest.approx(1.8936, abs=1e-4)
    assert dubois(177.8, 72.6) == pytest.approx(1.898, abs=1e-3)
    for formula in ("haycock", "gehan-george", "boyd"):
        assert 1.8 < body_surface_area(177.8, 72.6, formula) < 2.0


def test_round_half_up() -> None:
    assert round_half_up(40.25, 1) == 40.3
    assert round_half_up(40.05, 1) == 40.1
    assert round_half_up(1.005, 2) == 1.01
    assert round_half_up(40.04999, 1) == 40.0
