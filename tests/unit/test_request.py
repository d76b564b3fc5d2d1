"""The request contract: every part validates and normalizes, and each problem names its field."""

from __future__ import annotations

import math
from typing import Any

import pytest

from priorauth import InvalidRequest, parse_request
from priorauth.engine.request import Request
from tests.unit.builders import request


def problems(data: dict[str, Any]) -> dict[str, str]:
    """The problems parse_request finds, by field."""
    with pytest.raises(InvalidRequest) as raised:
        parse_request(data)
    return {p.field: p.message for p in raised.value.problems}


def only_problem(data: dict[str, Any]) -> tuple[str, str]:
    (found,) = problems(data).items()
    return found


# --- codes and code systems ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "normalized"),
    [
        ("C50.912", "C50.912"),
        ("c50912", "C50.912"),
        (" c50.912 ", "C50.912"),
        ("C50A12", "C50.A12"),
        ("z853", "Z85.3"),
        ("C80", "C80"),
    ],
)
def test_icd10_codes_are_dotted_upper_case(given: str, normalized: str) -> None:
    parsed = parse_request(request(conditions=[given, {"code": given}]))
    assert [c.code for c in parsed.conditions] == [normalized, normalized]
    assert {c.system for c in parsed.conditions} == {"icd-10-cm"}


def test_other_condition_systems_keep_their_codes() -> None:
    parsed = parse_request(
        request(
            conditions=[
                {"code": "8500/3", "system": "icd-o-3"},
                {"code": "254837009", "system": "http://snomed.info/sct"},
            ]
        )
    )
    assert [(c.system, c.code) for c in parsed.conditions] == [
        ("icd-o-3", "8500/3"),
        ("snomed", "254837009"),
    ]


def test_an_icd10_code_must_look_like_one() -> None:
    field, message = only_problem(request(conditions=["C50.912", "breast cancer"]))
    assert field == "conditions[1]"
    assert "'breast cancer' is not an ICD-10-CM code" in message


@pytest.mark.parametrize(
    ("given", "normalized"),
    [
        ("70020191001", "70020-1910-01"),  # 11 digits
        ("70020-1910-01", "70020-1910-01"),  # 5-4-2
        ("70020-1911-1", "70020-1911-01"),  # 5-4-1
        ("0002-1234-01", "00002-1234-01"),  # 4-4-2
        ("12345-123-01", "12345-0123-01"),  # 5-3-2
    ],
)
def test_ndc_forms_become_5_4_2(given: str, normalized: str) -> None:
    parsed = parse_request(request(service={"codes": [{"system": "ndc", "code": given}]}))
    assert parsed.service.codes[0].code == normalized


@pytest.mark.parametrize("ndc", ["123", "7002019100", "70020-19100-1", "7002O191001"])
def test_malformed_ndcs_are_refused(ndc: str) -> None:
    field, message = only_problem(request(service={"codes": [{"system": "ndc", "code": ndc}]}))
    assert field == "service.codes[0]"
    assert "is not an NDC" in message


def test_service_code_is_shorthand_for_a_hcpcs_coding() -> None:
    parsed = parse_request(
        request(service={"code": "j9999", "codes": [{"system": "rxnorm", "code": "12345"}]})
    )
    assert [(c.system, c.code) for c in parsed.service.codes] == [
        ("hcpcs", "J9999"),
        ("rxnorm", "12345"),
    ]
    assert parsed.service.code is None
    assert parsed.service.label() == "hcpcs J9999"


def test_a_service_needs_a_code() -> None:
    field, message = only_problem(request(service={"name": "something"}))
    assert field == "service"
    assert "code" in message


@pytest.mark.parametrize(
    ("system", "name"),
    [
        ("ndc", "ndc"),
        ("NDC", "ndc"),
        ("http://hl7.org/fhir/sid/ndc", "ndc"),
        ("urn:oid:2.16.840.1.113883.6.69", "ndc"),
        ("https://bluebutton.cms.gov/resources/codesystem/hcpcs", "hcpcs"),
        ("http://www.nlm.nih.gov/research/umls/rxnorm", "rxnorm"),
    ],
)
def test_code_systems_by_short_name_or_uri(system: str, name: str) -> None:
    code = "70020-1910-01" if name == "ndc" else "J9999" if name == "hcpcs" else "12345"
    parsed = parse_request(request(service={"codes": [{"system": system, "code": code}]}))
    assert parsed.service.codes[0].system == name


@pytest.mark.parametrize(
    ("system", "suggestion"),
    [
        ("icd10", "'icd-10-cm'"),
        ("http://hl7.org/fhir/sid/icd-10", "'http://hl7.org/fhir/sid/icd-10-cm'"),
    ],
)
def test_unknown_code_system_is_named_with_a_suggestion(system: str, suggestion: str) -> None:
    field, message = only_problem(request(conditions=[{"code": "C50.912", "system": system}]))
    assert field == "conditions[0].system"
    assert f"unknown code system {system!r}" in message
    assert f"did you mean {suggestion}" in message


def test_a_nonsense_code_system_gets_no_suggestion() -> None:
    _, message = only_problem(request(conditions=[{"code": "X", "system": "zzzzzzzz"}]))
    assert "did you mean" not in message
    assert "known: icd-10-cm" in message


# --- NPI -----------------------------------------------------------------------------------------


def test_npi_check_digit() -> None:
    assert parse_request(request(practitioners=[{"npi": "1234567893"}])).practitioners[0].npi
    field, message = only_problem(request(practitioners=[{"npi": "1234567890"}]))
    assert field == "practitioners[0].npi"
    assert "check digit" in message


def test_practitioner_role_defaults_to_prescriber() -> None:
    parsed = parse_request(
        request(practitioners=[{"npi": "1234567893"}, {"role": "consultant", "specialty": "x"}])
    )
    assert [p.role for p in parsed.practitioners] == ["prescriber", "consultant"]
    assert [i for i, _ in parsed.practitioner("consultant")] == [1]
    field, _ = only_problem(request(practitioners=[{"role": "nurse"}]))
    assert field == "practitioners[0].role"


# --- units ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "value", "unit", "stored"),
    [
        ("29463-7", 150, "[lb_av]", "[lb_av]"),
        ("29463-7", 150, "lb", "[lb_av]"),
        ("8302-2", 65, "[in_i]", "[in_i]"),
        ("751-8", 1.5, "10*3/uL", "10*3/uL"),
        ("751-8", 1.5, "K/uL", "10*3/uL"),
        ("751-8", 1500, "/uL", "/uL"),
        ("751-8", 1500, "cells/mm3", "/mm3"),
        ("8277-6", 1.8, "m2", "m2"),
        ("2160-0", 1.1, "mg/dL", "mg/dL"),
    ],
)
def test_ucum_units_are_accepted_and_aliases_mapped(
    code: str, value: float, unit: str, stored: str
) -> None:
    parsed = parse_request(request(observations=[{"code": code, "value": value, "unit": unit}]))
    assert parsed.observations[0].unit == stored


def test_an_unknown_unit_is_named_with_a_suggestion() -> None:
    field, message = only_problem(
        request(observations=[{"code": "8302-2", "value": 165, "unit": "cmm"}])
    )
    assert field == "observations[0].unit"
    assert "unknown unit 'cmm'" in message
    assert "did you mean 'cm'" in message


def test_a_unit_needs_a_number() -> None:
    field, message = only_problem(
        request(observations=[{"code": "751-8", "value": "high", "unit": "/uL"}])
    )
    assert field == "observations[0]"
    assert "a unit goes with a numeric value" in message


@pytest.mark.parametrize(
    ("unit", "stored"),
    [
        ("mg", "mg"),
        ("g", "g"),
        ("ug", "ug"),
        ("mcg", "ug"),
        ("µg", "ug"),
        ("mg/m2", "mg/m2"),
        ("mg/m²", "mg/m2"),
        ("mg/kg", "mg/kg"),
        ("mcg/kg", "ug/kg"),
    ],
)
def test_dose_units(unit: str, stored: str) -> None:
    dose = parse_request(request(service_dose={"value": 5, "unit": unit})).service.dose
    assert dose is not None
    assert dose.unit == stored


@pytest.mark.parametrize("unit", ["mL", "mg/m2/d", "mg/L", "m2", "MG", "%"])
def test_dose_units_that_are_not_a_mass_per_something_are_refused(unit: str) -> None:
    field, message = only_problem(request(service_dose={"value": 5, "unit": unit}))
    assert field == "service.dose.unit"
    assert "a dose unit is a mass" in message


def test_a_dose_needs_a_positive_value() -> None:
    field, _ = only_problem(request(service_dose={"value": 0, "unit": "mg"}))
    assert field == "service.dose.value"


# --- body measures and plausibility ---------------------------------------------------------


@pytest.mark.parametrize(
    ("observation", "words"),
    [
        (
            {"code": "8302-2", "value": 6.5, "unit": "cm"},
            "a body height of 6.5 cm is not plausible",
        ),
        ({"code": "8302-2", "value": 165, "unit": "m"}, "a body height of 165 m is not plausible"),
        ({"code": "29463-7", "value": -3, "unit": "kg"}, "a body weight of -3 kg is not plausible"),
        ({"code": "29463-7", "value": 2000, "unit": "[lb_av]"}, "body weight"),
        ({"code": "8277-6", "value": 18, "unit": "m2"}, "a body surface area of 18 m2"),
        ({"code": "2160-0", "value": 95, "unit": "mg/dL"}, "serum creatinine"),
        ({"code": "8302-2", "value": 165}, "a body height needs its unit"),
        ({"code": "29463-7", "value": 70, "unit": "cm"}, "'cm' is not a unit of body weight"),
        ({"code": "3141-9", "value": 0.1, "unit": "kg"}, "body weight"),  # another weight code
    ],
)
def test_implausible_body_measures_are_refused_with_the_field(
    observation: dict[str, Any], words: str
) -> None:
    field, message = only_problem(
        request(observations=[{"code": "8302-2", "value": 165, "unit": "cm"}, observation])
    )
    assert field == "observations[1]"
    assert words in message


def test_an_unknown_loinc_code_is_not_range_checked() -> None:
    parsed = parse_request(request(observations=[{"code": "99999-9", "value": -40, "unit": "kg"}]))
    assert parsed.observations[0].value == -40


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            {"observations": [{"code": "29463-7", "value": math.inf, "unit": "kg"}]},
            "observations[0].value",
        ),
        (
            {"observations": [{"code": "29463-7", "value": math.nan, "unit": "kg"}]},
            "observations[0].value",
        ),
        (
            {"observations": [{"code": "1920-8", "uln_multiple": math.inf}]},
            "observations[0].uln_multiple",
        ),
        ({"service_dose": {"value": math.inf, "unit": "mg"}}, "service.dose.value"),
        ({"service_dose": {"value": math.nan, "unit": "mg"}}, "service.dose.value"),
        ({"answers": {"q": math.inf}}, "answers.q"),
    ],
)
def test_non_finite_numbers_are_refused(change: dict[str, Any], field: str) -> None:
    found = problems(request(**change))
    assert any(f.startswith(field) for f in found), found


def test_non_finite_numbers_from_json_text() -> None:
    """1e999 is what JSON text gives for an overflowing number: Python reads it as inf."""
    import json

    data = json.loads(
        '{"request_id": "PA-1", "service": {"code": "J9999", "dose": {"value": 1e999, '
        '"unit": "mg"}}, "observations": [{"code": "29463-7", "value": NaN, "unit": "kg"}]}'
    )
    assert set(problems(data)) == {"service.dose.value", "observations[0].value"}


def test_an_observation_needs_a_value() -> None:
    field, message = only_problem(request(observations=[{"code": "751-8"}]))
    assert field == "observations[0]"
    assert "needs a value" in message


# --- schedules ------------------------------------------------------------------------------


def schedule(**given: Any) -> Any:
    return parse_request(request(service_schedule=given)).service.schedule


def test_weeks_are_read_as_days() -> None:
    parsed = schedule(induction_weeks=[0, 2, 6], interval_weeks=8)
    assert parsed.induction_days == (0, 14, 42)
    assert parsed.interval_days == 56
    assert parsed.cycle_length_days is None


def test_cycle_days_count_the_doses() -> None:
    parsed = schedule(cycle_length_days=21, cycle_days=[1, 8])
    assert parsed.doses_in_cycle == 2
    assert schedule(cycle_length_days=21, doses_per_cycle=3).doses_in_cycle == 3
    assert schedule(interval_days=14).doses_in_cycle is None


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ({"cycle_days": [8, 1], "cycle_length_days": 21}, "distinct days in increasing order"),
        ({"cycle_days": [1, 1], "cycle_length_days": 21}, "distinct days in increasing order"),
        ({"cycle_days": [1, 8]}, "cycle_days need cycle_length_days"),
        ({"cycle_days": [1, 22], "cycle_length_days": 21}, "after the end of the cycle"),
        (
            {"cycle_days": [1, 8], "cycle_length_days": 21, "doses_per_cycle": 3},
            "disagrees with the number of cycle_days",
        ),
        ({"induction_days": [14, 0]}, "induction days must be distinct"),
        ({"cycle_length_days": 21, "interval_days": 14}, "not both"),
        ({"doses_per_cycle": 2, "interval_weeks": 2}, "not both"),
        ({"interval_weeks": 2, "interval_days": 14}, "give interval_weeks or interval_days"),
        ({"induction_weeks": [0, 2], "induction_days": [0, 14]}, "give induction_weeks or"),
    ],
)
def test_schedule_consistency_errors(given: dict[str, Any], words: str) -> None:
    field, message = only_problem(request(service_schedule=given))
    assert field == "service.schedule"
    assert words in message


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"cycle_length_days": 0}, "service.schedule.cycle_length_days"),
        ({"cycle_length_days": 21, "doses_per_cycle": 0}, "service.schedule.doses_per_cycle"),
        ({"interval_weeks": 2.5}, "service.schedule.interval_days"),
        ({"interval_days": 800}, "service.schedule.interval_days"),
        ({"cycle_length_days": 21, "cycle_days": []}, "service.schedule.cycle_days"),
    ],
)
def test_schedule_numbers_out_of_range(given: dict[str, Any], field: str) -> None:
    assert only_problem(request(service_schedule=given))[0] == field


# --- answers ---------------------------------------------------------------------------------


def test_answers_bare_or_with_who_said_so() -> None:
    parsed = parse_request(
        request(
            answers={
                "flag": True,
                "count": {"value": 3, "by": "1234567893"},
                "when": "2026-01-01",
                "skipped": None,
            }
        )
    )
    assert parsed.answers["flag"] is not None and parsed.answers["flag"].value is True
    count = parsed.answers["count"]
    assert count is not None and (count.value, count.by) == (3, "1234567893")
    assert parsed.answers["skipped"] is None


@pytest.mark.parametrize("question", ["Bad-Id", "1st", "with space", "x" * 65])
def test_a_question_id_is_lower_case_words(question: str) -> None:
    field, _ = only_problem(request(answers={question: True}))
    assert field == f"answers.{question}"


@pytest.mark.parametrize(
    ("answer", "field"),
    [
        ({"value": True, "extra": 1}, "answers.q.extra"),
        ({"by": "Dr X"}, "answers.q.value"),
        ([1], "answers.q.value"),
        ({"value": ""}, "answers.q.value"),
    ],
)
def test_malformed_answers(answer: Any, field: str) -> None:
    assert only_problem(request(answers={"q": answer}))[0] == field


# --- the rest ------------------------------------------------------------------------------


def test_medications_named_or_coded() -> None:
    parsed = parse_request(
        request(medications=["some drug", {"code": "12345", "system": "rxnorm"}])
    )
    assert parsed.medications[0].name == "some drug"
    assert parsed.medications[1].system == "rxnorm"
    field, message = only_problem(request(medications=[{"code": "12345"}]))
    assert (field, message) == (
        "medications[0]",
        "a medication code needs its system (rxnorm, ndc, hcpcs, ...)",
    )
    field, message = only_problem(
        request(medications=[{"name": "x", "start_date": "2026-02-01", "end_date": "2026-01-01"}])
    )
    assert (field, message) == ("medications[0]", "end_date is before start_date")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"patient": {"birth_date": "1850-06-01"}}, "patient.birth_date"),
        ({"patient": {"birth_date": "1968-02-30"}}, "patient.birth_date"),
        ({"patient": {"sex": "f"}}, "patient.sex"),
        ({"service_start_date": "9999-12-31"}, "service.start_date"),
        ({"type": "renewal"}, "type"),
        ({"surprise": 1}, "surprise"),
        ({"request_id": "has space"}, "request_id"),
    ],
)
def test_fields_are_named(change: dict[str, Any], field: str) -> None:
    assert field in problems(request(**change))


def test_every_problem_is_reported_not_just_the_first() -> None:
    found = problems(
        request(
            patient={"birth_date": "yesterday"},
            practitioners=[{"npi": "1"}],
            observations=[{"code": "8302-2", "value": 165, "unit": "cmm"}],
        )
    )
    assert set(found) == {"patient.birth_date", "practitioners[0].npi", "observations[0].unit"}


def test_a_request_is_an_object() -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_request([1, 2])
    assert str(raised.value) == "a request is a JSON object"


def test_a_parsed_request_passes_through() -> None:
    parsed = parse_request(request())
    assert parse_request(parsed) is parsed
    assert isinstance(parsed, Request)


def test_a_serum_creatinine_in_umol_per_litre_is_plausible_by_its_molar_mass() -> None:
    good = {"code": "2160-0", "value": 88.4, "unit": "umol/L"}
    assert parse_request(request(observations=[good])).observations[0].unit == "umol/L"
    field, message = only_problem(request(observations=[{**good, "value": 88400}]))
    assert field == "observations[0]"
    assert "serum creatinine of 88400 umol/L is not plausible" in message


def test_induction_weeks_are_whole_numbers_not_yes_or_no() -> None:
    found = problems(request(service={"code": "J9999", "schedule": {"induction_weeks": [True]}}))
    assert found["service.schedule.induction_days[0]"] == "Input should be a valid integer"


def test_an_interval_is_in_days_or_in_calendar_months_not_both() -> None:
    found = problems(
        request(service={"code": "J9999", "schedule": {"interval_weeks": 26, "interval_months": 6}})
    )
    assert "give interval_days (or interval_weeks) or interval_months, not both" in str(found)
