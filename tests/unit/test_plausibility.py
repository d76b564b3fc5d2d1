"""Plausibility: a value a contract can hold but no patient has for its unit (an ANC of 1.8/uL,
an adult 65 cm tall) is not a fact; the determination asks to confirm it, naming the field.
Values beyond any physical bound stay refused at the contract (test_request)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from priorauth import PolicySet, parse_request
from priorauth.clinical import observations
from priorauth.errors import InvalidRequest
from tests.conftest import ROOT, example
from tests.unit.builders import compiled, decide, request

# --- the table ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "value", "unit", "age", "words"),
    [
        ("751-8", 1.8, "/mm3", 60, "neutrophils 1.8 /mm3 is outside the plausible range"),
        ("751-8", 1800, "10*3/uL", 60, "was 1800 /uL meant?"),
        ("751-8", 5, "/uL", None, "(0, or 10 to 200,000 /uL)"),
        ("777-3", 85, "/uL", 60, "was 85 10*3/uL meant?"),
        ("6690-2", 4.2, "/mm3", 60, "leukocytes 4.2 /mm3"),
        ("8302-2", 65, "cm", 40, "body height 65 cm is outside the plausible range for an adult"),
        ("8302-2", 260, "cm", 18, "(100 to 250 cm)"),
        ("29463-7", 19, "kg", 30, "body weight 19 kg"),
        ("718-7", 120, "g/dL", 50, "was 120 g/L meant?"),
        ("17861-6", 2.3, "mg/dL", 50, "was 2.3 mmol/L meant?"),
        ("2160-0", 88, "mg/dL", 50, "was 88 umol/L meant?"),
    ],
)
def test_implausible_values_say_why_and_what_was_likely_meant(
    code: str, value: float, unit: str, age: int | None, words: str
) -> None:
    problem = observations.implausible(code, value, unit, age_years=age)
    assert problem is not None
    assert words in problem


@pytest.mark.parametrize(
    ("code", "value", "unit", "age"),
    [
        ("751-8", 1.8, "10*3/uL", 60),
        ("751-8", 0, "/uL", 60),  # none seen: a real count
        ("751-8", 1800, "/mm3", 60),
        ("777-3", 150, "10*9/L", 60),
        ("8302-2", 65, "cm", 1),  # a one-year-old
        ("8302-2", 65, "cm", None),  # age not known: only the contract's bounds apply
        ("8302-2", 65, "[in_i]", 40),  # 165 cm
        ("29463-7", 150, "[lb_av]", 40),
        ("17861-6", 2.3, "mmol/L", 50),
        ("2160-0", 88, "umol/L", 50),
        ("99999-9", -4, "/uL", 50),  # a code the table does not know
        ("751-8", 1.8, None, 50),  # no unit: nothing to judge by
        ("751-8", 1.8, "mg", 50),  # a unit of another kind: the unit checks say so
    ],
)
def test_plausible_or_unjudgeable_values_pass(
    code: str, value: float, unit: str | None, age: int | None
) -> None:
    assert observations.implausible(code, value, unit, age_years=age) is None


def test_only_loinc_codes_are_judged() -> None:
    assert observations.implausible("751-8", 1.8, "/uL", system="snomed") is None


@given(
    st.sampled_from(observations.PLAUSIBLE),
    st.floats(min_value=-1e12, max_value=1e12, allow_nan=False),
)
def test_a_value_in_its_own_unit_is_implausible_exactly_outside_its_range(
    row: observations.PlausibleRange, value: float
) -> None:
    inside = row.low <= value <= row.high or (row.zero and value == 0)
    problem = observations.implausible(row.codes[0], value, row.unit, age_years=40)
    assert (problem is None) is inside
    if problem is not None:
        assert row.name in problem


@given(st.sampled_from(observations.PLAUSIBLE))
def test_the_table_is_well_formed(row: observations.PlausibleRange) -> None:
    assert row.low < row.high and row.why
    assert all(
        observations.implausible(c, row.low, row.unit, age_years=40) is None for c in row.codes
    )
    assert not math.isnan(row.high)


def test_each_code_has_one_row() -> None:
    codes = [code for row in observations.PLAUSIBLE for code in row.codes]
    assert len(codes) == len(set(codes))


# --- in the determination -------------------------------------------------------------------

ANC = {
    "kind": "observation",
    "codes": ["751-8"],
    "unit": "/uL",
    "question": "What is the patient's absolute neutrophil count?",
}
CRITERIA = {
    "id": "1",
    "text": "All of",
    "all": [
        {"id": "A", "text": "Has the diagnosis", "fact": "dx"},
        {"id": "B", "text": "ANC at least 1,500/uL", "fact": "anc", "at_least": 1500},
    ],
}


def _anc_request(value: float, unit: str) -> dict[str, Any]:
    return request(
        observations=[
            {"code": "8302-2", "value": 165, "unit": "cm"},
            {"code": "751-8", "value": value, "unit": unit, "date": "2026-11-18"},
        ]
    )


def test_an_anc_of_1_8_per_mm3_is_a_question_naming_the_field() -> None:
    """Once read as 1.8/mm3, a fact (criterion B not met, or a contraindication)."""
    policy = compiled(facts={"anc": ANC}, criteria=CRITERIA)
    determination = decide(policy, _anc_request(1.8, "/mm3"))
    assert determination.outcome == "pended"
    assert determination.reasons == ("missing-information",)
    assert determination.facts["anc"].value is None
    assert "outside the plausible range" in (determination.facts["anc"].note or "")
    (question,) = determination.missing
    assert question.fact == "anc"
    assert question.fields[:2] == ("observations[1].value", "observations[1].unit")
    assert question.question.startswith(
        "observations[1].value: neutrophils 1.8 /mm3 is outside the plausible range "
        "(0, or 10 to 200,000 /uL); was 1.8 10*3/uL meant?; confirm the value and its unit."
    )
    assert question.criteria == ("B",)
    assert "observations[1].value: neutrophils 1.8 /mm3" in "\n".join(determination.explain())


@pytest.mark.parametrize(
    ("value", "unit", "status"), [(1.8, "10*3/uL", "met"), (900, "/uL", "not-met")]
)
def test_a_plausible_anc_is_read_as_given(value: float, unit: str, status: str) -> None:
    policy = compiled(facts={"anc": ANC}, criteria=CRITERIA)
    determination = decide(policy, _anc_request(value, unit))
    assert determination.criteria is not None
    assert determination.criteria.children[1].status == status


def test_an_adult_65_cm_tall_is_a_question_not_a_dose(policies: PolicySet) -> None:
    """Once accepted: a BSA worked out from 65 cm, and a 28 mg dose approved as 28 mg/m2 on it."""
    data = example("02-approved-weekly-mg-dose.json")
    data["observations"][0]["value"] = 65
    determination = policies.evaluate(data)
    assert determination.outcome == "pended"
    assert "missing-information" in determination.reasons
    assert determination.dosing is not None and determination.dosing.bsa_m2 is None
    (question,) = [q for q in determination.missing if q.fact == "body-surface-area"]
    assert question.question.startswith(
        "observations[0].value: body height 65 cm is outside the plausible range for an adult "
        "(100 to 250 cm)"
    )
    assert "observations[0].value" in question.fields


def test_a_child_65_cm_tall_is_read_as_given(policies: PolicySet) -> None:
    data = example("02-approved-weekly-mg-dose.json")
    data["observations"][0]["value"] = 65
    data["observations"][1]["value"] = 7
    data["patient"]["birth_date"] = "2025-06-01"
    determination = policies.evaluate(data)
    assert determination.dosing is not None and determination.dosing.bsa_m2 is not None


def test_an_implausible_weight_leaves_a_per_kg_dose_unknown(policies: PolicySet) -> None:
    data = example("infliximab-01-approved-crohns-induction.json")
    data["service"]["dose"] = {"value": 300, "unit": "mg"}  # converted to mg/kg by the weight
    index = next(i for i, o in enumerate(data["observations"]) if o["code"] == "29463-7")
    data["observations"][index]["value"] = 720
    data["observations"][index]["unit"] = "[lb_av]"  # 327 kg: plausible, read as given
    assert policies.evaluate(data).dosing.weight_kg is not None  # type: ignore[union-attr]
    data["observations"][index]["value"] = 12
    data["observations"][index]["unit"] = "kg"
    determination = policies.evaluate(data)
    assert "missing-information" in determination.reasons
    assert any(
        f"observations[{index}].value: body weight 12 kg" in q.question
        for q in determination.missing
    )


@pytest.mark.parametrize("value", [1e29, math.inf, 6.5])
def test_values_no_contract_holds_are_still_refused(value: float) -> None:
    observation = {"code": "8302-2", "value": value, "unit": "cm"}
    with pytest.raises(InvalidRequest) as raised:
        parse_request(request(observations=[observation]))
    assert any(p.field.startswith("observations[0]") for p in raised.value.problems)


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def test_docs_list_every_range_as_the_table_has_it() -> None:
    text = (ROOT / "docs" / "request.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and " to " in line]
    for row in observations.PLAUSIBLE:
        line = next((r for r in rows if r.startswith(f"| {', '.join(row.codes)} |")), None)
        assert line is not None, f"docs/request.md has no row for {row.codes}"
        assert f"{_number(row.low)} to {_number(row.high)} {row.unit}" in line, line
        assert ("| adults |" in line) is row.adults_only, line
