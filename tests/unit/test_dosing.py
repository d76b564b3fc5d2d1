"""Dosing and what an approval authorizes: units, the window rule, inductions and intervals,
routes, which regimens apply, billing units, doses in the period, periods, continuations and
the choice between indications."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from priorauth import Determination, PolicySet, parse_request
from priorauth.clinical.bsa import body_surface_area, dubois, mosteller
from priorauth.engine.measures import round_half_up
from tests.unit.builders import DRUG, REGIMEN, compiled, decide, request

HEIGHT = {"code": "8302-2", "value": 165, "unit": "cm"}  # with 68 kg: Mosteller 1.7654 -> 1.77
WEIGHT = {"code": "29463-7", "value": 68, "unit": "kg"}
BSA_2 = {"code": "8277-6", "value": 2.0, "unit": "m2"}


def regimen(**parts: Any) -> dict[str, Any]:
    return {**REGIMEN, **parts}


def dose(value: float, unit: str) -> dict[str, Any]:
    return {"service_dose": {"value": value, "unit": unit}}


def cycles(doses: int, days: int, on: list[int] | None = None) -> dict[str, Any]:
    given: dict[str, Any] = {"cycle_length_days": days}
    if on is None:
        given["doses_per_cycle"] = doses
    else:
        given["cycle_days"] = on
    return {"service_schedule": given}


def dosing_of(determination: Determination) -> Any:
    assert determination.dosing is not None
    return determination.dosing


# --- the shipped policy's two regimens ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "doses", "days", "status", "fitted"),
    [
        (40, 1, 21, "within", "A"),  # regimen A at its limit
        (40.1, 1, 21, "outside", None),  # a hair over the per-dose limit
        (39.9, 1, 21, "within", "A"),
        (40, 2, 21, "outside", None),  # twice in a 21-day cycle
        (40, 1, 20, "outside", None),  # more often than every 21 days
        (40, 1, 28, "within", "A"),  # less often is within
        (40, 1, 14, "outside", None),  # every 14 days: two doses in some 21 days
        (32, 1, 14, "outside", None),  # smaller dose, too often
        (16, 3, 28, "within", "B"),  # regimen B at its limit
        (16.1, 3, 28, "outside", None),
        (16, 4, 28, "outside", None),  # four doses in 28 days
        (16, 1, 7, "outside", None),  # weekly without a week off: more often than B
        (16, 2, 28, "within", "B"),
        (16, 1, 21, "within", "A"),  # fits A first (policy order)
        (12, 3, 21, "outside", None),  # three in 21 days is denser than three in 28
        (20, 3, 28, "outside", None),  # B's schedule with A-range dose
        (45, 1, 21, "outside", None),
    ],
)
def test_shipped_regimen_boundaries(
    policies: PolicySet,
    approvable: dict[str, Any],
    value: float,
    doses: int,
    days: int,
    status: str,
    fitted: str | None,
) -> None:
    approvable["service"]["dose"] = {"value": value, "unit": "mg/m2"}
    approvable["service"]["schedule"] = {"cycle_length_days": days, "doses_per_cycle": doses}
    determination = policies.evaluate(approvable)
    assert dosing_of(determination).status == status
    assert dosing_of(determination).regimen == fitted
    if status == "outside":
        assert determination.reasons == ("dose-exception",)
        assert determination.route == "clinician"
        assert determination.authorization is None
    else:
        assert determination.outcome == "approved"
        assert determination.authorization is not None
        assert determination.authorization.regimen == fitted


def test_two_doses_on_unknown_days_ask_for_the_days_then_fit(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    """16 mg/m2 twice in 21 days: 3 or 4 doses in some 28 days, depending on the days."""
    approvable["service"]["dose"] = {"value": 16, "unit": "mg/m2"}
    approvable["service"]["schedule"] = {"cycle_length_days": 21, "doses_per_cycle": 2}
    determination = policies.evaluate(approvable)
    assert dosing_of(determination).status == "unknown"
    assert [m.fact for m in determination.missing] == ["service.schedule.cycle_days"]
    assert determination.reasons == ("missing-information",)
    approvable["service"]["schedule"] = {"cycle_length_days": 21, "cycle_days": [1, 8]}
    determination = policies.evaluate(approvable)
    assert dosing_of(determination).regimen == "B"
    approvable["service"]["schedule"] = {"cycle_length_days": 21, "cycle_days": [1, 21]}
    assert dosing_of(policies.evaluate(approvable)).status == "outside"


def test_mg_dose_converted_with_rounded_bsa(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    # 165 cm, 68 kg: Mosteller 1.7654 -> 1.77 m2; 70 mg / 1.77 = 39.548 -> 39.5 mg/m2.
    approvable["service"]["dose"] = {"value": 70, "unit": "mg"}
    determination = policies.evaluate(approvable)
    assert dosing_of(determination).bsa_m2 == 1.77
    assert dosing_of(determination).checks[0].dose == 39.5
    assert dosing_of(determination).bsa_source == "mosteller(observations[0], observations[1])"
    assert determination.outcome == "approved"
    assert determination.authorization is not None
    assert determination.authorization.mg_per_dose == 70
    assert determination.authorization.units_per_dose == 70


def test_mg_dose_rounding_boundary(policies: PolicySet, approvable: dict[str, Any]) -> None:
    approvable["observations"].append(BSA_2)
    approvable["service"]["dose"] = {"value": 80.09, "unit": "mg"}  # 40.045 -> 40.0: within
    assert policies.evaluate(approvable).outcome == "approved"
    approvable["service"]["dose"] = {"value": 80.1, "unit": "mg"}  # 40.05 -> 40.1: outside
    determination = policies.evaluate(approvable)
    assert dosing_of(determination).checks[0].dose == 40.1
    assert determination.reasons == ("dose-exception",)


def test_mg_dose_without_height_is_missing_information(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    approvable["observations"] = [WEIGHT]
    approvable["service"]["dose"] = {"value": 70, "unit": "mg"}
    determination = policies.evaluate(approvable)
    assert determination.reasons == ("missing-information",)
    assert dosing_of(determination).status == "unknown"
    (question,) = determination.missing
    assert question.fact == "body-surface-area"
    assert "observations[8302-2]" in question.fields
    assert question.criteria == ("Dosing",)


def test_mg_per_m2_dose_needs_no_bsa_but_units_do(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    approvable["observations"] = []
    determination = policies.evaluate(approvable)
    assert determination.outcome == "approved"
    assert determination.authorization is not None
    assert determination.authorization.mg_per_dose is None
    assert determination.authorization.units is None
    assert determination.authorization.doses == 18


def test_too_dense_schedule_is_an_exception_even_with_unknown_dose(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    approvable["observations"] = []
    approvable["service"]["dose"] = {"value": 70, "unit": "mg"}
    approvable["service"]["schedule"] = {"cycle_length_days": 21, "doses_per_cycle": 5}
    determination = policies.evaluate(approvable)
    assert dosing_of(determination).status == "outside"
    assert determination.reasons == ("dose-exception",)


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        (None, "service.schedule"),
        ({"doses_per_cycle": 1}, "service.schedule"),
    ],
)
def test_missing_schedule_is_missing_information(
    policies: PolicySet, approvable: dict[str, Any], schedule: Any, field: str
) -> None:
    if schedule is None:
        del approvable["service"]["schedule"]
    else:
        approvable["service"]["schedule"] = schedule
    determination = policies.evaluate(approvable)
    assert determination.reasons == ("missing-information",)
    assert [m.fact for m in determination.missing] == [field]


def test_missing_dose_is_missing_information(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    del approvable["service"]["dose"]
    determination = policies.evaluate(approvable)
    assert [m.fact for m in determination.missing] == ["service.dose"]


def test_measured_bsa_is_used_over_height_and_weight(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    approvable["observations"].append({"code": "8277-6", "value": 1.5, "unit": "m2"})
    determination = policies.evaluate(approvable)
    assert dosing_of(determination).bsa_source == "observations[2]"
    assert determination.authorization is not None
    assert determination.authorization.mg_per_dose == 60.0


def test_units_for_a_year_on_regimen_b(policies: PolicySet, approvable: dict[str, Any]) -> None:
    approvable["observations"] = [{"code": "8277-6", "value": 1.8, "unit": "m2"}]
    approvable["service"]["dose"] = {"value": 16, "unit": "mg/m2"}
    approvable["service"]["schedule"] = {"cycle_length_days": 28, "doses_per_cycle": 3}
    auth = policies.evaluate(approvable).authorization
    assert auth is not None
    # 16 x 1.8 = 28.8 mg -> 29 units a dose; 14 cycles start within 2026-12-01..2027-11-30.
    assert (auth.mg_per_dose, auth.units_per_dose, auth.doses) == (28.8, 29, 42)
    assert auth.units == 29 * 42
    assert auth.billing_code == "J9207"
    assert (auth.dose, auth.dose_unit) == (16, "mg/m2")


# --- conversions between mg, mg/m2 and mg/kg ----------------------------------------------------


@pytest.mark.parametrize(
    ("given", "limit", "observations", "converted", "status"),
    [
        # mg -> mg/m2 with BSA 2.0
        ((80, "mg"), (40, "mg/m2"), [BSA_2], 40.0, "met"),
        ((0.08, "g"), (40, "mg/m2"), [BSA_2], 40.0, "met"),
        ((80000, "ug"), (40, "mg/m2"), [BSA_2], 40.0, "met"),
        ((80.2, "mg"), (40, "mg/m2"), [BSA_2], 40.1, "not-met"),
        # mg/m2 -> mg with BSA 2.0
        ((40, "mg/m2"), (80, "mg"), [BSA_2], 80.0, "met"),
        ((40.1, "mg/m2"), (80, "mg"), [BSA_2], 80.2, "not-met"),
        # mg -> mg/kg with 68 kg: 340 / 68 = 5.0
        ((340, "mg"), (5, "mg/kg"), [WEIGHT], 5.0, "met"),
        ((343, "mg"), (5, "mg/kg"), [WEIGHT], 5.0, "met"),  # 5.044 -> 5.0
        ((344, "mg"), (5, "mg/kg"), [WEIGHT], 5.1, "not-met"),  # 5.059 -> 5.1
        # mg/kg -> mg
        ((5, "mg/kg"), (340, "mg"), [WEIGHT], 340.0, "met"),
        # mg/kg -> mg/m2 with 68 kg and 2.0 m2: 5 x 68 / 2 = 170
        ((5, "mg/kg"), (170, "mg/m2"), [WEIGHT, BSA_2], 170.0, "met"),
        # pounds: 150 lb = 68.0388555 kg; 340.19 mg / 68.04 kg = 5.0
        (
            (5, "mg/kg"),
            (341, "mg"),
            [{"code": "29463-7", "value": 150, "unit": "[lb_av]"}],
            340.2,
            "met",
        ),
        # in the limit's own unit: compared as given
        ((5, "mg/kg"), (5, "mg/kg"), [], 5.0, "met"),
        ((400, "ug"), (0.4, "mg"), [], 0.4, "met"),
    ],
)
def test_dose_conversions(
    given: tuple[float, str],
    limit: tuple[float, str],
    observations: list[dict[str, Any]],
    converted: float,
    status: str,
) -> None:
    policy = compiled(regimens=[regimen(dose={"max": limit[0], "unit": limit[1]})])
    determination = decide(policy, request(observations=observations, **dose(*given)))
    (check,) = dosing_of(determination).checks
    assert (check.dose, check.dose_unit, check.status) == (converted, limit[1], status)


def test_a_dose_in_grams_at_the_limit_in_mg_is_within() -> None:
    policy = compiled(regimens=[regimen(dose={"max": 4030, "unit": "mg"})])
    determination = decide(policy, request(**dose(4.03, "g")))
    assert dosing_of(determination).status == "within"


def test_tolerance_percent() -> None:
    policy = compiled(
        regimens=[regimen(dose={"max": 40, "unit": "mg/m2"})],
        dosing={
            "rounding": {"dose_decimals": 1, "tolerance_percent": 5},
            "regimens": [regimen(dose={"max": 40, "unit": "mg/m2"})],
        },
    )
    at_edge = decide(policy, request(observations=[BSA_2], **dose(84, "mg")))  # 42.0 = 40 x 1.05
    assert dosing_of(at_edge).status == "within"
    over = decide(policy, request(observations=[BSA_2], **dose(84.2, "mg")))  # 42.1
    assert dosing_of(over).status == "outside"


def test_bsa_cap_is_applied_to_the_conversion() -> None:
    big = [
        {"code": "8302-2", "value": 200, "unit": "cm"},
        {"code": "29463-7", "value": 130, "unit": "kg"},
    ]
    limit = {"max": 40, "unit": "mg/m2"}
    capped = compiled(
        dosing={"body_surface_area": {"cap_m2": 2.0}, "regimens": [regimen(dose=limit)]}
    )
    determination = decide(capped, request(observations=big, **dose(80, "mg")))
    assert dosing_of(determination).bsa_m2 == 2.0
    assert dosing_of(determination).bsa_source == (
        "observations[0], observations[1] (2.69 m2, capped at 2 m2)"
    )
    assert dosing_of(determination).checks[0].dose == 40.0
    # A mg/m2 dose is worked out on the capped BSA too.
    per_m2 = decide(capped, request(observations=big, **dose(40, "mg/m2")))
    assert dosing_of(per_m2).mg_per_dose == 80.0
    uncapped = decide(
        compiled(regimens=[regimen(dose=limit)]), request(observations=big, **dose(80, "mg"))
    )
    assert dosing_of(uncapped).bsa_m2 == 2.69
    assert dosing_of(uncapped).checks[0].dose == 29.7


def test_bsa_formula_and_decimals_from_the_policy() -> None:
    policy = compiled(
        dosing={
            "body_surface_area": {"formula": "dubois", "decimals": 3},
            "regimens": [regimen(dose={"max": 40, "unit": "mg/m2"})],
        }
    )
    determination = decide(policy, request(observations=[HEIGHT, WEIGHT], **dose(40, "mg/m2")))
    assert dosing_of(determination).bsa_m2 == 1.749
    assert dosing_of(determination).bsa_source == "dubois(observations[0], observations[1])"


def test_mg_per_kg_without_weight_asks_for_it() -> None:
    policy = compiled(regimens=[regimen(dose={"max": 5, "unit": "mg/kg"})])
    determination = decide(policy, request(**dose(300, "mg")))
    assert dosing_of(determination).status == "unknown"
    assert [m.fact for m in determination.missing] == ["body-weight"]


def test_mg_per_kg_against_mg_per_m2_asks_for_both_measures() -> None:
    policy = compiled(regimens=[regimen(dose={"max": 170, "unit": "mg/m2"})])
    determination = decide(policy, request(**dose(5, "mg/kg")))
    assert [m.fact for m in determination.missing] == ["body-surface-area", "body-weight"]


# --- "N doses in each D-day cycle" ------------------------------------------------------------


@pytest.mark.parametrize(
    ("allowed", "window", "requested", "status"),
    [
        # exact cycle days
        (2, 21, cycles(2, 21, [1, 8]), "within"),
        (1, 21, cycles(2, 21, [1, 8]), "outside"),
        (3, 28, cycles(2, 21, [1, 8]), "within"),  # 0, 7, 21 in 28 days
        (3, 28, cycles(2, 21, [1, 15]), "within"),  # 14, 21, 35 in 28 days
        (3, 28, cycles(2, 21, [1, 21]), "outside"),  # 20, 21, 41, 42 in 28 days
        # doses on unknown days: the quietest and the busiest placements
        (2, 21, cycles(2, 21), "within"),
        (3, 28, cycles(2, 21), "unknown"),
        (1, 21, cycles(1, 14), "outside"),  # the old average rule's outside case stays outside
        (1, 21, cycles(1, 28), "within"),
        (3, 21, cycles(2, 20), "within"),  # 3 in some 21 days whatever the days
        (2, 21, cycles(2, 20), "outside"),
        # an interval is one dose in a cycle of its length
        (1, 21, {"service_schedule": {"interval_days": 21}}, "within"),
        (1, 21, {"service_schedule": {"interval_days": 20}}, "outside"),
        (2, 28, {"service_schedule": {"interval_days": 14}}, "within"),
        (2, 28, {"service_schedule": {"interval_weeks": 1}}, "outside"),
    ],
)
def test_the_window_rule(allowed: int, window: int, requested: dict[str, Any], status: str) -> None:
    policy = compiled(regimens=[regimen(cycle={"length_days": window, "max_doses": allowed})])
    determination = decide(policy, request(**requested))
    assert dosing_of(determination).status == status
    if status == "unknown":
        assert [m.fact for m in determination.missing] == ["service.schedule.cycle_days"]
        assert determination.missing[0].fields == ("service.schedule.cycle_days",)


def test_a_regimen_on_given_cycle_days() -> None:
    """A regimen "days 1 and 8 of each 21-day cycle" allows two doses in any 21 days."""
    policy = compiled(regimens=[regimen(cycle={"length_days": 21, "days": [1, 8]})])
    assert dosing_of(decide(policy, request(**cycles(2, 21, [1, 8])))).status == "within"
    assert dosing_of(decide(policy, request(**cycles(2, 21)))).status == "within"
    assert dosing_of(decide(policy, request(**cycles(3, 21)))).status == "outside"


# --- inductions and intervals --------------------------------------------------------------------

INDUCTION = regimen(
    id="I",
    text="5 mg/kg at weeks 0, 2 and 6, then every 8 weeks",
    dose={"max": 5, "unit": "mg/kg"},
    cycle=None,
    induction={"weeks": [0, 2, 6]},
    interval={"min_weeks": 8},
)


def induction_policy(**parts: Any) -> Any:
    regimen_data = {k: v for k, v in {**INDUCTION, **parts}.items() if v is not None}
    return compiled(
        regimens=[regimen_data],
        drugs=[{**DRUG, "billing": {"code": "J9999", "mg_per_unit": 10}}],
    )


@pytest.mark.parametrize(
    ("schedule", "status", "detail"),
    [
        (
            {"induction_weeks": [0, 2, 6], "interval_weeks": 8},
            "within",
            "induction on days 0, 14, 42 then every 56 days",
        ),
        ({"induction_days": [0, 14, 42], "interval_days": 56}, "within", "then every 56 days"),
        ({"induction_weeks": [0, 3, 7], "interval_weeks": 8}, "within", "then every 56 days"),
        (
            {"induction_weeks": [0, 1, 6], "interval_weeks": 8},
            "outside",
            "comes sooner than days 0, 14, 42",
        ),
        ({"induction_weeks": [0, 2, 5], "interval_weeks": 8}, "outside", "comes sooner"),
        (
            {"induction_weeks": [0, 2, 6, 8], "interval_weeks": 8},
            "outside",
            "4 induction doses, more than the 3",
        ),
        ({"induction_weeks": [0, 2, 6], "interval_weeks": 10}, "within", "then every 70 days"),
        (
            {"induction_weeks": [0, 2, 6], "interval_weeks": 6},
            "outside",
            "every 42 days is more often",
        ),
        ({"interval_weeks": 8}, "within", "every 56 days, no more"),  # maintenance only
        ({"interval_weeks": 4}, "outside", "every 28 days is more often"),
        ({"induction_weeks": [0, 2, 6]}, "within", "induction on days 0, 14, 42"),
        ({"cycle_length_days": 56, "doses_per_cycle": 1}, "within", "at least 56 days apart"),
        ({"cycle_length_days": 56, "cycle_days": [1, 29]}, "outside", "28 days apart"),
    ],
)
def test_induction_then_interval(schedule: dict[str, Any], status: str, detail: str) -> None:
    determination = decide(
        induction_policy(),
        request(observations=[WEIGHT], service_schedule=schedule, **dose(5, "mg/kg")),
    )
    (check,) = dosing_of(determination).checks
    assert dosing_of(determination).status == status
    assert detail in check.detail


def test_an_induction_against_a_regimen_without_one_is_outside() -> None:
    policy = compiled(regimens=[regimen(cycle=None, interval={"min_days": 14})])
    schedule = {"induction_days": [0, 14], "interval_days": 28}
    determination = decide(policy, request(service_schedule=schedule))
    assert dosing_of(determination).checks[0].detail == "the regimen has no induction doses"


def test_induction_dose_limit() -> None:
    policy = induction_policy(
        dose={"max": 10, "unit": "mg/kg"},
        induction={"weeks": [0, 2, 6], "dose": {"max": 5, "unit": "mg/kg"}},
    )
    schedule = {"induction_weeks": [0, 2, 6], "interval_weeks": 8}
    ok = decide(
        policy, request(observations=[WEIGHT], service_schedule=schedule, **dose(5, "mg/kg"))
    )
    assert dosing_of(ok).status == "within"
    over = decide(
        policy, request(observations=[WEIGHT], service_schedule=schedule, **dose(7, "mg/kg"))
    )
    assert dosing_of(over).status == "outside"
    detail = dosing_of(over).checks[0].detail
    assert "induction dose of 7 mg/kg is above the limit of 5 mg/kg" in detail
    # Maintenance alone: the induction's limit does not apply.
    later = decide(
        policy,
        request(observations=[WEIGHT], service_schedule={"interval_weeks": 8}, **dose(7, "mg/kg")),
    )
    assert dosing_of(later).status == "within"


# --- routes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "status"),
    [
        ("IV", "within"),
        ("intravenous", "within"),
        ("Intravenously", "within"),
        (None, "within"),  # a request that names no route is not held up for it
        ("SC", "outside"),
        ("subcutaneous", "outside"),
        ("oral", "outside"),
    ],
)
def test_routes(route: str | None, status: str) -> None:
    policy = compiled()  # the default route is intravenous
    determination = decide(policy, request(service_route=route))
    assert dosing_of(determination).status == status
    if status == "outside":
        assert f"route {route} is not intravenous" in dosing_of(determination).checks[0].detail


@pytest.mark.parametrize("listed", [["IV"], ["Intravenous"], ["intravenous", "SubQ"]])
def test_routes_as_a_policy_spells_them(listed: list[str]) -> None:
    """A policy may write `IV` or `SubQ` as people do: it means the same route as the request's."""
    policy = compiled(regimens=[regimen(route=listed)])
    assert dosing_of(decide(policy, request(service_route="intravenous"))).status == "within"
    assert dosing_of(decide(policy, request(service_route="IV"))).status == "within"


def test_subcutaneous_regimen() -> None:
    policy = compiled(regimens=[regimen(route=["subcutaneous"])])
    for route in ("SC", "subq", "SQ", "Subcutaneous", "subcutaneously"):
        assert dosing_of(decide(policy, request(service_route=route))).status == "within", route
    assert dosing_of(decide(policy, request(service_route="IV"))).status == "outside"


# --- which regimens apply ----------------------------------------------------------------------

APPLY_FACTS = {
    "hepatic": {"kind": "answer", "question": "Does the patient have hepatic impairment?"},
    "crcl": {
        "kind": "measure",
        "function": "creatinine-clearance",
        "question": "What is the CrCl?",
    },
}
HEPATIC = regimen(
    id="H", text="Hepatic impairment: at most 50 mg", dose={"max": 50, "unit": "mg"}, when="hepatic"
)
NORMAL = regimen(
    id="N",
    text="At most 100 mg unless CrCl below 50",
    unless={"id": "renal", "text": "CrCl below 50 mL/min", "fact": "crcl", "below": 50},
)
CRCL_80 = {"code": "2164-2", "value": 80, "unit": "mL/min"}
CRCL_30 = {"code": "2164-2", "value": 30, "unit": "mL/min"}


@pytest.mark.parametrize(
    ("answers", "observations", "status", "fitted", "asked"),
    [
        ({}, [], "unknown", None, ["hepatic", "crcl"]),
        ({"hepatic": True}, [], "within", "H", []),
        ({"hepatic": False}, [], "unknown", None, ["crcl"]),
        ({"hepatic": False}, [CRCL_80], "within", "N", []),
        ({"hepatic": False}, [CRCL_30], "outside", None, []),
        ({}, [CRCL_80], "within", "N", []),  # N does not depend on the hepatic question
    ],
)
def test_when_and_unless(
    answers: dict[str, Any],
    observations: list[dict[str, Any]],
    status: str,
    fitted: str | None,
    asked: list[str],
) -> None:
    """`when` as a fact's name, `unless` as a criterion; unknown applicability asks its fact."""
    policy = compiled(APPLY_FACTS, regimens=[HEPATIC, NORMAL])
    determination = decide(
        policy, request(answers=answers, observations=observations, **dose(40, "mg"))
    )
    assert dosing_of(determination).status == status
    assert dosing_of(determination).regimen == fitted
    if status == "unknown":
        assert [m.fact for m in determination.missing] == asked
        assert {m.criteria for m in determination.missing} == {("Dosing",)}
        assert determination.reasons == ("missing-information",)
    # A larger dose fits neither regimen whatever applies: the unknowns no longer matter.
    larger = decide(policy, request(answers=answers, observations=observations, **dose(150, "mg")))
    assert dosing_of(larger).status == "outside"


def test_a_fact_asked_by_the_criteria_and_the_dosing_is_asked_once() -> None:
    policy = compiled(
        APPLY_FACTS,
        criteria={
            "id": "1",
            "text": "all",
            "all": [
                {"id": "A", "text": "Has the diagnosis", "fact": "dx"},
                {"id": "B", "text": "No hepatic impairment", "fact": "hepatic", "is": False},
            ],
        },
        regimens=[HEPATIC, regimen(id="N", text="normal", unless="hepatic")],
    )
    determination = decide(policy, request(**dose(40, "mg")))
    assert [m.fact for m in determination.missing] == ["hepatic"]
    assert determination.missing[0].criteria == ("B", "Dosing")


# --- an indication's regimens -------------------------------------------------------------------


def test_an_indication_limits_the_regimens() -> None:
    small = regimen(id="S", text="small", dose={"max": 50, "unit": "mg"})
    large = regimen(id="L", text="large", dose={"max": 200, "unit": "mg"})
    facts = {
        "other": {"kind": "condition", "codes": ["C34.*"], "absent": "false", "question": "Q?"}
    }
    policy = compiled(
        facts,
        regimens=[small, large],
        indications=[
            {
                "id": "1",
                "title": "Breast",
                "when": "dx",
                "approval": {"months": 6},
                "criteria": {"id": "1", "text": "dx", "fact": "dx"},
                "regimens": ["S"],
            },
            {
                "id": "2",
                "title": "Lung",
                "when": "other",
                "approval": {"months": 6},
                "criteria": {"id": "2", "text": "other", "fact": "other"},
            },
        ],
    )
    breast = decide(policy, request(**dose(100, "mg")))
    assert [c.id for c in dosing_of(breast).checks] == ["S"]
    assert dosing_of(breast).status == "outside"
    lung = decide(policy, request(conditions=["C34.90"], **dose(100, "mg")))
    assert [c.id for c in dosing_of(lung).checks] == ["S", "L"]
    assert dosing_of(lung).regimen == "L"


# --- billing units and doses in the period -------------------------------------------------------


@pytest.mark.parametrize(
    ("mg_per_unit", "rounding", "mg", "units_per_dose"),
    [
        (1, "up", 70.8, 71),
        (1, "nearest", 70.8, 71),
        (1, "down", 70.8, 70),
        (1, "up", 70.0, 70),
        (0.1, "up", 70.83, 709),  # 708.3 units
        (0.1, "nearest", 70.83, 708),
        (0.1, "up", 0.7, 7),  # 0.7 / 0.1 is 6.999... in floats
        (10, "up", 75, 8),
        (10, "nearest", 75, 8),  # half up
        (10, "nearest", 74.9, 7),
        (10, "down", 79.9, 7),
        (10, "up", 70, 7),
    ],
)
def test_billing_units(mg_per_unit: float, rounding: str, mg: float, units_per_dose: int) -> None:
    policy = compiled(
        drugs=[{**DRUG, "billing": {"code": "J9999", "mg_per_unit": mg_per_unit}}],
        dosing={"billing_rounding": rounding, "regimens": [REGIMEN]},
    )
    auth = decide(policy, request(**dose(mg, "mg"))).authorization
    assert auth is not None
    assert auth.mg_per_dose == mg
    assert auth.units_per_dose == units_per_dose
    assert auth.doses == 9  # a 6-month approval from 2026-12-01: 182 days, 9 cycles of 21 days
    assert auth.units == units_per_dose * 9
    assert auth.billing_code == "J9999"


def test_billing_follows_the_requested_product() -> None:
    drugs = [
        {
            "name": "Vial 1 mg",
            "generic_name": "x",
            "hcpcs": ["J9999"],
            "billing": {"code": "J9999", "mg_per_unit": 1},
        },
        {
            "name": "Other",
            "generic_name": "x",
            "hcpcs": ["J9998"],
            "ndc_products": ["12345-6789"],
            "billing": {"code": "J9998", "mg_per_unit": 10},
        },
    ]
    policy = compiled(drugs=drugs)
    by_ndc = request(
        service={
            "codes": [{"system": "ndc", "code": "12345678901"}],
            "dose": {"value": 100, "unit": "mg"},
            "schedule": {"cycle_length_days": 21, "doses_per_cycle": 1},
            "start_date": "2026-12-01",
        }
    )
    auth = decide(policy, by_ndc).authorization
    assert auth is not None
    assert (auth.billing_code, auth.units_per_dose) == ("J9998", 10)
    auth = decide(policy, request(service_code="J9998")).authorization
    assert auth is not None
    assert auth.billing_code == "J9998"


def test_no_billing_no_units() -> None:
    auth = decide(compiled(), request()).authorization
    assert auth is not None
    assert (auth.billing_code, auth.units_per_dose, auth.units) == (None, None, None)
    assert auth.mg_per_dose == 100


@pytest.mark.parametrize(
    ("schedule", "doses"),
    [
        ({"cycle_length_days": 21, "doses_per_cycle": 1}, 9),  # days 0, 21, ..., 168 of 182
        ({"cycle_length_days": 21, "doses_per_cycle": 2}, 18),
        ({"cycle_length_days": 21, "cycle_days": [1, 8]}, 18),  # 175 is day 7 of the 9th cycle
        ({"cycle_length_days": 21, "cycle_days": [1, 15]}, 17),  # 168 + 14 = 182: outside
        ({"cycle_length_days": 14, "doses_per_cycle": 1}, 13),
        ({"interval_days": 14}, 13),
        ({"interval_weeks": 8}, 4),  # 0, 56, 112, 168
        ({"induction_weeks": [0, 2, 6], "interval_weeks": 8}, 5),  # 0, 14, 42, 98, 154
        ({"induction_weeks": [0, 2, 6]}, 3),
    ],
)
def test_doses_in_the_period(schedule: dict[str, Any], doses: int) -> None:
    policy = compiled(
        regimens=[
            regimen(cycle={"length_days": 7, "max_doses": 7}, dose={"max": 1000, "unit": "mg"})
        ]
    )
    if "cycle_length_days" not in schedule:
        policy = compiled(
            regimens=[
                regimen(cycle=None, induction={"days": [0, 14, 42]}, interval={"min_days": 14})
            ]
        )
    determination = decide(policy, request(service_schedule=schedule))
    auth = determination.authorization
    assert auth is not None, determination.dosing
    assert (auth.valid_from.isoformat(), auth.valid_through.isoformat()) == (
        "2026-12-01",
        "2027-05-31",
    )
    assert auth.doses == doses


# --- approval periods, continuations ------------------------------------------------------------


def one_indication(**parts: Any) -> list[dict[str, Any]]:
    return [
        {
            "id": "1",
            "title": "Breast",
            "when": "dx",
            "approval": {"months": 6},
            "criteria": {"id": "1", "text": "dx", "fact": "dx"},
            **parts,
        }
    ]


@pytest.mark.parametrize(
    ("approval", "through"),
    [
        ({"years": 1}, "2027-11-30"),
        ({"months": 6}, "2027-05-31"),
        ({"days": 90}, "2027-02-28"),
        ({"years": 1, "months": 1, "days": 1}, "2028-01-01"),
    ],
)
def test_approval_periods(approval: dict[str, int], through: str) -> None:
    policy = compiled(indications=one_indication(approval=approval))
    auth = decide(policy, request()).authorization
    assert auth is not None
    assert (auth.valid_from.isoformat(), auth.valid_through.isoformat()) == ("2026-12-01", through)


FACTS_C = {
    "responding": {"kind": "answer", "question": "Is the disease responding?"},
    "tolerating": {"kind": "answer", "question": "Is the patient tolerating it?"},
}
RESPONDING = {"id": "c1", "text": "Responding", "fact": "responding"}
TOLERATING = {"id": "p1", "text": "Tolerating", "fact": "tolerating"}


def continuation(policy: Any, **answers: Any) -> Determination:
    data = request(type="continuation", prior_authorization_id="PA-OLD-1", answers=answers)
    return decide(policy, data)


def test_indication_continuation_criteria_and_period() -> None:
    policy = compiled(
        FACTS_C,
        indications=one_indication(continuation={"approval": {"years": 1}, "criteria": RESPONDING}),
        continuation={"approval": {"months": 3}, "criteria": TOLERATING},
    )
    determination = continuation(policy)
    assert [m.fact for m in determination.missing] == ["responding"]
    approved = continuation(policy, responding=True)
    assert approved.authorization is not None
    assert approved.authorization.valid_through.isoformat() == "2027-11-30"
    assert approved.authorization.continues == "PA-OLD-1"
    assert continuation(policy, responding=False).reasons == ("criteria-not-met",)
    # The initial criteria still apply to an initial request.
    initial = decide(policy, request(answers={"responding": False}))
    assert initial.outcome == "approved"
    assert initial.authorization is not None
    assert initial.authorization.continues is None
    assert initial.authorization.valid_through.isoformat() == "2027-05-31"


def test_policy_continuation_when_the_indication_has_none() -> None:
    policy = compiled(
        FACTS_C,
        indications=one_indication(),
        continuation={"approval": {"months": 3}, "criteria": TOLERATING},
    )
    assert [m.fact for m in continuation(policy).missing] == ["tolerating"]
    auth = continuation(policy, tolerating=True).authorization
    assert auth is not None
    assert auth.valid_through.isoformat() == "2027-02-28"


def test_continuation_without_criteria_applies_the_initial_ones() -> None:
    policy = compiled(
        FACTS_C,
        indications=one_indication(
            criteria={
                "id": "1",
                "text": "all",
                "all": [
                    {"id": "A", "text": "dx", "fact": "dx"},
                    {"id": "B", "text": "t", "fact": "tolerating"},
                ],
            },
            continuation={"approval": {"years": 2}},
        ),
    )
    assert [m.fact for m in continuation(policy).missing] == ["tolerating"]
    auth = continuation(policy, tolerating=True).authorization
    assert auth is not None
    assert auth.valid_through.isoformat() == "2028-11-30"


def test_no_continuation_rule_renews_on_the_initial_terms() -> None:
    policy = compiled(FACTS_C, indications=one_indication())
    auth = continuation(policy).authorization
    assert auth is not None
    assert auth.valid_through.isoformat() == "2027-05-31"


# --- several indications --------------------------------------------------------------------------


def test_the_indication_whose_criteria_are_met_is_preferred() -> None:
    facts = {
        "her2": {"kind": "condition", "codes": ["Z17.31"], "absent": "false", "question": "HER2?"},
        "young": {"kind": "age", "question": "Date of birth?"},
        "hr": {"kind": "answer", "question": "Hormone receptor positive?"},
    }
    indications = [
        {
            "id": "a",
            "title": "A",
            "when": "dx",
            "approval": {"months": 6},
            "criteria": {"id": "a1", "text": "under 40", "fact": "young", "below": 40},
        },
        {
            "id": "b",
            "title": "B",
            "when": "dx",
            "approval": {"months": 6},
            "criteria": {"id": "b1", "text": "hr", "fact": "hr"},
        },
        {
            "id": "c",
            "title": "C",
            "when": "dx",
            "approval": {"years": 1},
            "criteria": {"id": "c1", "text": "her2", "fact": "her2"},
        },
    ]
    policy = compiled(facts, indications=indications)

    def chosen(**parts: Any) -> tuple[str | None, str]:
        determination = decide(policy, request(**parts))
        assert determination.indication is not None
        return determination.indication.id, determination.outcome

    # a not met (56 years old), b unknown, c not met: the unknown one is judged.
    assert chosen() == ("b", "pended")
    # c met: preferred over the unknown and the not-met.
    assert chosen(conditions=["C50.912", "Z17.31"]) == ("c", "approved")
    # none met: the first in policy order.
    assert chosen(answers={"hr": False}) == ("a", "pended")
    assert chosen(answers={"hr": False}, patient={"birth_date": "2000-01-01"}) == ("a", "approved")


def test_an_indication_that_applies_is_preferred_over_one_that_may() -> None:
    facts = {"lung": {"kind": "condition", "codes": ["C34.*"], "question": "Lung cancer?"}}
    indications = [
        {
            "id": "lung",
            "title": "Lung",
            "when": "lung",
            "approval": {"months": 6},
            "criteria": {"id": "l", "text": "lung", "fact": "lung"},
        },
        {
            "id": "breast",
            "title": "Breast",
            "when": "dx",
            "approval": {"months": 6},
            "criteria": {"id": "b", "text": "dx", "fact": "dx"},
        },
    ]
    determination = decide(compiled(facts, indications=indications), request())
    assert determination.indication is not None
    assert determination.indication.id == "breast"
    assert determination.outcome == "approved"


# --- arithmetic --------------------------------------------------------------------------------


def test_bsa_check_values() -> None:
    # The domain sheet's check values for 177.8 cm, 72.6 kg.
    assert mosteller(177.8, 72.6) == pytest.approx(1.8936, abs=1e-4)
    assert dubois(177.8, 72.6) == pytest.approx(1.898, abs=1e-3)
    for formula in ("haycock", "gehan-george", "boyd"):
        assert 1.8 < body_surface_area(177.8, 72.6, formula) < 2.0


def test_round_half_up() -> None:
    assert round_half_up(40.25, 1) == 40.3
    assert round_half_up(40.05, 1) == 40.1
    assert round_half_up(1.005, 2) == 1.01
    assert round_half_up(40.04999, 1) == 40.0
    assert round_half_up(39.5, 0) == 40


# --- calendar months ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("interval", "schedule", "status"),
    [
        ({"min_months": 6}, {"interval_months": 6}, "within"),
        ({"min_months": 6}, {"interval_months": 5}, "outside"),
        ({"min_months": 6}, {"interval_days": 181}, "within"),  # the fewest days 6 months span
        ({"min_months": 6}, {"interval_days": 180}, "outside"),
        ({"min_days": 180}, {"interval_months": 6}, "within"),
        ({"min_days": 182}, {"interval_months": 6}, "outside"),  # six months can be 181 days
        ({"min_weeks": 4}, {"interval_months": 1}, "within"),
    ],
)
def test_intervals_in_calendar_months(
    interval: dict[str, int], schedule: dict[str, int], status: str
) -> None:
    policy = compiled(regimens=[regimen(cycle=None, interval=interval)])
    determination = decide(policy, request(service_schedule=schedule))
    assert dosing_of(determination).status == status, dosing_of(determination).checks


@pytest.mark.parametrize(
    ("start", "months", "doses"),
    [
        # The test policy approves for 6 months: 2026-05-04 through 2026-11-03.
        ("2026-05-04", 6, 1),  # the next, 2026-11-04, is after the period
        ("2026-05-04", 3, 2),  # 2026-05-04 and 2026-08-04
        ("2026-01-31", 1, 6),  # the last day of each shorter month: Feb 28, Apr 30, Jun 30
        ("2026-03-01", 12, 1),
    ],
)
def test_doses_in_a_year_counted_by_calendar_months(start: str, months: int, doses: int) -> None:
    policy = compiled(regimens=[regimen(cycle=None, interval={"min_months": 1})])
    schedule = {"interval_months": months}
    # Received and decided the day it starts: inside the policy's service-date window, and
    # the period not over by the day decided.
    data = request(
        service_schedule=schedule, service_start_date=start, received_at=f"{start}T09:00:00Z"
    )
    determination = policy.evaluate(parse_request(data), dt.date.fromisoformat(start), data)
    assert determination.authorization is not None, determination.reasons
    assert determination.authorization.doses == doses
