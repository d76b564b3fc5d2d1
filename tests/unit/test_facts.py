"""Every kind of fact, derived from small policies built here: values, unknowns, conflicts.

Unknown is not false: each kind is checked for what it says when the record is silent, and for
what it says when the record disagrees with itself or with an answer.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.unit.builders import SERVICE_DATE, fact, request, value

Q = "What is it?"


def obs(*observations: dict[str, Any], **parts: Any) -> dict[str, Any]:
    return request(observations=list(observations), **parts)


# --- age -----------------------------------------------------------------------------------

AGE = {"kind": "age", "question": "What is the date of birth?"}


@pytest.mark.parametrize(
    ("birth", "years"),
    [("2008-12-01", 18), ("2008-12-02", 17), ("2008-11-30", 18), ("1930-01-01", 96)],
)
def test_age_in_years_on_the_service_date(birth: str, years: int) -> None:
    found, conflict = fact(AGE, request(patient={"birth_date": birth}))
    assert (found.value, found.unit, conflict) == (years, "years", None)
    assert [e.field for e in found.evidence] == ["patient.birth_date", "service.start_date"]


def test_age_on_29_february() -> None:
    data = request(patient={"birth_date": "2008-02-29"})
    assert value(AGE, data, on=dt.date(2026, 2, 28)) == 17
    assert value(AGE, data, on=dt.date(2026, 3, 1)) == 18


def test_age_in_months() -> None:
    spec = {**AGE, "unit": "months"}
    data = request(patient={"birth_date": "2026-01-31"})
    assert value(spec, data, on=dt.date(2026, 2, 28)) == 1
    assert value(spec, data, on=dt.date(2026, 2, 27)) == 0
    assert fact(spec, data, on=dt.date(2026, 2, 28))[0].unit == "months"


def test_no_birth_date_is_unknown() -> None:
    found, conflict = fact(AGE, request(patient={"sex": "female"}))
    assert (found.value, conflict) == (None, None)
    assert found.note == "no birth date given"


def test_birth_after_the_service_date_is_a_conflict() -> None:
    found, conflict = fact(AGE, request(patient={"birth_date": "2026-12-02"}))
    assert found.value is None
    assert conflict is not None
    assert conflict.fact == "f"
    assert "after the service date" in conflict.message
    assert {e.field for e in conflict.evidence} == {"patient.birth_date", "service.start_date"}


# --- condition -----------------------------------------------------------------------------

METASTATIC = {"kind": "condition", "codes": ["C78.*", "C79.*", "C80.0"], "question": Q}


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        (["C50.912", "C78.01"], True),
        (["C50.912", "c7951"], True),
        (["C50.912", "C80.0"], True),
        (["C50.912", "C80.1"], None),  # absent: unknown by default
        (["C50.912", "C77.3"], None),
        (["C50.912"], None),
    ],
)
def test_condition_codes_and_absent_unknown(codes: list[str], expected: bool | None) -> None:
    assert value(METASTATIC, request(conditions=codes)) is expected


def test_matching_condition_is_the_evidence() -> None:
    found, _ = fact(METASTATIC, request(conditions=["C50.912", "C79.51"]))
    assert [(e.field, e.value) for e in found.evidence] == [("conditions[1]", "C79.51")]
    assert found.note == "matches C78.*, C79.*, C80.0"


def test_absent_false_means_no() -> None:
    spec = {**METASTATIC, "absent": "false"}
    found, _ = fact(spec, request(conditions=["C50.912", "C77.3"]))
    assert found.value is False
    assert found.evidence[0].value == ("C50.912", "C77.3")


def test_no_conditions_at_all_is_unknown_even_when_absent_is_false() -> None:
    spec = {**METASTATIC, "absent": "false"}
    assert value(spec, request(conditions=None)) is None


def test_excluded_codes() -> None:
    spec = {
        "kind": "condition",
        "codes": ["C50.*"],
        "exclude": ["C50.A*"],
        "absent": "false",
        "question": Q,
    }
    assert value(spec, request(conditions=["C50.A12"])) is False
    assert value(spec, request(conditions=["C50.A12", "C50.912"])) is True


def test_statuses() -> None:
    spec = {**METASTATIC, "statuses": ["active", "recurrence"], "absent": "false"}
    coded = {"code": "C78.01", "status": "active"}
    assert value(spec, request(conditions=[coded])) is True
    assert value(spec, request(conditions=[{**coded, "status": "resolved"}])) is False


def test_a_condition_without_its_status_is_unknown_not_false() -> None:
    """The policy counts active conditions only; a matching code whose status is not given may
    be active: unknown, even where no matching code would mean no."""
    spec = {**METASTATIC, "statuses": ["active"], "absent": "false"}
    found, conflict = fact(spec, request(conditions=["C50.912", "C78.01"]))
    assert (found.value, conflict) == (None, None)
    assert (
        value(spec, request(conditions=["C78.01", {"code": "C79.51", "status": "active"}])) is True
    )


def test_other_code_systems() -> None:
    spec = {
        "kind": "condition",
        "system": "icd-o-3",
        "codes": ["8500/3", "852*"],
        "absent": "false",
        "question": Q,
    }
    histology = {"code": "8522/3", "system": "icd-o-3"}
    assert value(spec, request(conditions=["C50.912", histology])) is True
    # The same text in another system is not the code.
    assert value(spec, request(conditions=[{"code": "8500/3", "system": "snomed"}])) is False


def test_attestable_condition_answer_when_the_codes_are_silent() -> None:
    spec = {**METASTATIC, "attestable": True}
    found, conflict = fact(
        spec, request(conditions=["C50.912"], answers={"f": {"value": True, "by": "1234567893"}})
    )
    assert (found.value, found.note, conflict) == (True, "attested", None)
    assert found.evidence[-1].field == "answers.f"
    assert found.evidence[-1].value == "True (by 1234567893)"


def test_attestable_condition_agreement() -> None:
    spec = {**METASTATIC, "attestable": True}
    found, conflict = fact(spec, request(conditions=["C50.912", "C78.7"], answers={"f": True}))
    assert (found.value, conflict) == (True, None)
    assert [e.field for e in found.evidence] == ["conditions[1]", "answers.f"]
    assert found.note is not None and found.note.endswith("and attested")


def test_attestation_contradicting_a_code_is_a_conflict() -> None:
    spec = {**METASTATIC, "attestable": True}
    found, conflict = fact(spec, request(conditions=["C50.912", "C78.7"], answers={"f": False}))
    assert found.value is None
    assert conflict is not None
    assert {e.field for e in conflict.evidence} == {"conditions[1]", "answers.f"}
    assert "attested False" in conflict.message


def test_attestation_contradicting_absent_false_is_a_conflict() -> None:
    spec = {**METASTATIC, "attestable": True, "absent": "false"}
    found, conflict = fact(spec, request(conditions=["C50.912"], answers={"f": True}))
    assert found.value is None
    assert conflict is not None


def test_a_null_answer_is_no_answer() -> None:
    spec = {**METASTATIC, "attestable": True}
    assert value(spec, request(conditions=["C50.912"], answers={"f": None})) is None


# --- observation ---------------------------------------------------------------------------

ANC = {"kind": "observation", "codes": ["751-8"], "unit": "/uL", "question": Q}


def anc(amount: float, unit: str = "/uL", date: str | None = None) -> dict[str, Any]:
    return {"code": "751-8", "value": amount, "unit": unit} | ({"date": date} if date else {})


def test_latest_observation_by_date_wins() -> None:
    found, _ = fact(
        ANC,
        obs(
            anc(900, date="2026-11-28"), anc(2000, date="2026-11-20"), anc(1800, date="2026-11-29")
        ),
    )
    assert (found.value, found.unit) == (1800, "/uL")
    assert found.evidence[0].field == "observations[2]"
    assert found.evidence[0].value == "1800 /uL on 2026-11-29"


def test_dated_beats_undated_and_later_in_the_list_breaks_ties() -> None:
    assert value(ANC, obs(anc(900, date="2026-01-01"), anc(2000))) == 900
    assert value(ANC, obs(anc(900), anc(2000))) == 2000


@pytest.mark.parametrize(
    ("date", "counts"),
    [("2026-11-24", True), ("2026-11-23", False), ("2026-12-01", True)],
)
def test_within_days_includes_the_boundary_day(date: str, counts: bool) -> None:
    spec = {**ANC, "within_days": 7}  # service date 2026-12-01: from 2026-11-24
    found, _ = fact(spec, obs(anc(1500, date=date)))
    if counts:
        assert found.value == 1500
    else:
        assert found.value is None
        assert found.note == "no value within 7 days before 2026-12-01"


def test_an_undated_value_cannot_be_recent_enough() -> None:
    found, conflict = fact({**ANC, "within_days": 7}, obs(anc(1500)))
    assert (found.value, conflict) == (None, None)
    assert found.note == "no date on the value (it must be within 7 days)"


def test_an_old_value_is_passed_over_for_a_recent_one() -> None:
    spec = {**ANC, "within_days": 7}
    assert value(spec, obs(anc(1500, date="2026-11-28"), anc(3000, date="2025-01-01"))) == 1500


@pytest.mark.parametrize(
    ("given", "unit", "expected"),
    [(1.5, "10*3/uL", 1500), (1500, "/mm3", 1500), (1.5, "10*9/L", 1500), (1.5, "K/uL", 1500)],
)
def test_observation_units_are_converted(given: float, unit: str, expected: float) -> None:
    assert value(ANC, obs(anc(given, unit))) == expected


def test_a_unit_of_another_kind_is_unknown() -> None:
    found, _ = fact({**ANC, "unit": "mg/dL"}, obs(anc(1500)))
    assert found.value is None
    assert found.note == "'/uL' cannot be read as 'mg/dL'"


def test_uln_multiples() -> None:
    spec = {"kind": "observation", "codes": ["1920-8"], "unit": "{ULN}", "question": Q}
    assert value(spec, obs({"code": "1920-8", "uln_multiple": 2.5})) == 2.5
    assert value(spec, obs({"code": "1920-8", "value": 80, "unit": "U/L", "uln_multiple": 2})) == 2
    found, _ = fact(spec, obs({"code": "1920-8", "value": 80, "unit": "U/L"}))
    assert found.value is None
    assert found.note == "the value is not given as a multiple of the upper limit"
    # A value whose unit is the annotation {ULN} is that multiple.
    assert value(spec, obs({"code": "1920-8", "value": 3.1, "unit": "{ULN}"})) == 3.1


def test_a_unit_that_is_only_an_annotation_is_the_unit_one() -> None:
    spec = {"kind": "observation", "codes": ["38267-1"], "unit": "1", "question": Q}
    assert value(spec, obs({"code": "38267-1", "value": -2.7, "unit": "{T-Score}"})) == -2.7


def test_coded_and_yes_no_observations_as_given() -> None:
    spec = {"kind": "observation", "codes": ["85319-2"], "question": Q}
    assert value(spec, obs({"code": "85319-2", "value": "positive"})) == "positive"
    assert value(spec, obs({"code": "85319-2", "value": True})) is True


def test_observation_codes_in_another_system_do_not_count() -> None:
    assert (
        value(ANC, obs({"code": "751-8", "system": "snomed", "value": 1500, "unit": "/uL"})) is None
    )


def test_no_observation_is_unknown() -> None:
    found, _ = fact(ANC, obs())
    assert found.value is None
    assert found.note == "no observation 751-8 given"


def test_attestable_observation() -> None:
    spec = {**ANC, "attestable": True}
    assert value(spec, obs(answers={"f": 1500})) == 1500
    found, conflict = fact(spec, obs(anc(900), answers={"f": 1500}))
    assert found.value is None
    assert conflict is not None


# --- measures ------------------------------------------------------------------------------

BSA = {"kind": "measure", "function": "body-surface-area", "question": Q}
WEIGHT = {"kind": "measure", "function": "body-weight", "question": Q}
CRCL = {"kind": "measure", "function": "creatinine-clearance", "question": Q}
HEIGHT_165 = {"code": "8302-2", "value": 165, "unit": "cm"}
WEIGHT_68 = {"code": "29463-7", "value": 68, "unit": "kg"}


def test_bsa_by_mosteller_rounded() -> None:
    found, _ = fact(BSA, obs(HEIGHT_165, WEIGHT_68))  # sqrt(165 x 68 / 3600) = 1.7654
    assert (found.value, found.unit, found.note) == (1.77, "m2", "mosteller from height and weight")
    assert [e.field for e in found.evidence] == ["observations[0]", "observations[1]"]


def test_bsa_by_another_formula() -> None:
    assert value({**BSA, "formula": "dubois"}, obs(HEIGHT_165, WEIGHT_68)) == 1.75  # 1.7493


def test_measured_bsa_wins_over_height_and_weight() -> None:
    found, _ = fact(BSA, obs(HEIGHT_165, WEIGHT_68, {"code": "8277-6", "value": 1.5, "unit": "m2"}))
    assert found.value == 1.5
    assert [e.field for e in found.evidence] == ["observations[2]"]


def test_bsa_cap() -> None:
    big = obs(
        {"code": "8302-2", "value": 200, "unit": "cm"},
        {"code": "29463-7", "value": 130, "unit": "kg"},
    )
    found, _ = fact({**BSA, "cap_m2": 2.0}, big)
    assert found.value == 2.0
    assert found.note == "2.69 m2, capped at 2 m2"
    assert value({**BSA, "cap_m2": 2.0}, obs(HEIGHT_165, WEIGHT_68)) == 1.77


def test_bsa_without_height_is_unknown_and_says_why() -> None:
    found, _ = fact(BSA, obs(WEIGHT_68))
    assert found.value is None
    assert found.note == "no body height given"


def test_body_weight_in_pounds() -> None:
    found, _ = fact(WEIGHT, obs({"code": "29463-7", "value": 150, "unit": "[lb_av]"}))
    assert (found.value, found.unit) == (68.0388555, "kg")


def test_body_weight_by_another_loinc_code() -> None:
    assert value(WEIGHT, obs({"code": "3141-9", "value": 70, "unit": "kg"})) == 70


def test_body_weight_within_days() -> None:
    spec = {**WEIGHT, "within_days": 30}
    assert value(spec, obs({**WEIGHT_68, "date": "2026-11-01"})) == 68
    assert value(spec, obs({**WEIGHT_68, "date": "2026-10-31"})) is None


def creatinine(amount: float = 1.0) -> dict[str, Any]:
    return {"code": "2160-0", "value": amount, "unit": "mg/dL"}


def test_creatinine_clearance_by_cockcroft_gault() -> None:
    patient = {"birth_date": "1966-12-01", "sex": "female"}  # 60 on the service date
    found, _ = fact(
        CRCL, obs(creatinine(), {"code": "29463-7", "value": 70, "unit": "kg"}, patient=patient)
    )
    assert (found.value, found.unit, found.note) == (66.1, "mL/min", "Cockcroft-Gault")
    male = {"birth_date": "1966-12-01", "sex": "male"}
    assert (
        value(CRCL, obs(creatinine(), {"code": "29463-7", "value": 72, "unit": "kg"}, patient=male))
        == 80
    )


def test_a_serum_creatinine_in_umol_per_litre_is_read_by_its_molar_mass() -> None:
    """88.4 umol/L of creatinine (113.12 g/mol) is 1.0 mg/dL, to four decimals."""
    patient = {"birth_date": "1966-12-01", "sex": "female"}
    weight = {"code": "29463-7", "value": 70, "unit": "kg"}
    si = {"code": "2160-0", "value": 88.4, "unit": "umol/L"}
    assert value(CRCL, obs(si, weight, patient=patient)) == 66.1
    assert value(CRCL, obs({**si, "code": "14682-9"}, weight, patient=patient)) == 66.1


def test_measured_creatinine_clearance_wins() -> None:
    measured = {"code": "2164-2", "value": 45, "unit": "mL/min"}
    assert value(CRCL, obs(creatinine(), WEIGHT_68, measured)) == 45


@pytest.mark.parametrize("sex", ["other", "unknown", None])
def test_creatinine_clearance_needs_female_or_male(sex: str | None) -> None:
    patient = {"birth_date": "1966-12-01"} | ({"sex": sex} if sex else {})
    found, _ = fact(CRCL, obs(creatinine(), WEIGHT_68, patient=patient))
    assert found.value is None
    assert found.note == "the sex (female or male) is needed for Cockcroft-Gault"


def test_creatinine_clearance_names_everything_missing() -> None:
    found, _ = fact(CRCL, obs(patient={"sex": "female"}))
    assert found.value is None
    assert found.note == "no serum creatinine given; no body weight given; no birth date given"


def test_creatinine_clearance_with_a_birth_date_after_the_service_date_is_unknown() -> None:
    """An age below zero is no age: Cockcroft-Gault must not run on it."""
    patient = {"birth_date": "2027-06-01", "sex": "female"}
    assert value(CRCL, obs(creatinine(), WEIGHT_68, patient=patient)) is None


def test_attestable_measure() -> None:
    spec = {**WEIGHT, "attestable": True}
    assert value(spec, obs(answers={"f": 70})) == 70
    assert value(spec, obs(WEIGHT_68, answers={"f": 68})) == 68
    found, conflict = fact(spec, obs(WEIGHT_68, answers={"f": 90}))
    assert found.value is None
    assert conflict is not None


# --- specialty -----------------------------------------------------------------------------

ONCOLOGY = {
    "kind": "specialty",
    "specialties": {"207RX0202X": "medical-oncology", "207RH0003X": "hematology-oncology"},
    "aliases": {"oncology": "207RX0202X", "hem-onc": "207RH0003X"},
    "question": Q,
}


@pytest.mark.parametrize(
    "specialty",
    [
        "207RX0202X",
        "207rh0003x",
        "medical-oncology",
        "Medical Oncology",
        "Hematology & Oncology",
        "hematology and oncology",
        "hem-onc",
        "oncologist",
        "Oncology",
    ],
)
def test_specialty_by_code_name_or_alias(specialty: str) -> None:
    found, _ = fact(ONCOLOGY, request(practitioners=[{"specialty": specialty}]))
    assert found.value is True
    assert found.evidence[0].field == "practitioners[0].specialty"


def test_a_consultant_counts_when_the_policy_says_so() -> None:
    practitioners = [
        {"role": "prescriber", "npi": "1234567893", "specialty": "207Q00000X"},
        {"role": "consultant", "npi": "1245319599", "specialty": "oncology"},
    ]
    found, _ = fact(ONCOLOGY, request(practitioners=practitioners))
    assert found.value is True
    assert found.note == "a consultant: specialty 207RX0202X"
    assert found.evidence[0].field == "practitioners[1].specialty"
    alone = {**ONCOLOGY, "consultants": False}
    assert value(alone, request(practitioners=practitioners)) is None


@pytest.mark.parametrize(
    "practitioners",
    [
        [{"specialty": "207Q00000X"}],
        [{"specialty": "family medicine"}],
        [{"npi": "1234567893"}],
        [],
        [{"role": "consultant", "specialty": "cardiology"}],
    ],
)
def test_an_unlisted_specialty_is_unknown_never_false(practitioners: list[dict[str, Any]]) -> None:
    found, conflict = fact(ONCOLOGY, request(practitioners=practitioners))
    assert (found.value, conflict) == (None, None)


# --- medication history --------------------------------------------------------------------

CLASSES = {
    "agent_classes": {
        "taxanes": {"agents": ["paclitaxel", "docetaxel", "nab-paclitaxel"]},
        "anthracyclines": {
            "agents": ["doxorubicin", "epirubicin"],
            "codes": [{"system": "rxnorm", "code": "3639"}],
        },
    }
}
HISTORY = {"kind": "medication-history", "classes": ["taxanes", "anthracyclines"], "question": Q}


def history(spec: dict[str, Any], *medications: Any, **parts: Any) -> Any:
    return fact({**HISTORY, **spec}, request(medications=list(medications), **parts), **CLASSES)[0]


def med(name: str, **given: Any) -> dict[str, Any]:
    return {"name": name, "status": "completed", **given}


def test_counting_agents_with_a_complete_list() -> None:
    found = history(
        {"absent": "false"},
        med("Paclitaxel 80 mg"),
        med("paclitaxel"),
        med("docetaxel"),
        med("ondansetron"),
        {"code": "3639", "system": "rxnorm"},
    )
    assert found.value == 3  # paclitaxel (twice), docetaxel, and the anthracycline by code
    assert [e.field for e in found.evidence] == [f"medications[{i}]" for i in (0, 1, 2, 4)]
    assert found.bounds is None


def test_agent_names_are_whole_words() -> None:
    """nab-paclitaxel is its own agent; a longer word containing a name is not that agent."""
    found = history({"absent": "false"}, med("nab-paclitaxel"), med("paclitaxelol"))
    assert found.value == 1


def test_counting_regimens() -> None:
    spec = {"count": "regimens", "absent": "false"}
    found = history(
        spec,
        med("doxorubicin", regimen="AC"),
        med("docetaxel", regimen="AC"),
        med("paclitaxel", start_date="2024-01-10"),
        med("docetaxel", start_date="2024-01-10"),
        med("epirubicin", start_date="2025-03-01"),
    )
    assert found.value == 3


def test_regimens_without_labels_or_dates_give_bounds() -> None:
    found = history({"count": "regimens", "absent": "false"}, med("paclitaxel"), med("doxorubicin"))
    assert found.value is None
    assert found.bounds == (1, 2)  # one regimen of both, or one each


def test_settings_filter_and_unknown_settings_give_bounds() -> None:
    spec = {"settings": ["metastatic"], "absent": "false"}
    sure = med("paclitaxel", setting="metastatic")
    assert history(spec, sure, med("docetaxel", setting="adjuvant")).value == 1
    found = history(spec, sure, med("docetaxel"))
    assert found.value is None
    assert found.bounds == (1, 2)
    assert (
        found.note
        == "1 to 2 agents of taxanes, anthracyclines: some records lack what would settle them"
    )


def test_within_months() -> None:
    spec = {"within_months": 12, "absent": "false"}  # since 2025-12-01
    assert history(spec, med("paclitaxel", end_date="2025-12-01")).value == 1
    assert history(spec, med("paclitaxel", end_date="2025-11-30")).value == 0
    assert history(spec, med("paclitaxel", status="active")).value == 1
    assert history(spec, med("paclitaxel", start_date="2026-01-05")).value == 1
    assert history(spec, med("paclitaxel", start_date="2020-01-05")).bounds == (0, 1)


def test_min_days() -> None:
    spec = {"min_days": 90, "absent": "false"}
    # 2026-01-01 to 2026-03-31 is 90 days counting both ends.
    assert (
        history(spec, med("paclitaxel", start_date="2026-01-01", end_date="2026-03-31")).value == 1
    )
    assert (
        history(spec, med("paclitaxel", start_date="2026-01-01", end_date="2026-03-30")).value == 0
    )
    active = med("paclitaxel", status="active", start_date="2026-09-02")  # to 2026-12-01: 91 days
    assert history(spec, active).value == 1
    assert history(spec, med("paclitaxel", start_date="2026-01-01")).bounds == (0, 1)


def test_outcomes() -> None:
    spec = {"outcomes": ["failed", "progressed", "intolerant"], "absent": "false"}
    assert history(spec, med("paclitaxel", outcome="intolerant")).value == 1
    assert history(spec, med("paclitaxel", outcome="responded")).value == 0
    assert history(spec, med("paclitaxel", progression_date="2025-01-01")).value == 1
    assert history(spec, med("paclitaxel", progressed_on_therapy=True)).value == 1
    assert history(spec, med("paclitaxel")).bounds == (0, 1)


def test_a_contraindicated_agent_was_never_given() -> None:
    assert history({"absent": "false"}, med("paclitaxel", outcome="contraindicated")).value == 0
    spec = {"outcomes": ["contraindicated", "failed"], "absent": "false"}
    assert history(spec, med("paclitaxel", outcome="contraindicated")).value == 1


def test_an_open_list_gives_an_open_upper_bound() -> None:
    """With `absent: unknown` the list may be incomplete: the count is at least the sure one."""
    found = history({}, med("paclitaxel"), med("docetaxel"))
    assert found.value is None
    assert found.bounds == (2, None)
    assert found.note == "at least 2 agents of taxanes, anthracyclines"


def test_nothing_of_the_classes_with_an_open_list_is_unknown() -> None:
    found = history({}, med("ondansetron"))
    assert (found.value, found.bounds) == (None, None)
    assert found.note == "no agents of taxanes, anthracyclines given"
    assert history({}).note == "no medications given"
    assert history({"absent": "false"}).value == 0


def test_attested_count_within_the_bounds() -> None:
    spec = {"settings": ["metastatic"], "absent": "false", "attestable": True}
    found = history(
        spec, med("paclitaxel", setting="metastatic"), med("docetaxel"), answers={"f": 2}
    )
    assert (found.value, found.note) == (2, "attested")


def test_an_attested_count_below_the_sure_count_is_a_conflict() -> None:
    """The record shows two agents given; an answer of none contradicts it."""
    spec = {**HISTORY, "attestable": True}
    data = request(medications=[med("paclitaxel"), med("docetaxel")], answers={"f": 0})
    found, conflict = fact(spec, data, **CLASSES)
    assert found.value is None
    assert conflict is not None
    assert {e.field for e in conflict.evidence} >= {"medications[0]", "answers.f"}


def test_an_attested_count_above_a_complete_list_is_a_conflict() -> None:
    spec = {**HISTORY, "absent": "false", "attestable": True}
    data = request(medications=[med("paclitaxel", setting="metastatic")], answers={"f": 3})
    found, conflict = fact(spec, data, **CLASSES)
    assert found.value is None
    assert conflict is not None


# --- current medication --------------------------------------------------------------------

AZOLES = {"agent_classes": {"azoles": {"agents": ["ketoconazole", "itraconazole"]}}}
CURRENT = {"kind": "current-medication", "classes": ["azoles"], "question": Q}


def current(spec: dict[str, Any], *medications: Any, **parts: Any) -> Any:
    return fact({**CURRENT, **spec}, request(medications=list(medications), **parts), **AZOLES)[0]


def test_an_active_medication_is_current() -> None:
    found = current({}, {"name": "Ketoconazole 200 mg tablet", "status": "active"})
    assert (found.value, found.note) == (True, "taken now")
    assert found.evidence[0].field == "medications[0]"


@pytest.mark.parametrize(
    ("medication", "expected"),
    [
        ({"name": "ketoconazole", "status": "completed"}, False),
        ({"name": "ketoconazole", "status": "stopped"}, False),
        ({"name": "ketoconazole", "end_date": "2026-11-30"}, False),  # ended before the service
        ({"name": "ketoconazole", "end_date": "2026-12-01"}, True),  # still taken that day
        ({"name": "ketoconazole", "start_date": "2026-01-01"}, True),  # no end date
        ({"name": "fluconazole", "status": "active"}, False),
    ],
)
def test_current_or_not(medication: dict[str, Any], expected: bool) -> None:
    assert current({"absent": "false"}, medication).value is expected


def test_a_medication_of_unknown_status_is_not_known_to_be_current() -> None:
    found = current({"absent": "false"}, {"name": "ketoconazole", "status": "unknown"})
    assert found.value is None
    both = [
        {"name": "ketoconazole", "status": "unknown"},
        {"name": "itraconazole", "status": "active"},
    ]
    assert current({"absent": "false"}, *both).value is True


def test_partners_given_alongside() -> None:
    found = current({}, service_with=["Ketoconazole"])
    assert (found.value, found.evidence[0].field) == (True, "service.with[0]")
    assert current({"partners": False}, service_with=["ketoconazole"]).value is None
    assert (
        current({"medications": False}, {"name": "ketoconazole", "status": "active"}).value is None
    )


def test_no_current_medication() -> None:
    assert current({}).value is None
    assert current({}, {"name": "ketoconazole", "status": "completed"}).value is None
    assert current({"absent": "false"}).value is False


# --- product -------------------------------------------------------------------------------


def product(spec: dict[str, Any], codes: list[dict[str, str]], **parts: Any) -> Any:
    data = request(service={"codes": codes, "start_date": SERVICE_DATE.isoformat()})
    return fact({"kind": "product", "question": Q, **spec}, data, **parts)[0]


def test_product_by_listed_code() -> None:
    spec = {"codes": [{"system": "hcpcs", "code": "Q9999"}]}
    assert product(spec, [{"system": "hcpcs", "code": "q9999"}]).value is True
    found = product(spec, [{"system": "hcpcs", "code": "J9999"}])
    assert found.value is False
    assert found.evidence[0].value == ("J9999",)


@pytest.mark.parametrize("listed", ["12345-6789-01", "12345-6789"])
@pytest.mark.parametrize("requested", ["12345678901", "12345-6789-01", "12345-6789-1"])
def test_product_by_ndc(listed: str, requested: str) -> None:
    """A policy may list a package NDC or a product (labeler-product); a requested package of
    that product matches either way."""
    spec = {"codes": [{"system": "ndc", "code": listed}]}
    assert product(spec, [{"system": "ndc", "code": requested}]).value is True
    assert product(spec, [{"system": "ndc", "code": "12345-6780-01"}]).value is False


def test_product_preferred_drugs() -> None:
    drugs = [
        {"name": "Brand", "generic_name": "x", "hcpcs": ["J9999"], "preferred": False},
        {
            "name": "Biosimilar",
            "generic_name": "x",
            "hcpcs": ["Q9999"],
            "ndc_products": ["12345-6789"],
            "preferred": True,
        },
    ]
    assert product({}, [{"system": "hcpcs", "code": "Q9999"}], drugs=drugs).value is True
    assert product({}, [{"system": "ndc", "code": "12345678901"}], drugs=drugs).value is True
    assert product({}, [{"system": "hcpcs", "code": "J9999"}], drugs=drugs).value is False


# --- answer --------------------------------------------------------------------------------


def answered(spec: dict[str, Any], given: Any) -> Any:
    return fact({"kind": "answer", "question": Q, **spec}, request(answers={"f": given}))[0]


def test_boolean_answer() -> None:
    found = answered({}, {"value": False, "by": "Dr Who"})
    assert (found.value, found.note) == (False, "attested")
    assert found.evidence[0].value == "False (by Dr Who)"
    assert fact({"kind": "answer", "question": Q}, request())[0].value is None


def test_number_answer() -> None:
    assert answered({"type": "number", "unit": "mg"}, 3).value == 3


def test_choice_answer_is_case_insensitive_and_canonical() -> None:
    spec = {"type": "choice", "choices": ["HER2-positive", "HER2-negative"]}
    assert answered(spec, "her2-POSITIVE").value == "HER2-positive"
    assert answered(spec, "  her2-negative ").value == "HER2-negative"


def test_date_and_text_answers() -> None:
    assert answered({"type": "date"}, "2026-01-31").value == "2026-01-31"
    assert answered({"type": "text"}, "because").value == "because"


def test_a_hyphen_separates_words_in_agent_names() -> None:
    """A hyphenated form (a protein-bound prefix, a biosimilar's suffix) is the agent it names."""
    only_base = {"agent_classes": {"taxanes": {"agents": ["paclitaxel"]}}}
    spec = {**HISTORY, "classes": ["taxanes"], "absent": "false"}
    for name in ("nab-paclitaxel", "paclitaxel-protein bound", "Paclitaxel-abcd 100 MG"):
        found = fact(spec, request(medications=[med(name)]), **only_base)[0]
        assert found.value == 1, name
    found = fact(spec, request(medications=[med("paclitaxelol")]), **only_base)[0]
    assert found.value == 0
