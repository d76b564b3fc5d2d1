"""Criteria: every branch, the age boundary, unknown versus false, the diagnosis paths."""

from __future__ import annotations

from typing import Any

import pytest

from priorauth import Determination, PolicySet


def status(determination: Determination, criterion: str) -> str:
    """The status of one criterion node by its policy id."""
    assert determination.criteria is not None
    stack = [determination.criteria]
    while stack:
        node = stack.pop()
        if node.id == criterion:
            return node.status
        stack.extend(node.children)
    raise AssertionError(f"no criterion {criterion}")


def only_b(request: dict[str, Any], flag: str | None, value: bool | None) -> dict[str, Any]:
    """The request with no metastasis code and one disease flag set."""
    request["diagnoses"] = ["C50.912"]
    request["disease"] = {flag: value} if flag else {}
    return request


# --- A: age on the service date -------------------------------------------------------------


@pytest.mark.parametrize(
    ("birth_date", "expected"),
    [
        ("2008-12-01", "met"),  # 18th birthday is the service date itself
        ("2008-12-02", "not-met"),  # turns 18 the day after
        ("2008-11-30", "met"),
        ("1930-01-01", "met"),
    ],
)
def test_age_boundary_on_the_birthday(
    policies: PolicySet, approvable: dict[str, Any], birth_date: str, expected: str
) -> None:
    approvable["patient"]["birth_date"] = birth_date  # service date 2026-12-01
    determination = policies.evaluate(approvable)
    assert status(determination, "A") == expected
    if expected == "not-met":
        assert determination.outcome == "pended"
        assert determination.reasons == ("criteria-not-met",)
        assert determination.route == "medical-director"
        assert "criterion A not met" in determination.summary


def test_leap_day_birthday_turns_18_on_march_first(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    approvable["patient"]["birth_date"] = "2008-02-29"
    approvable["regimen"]["start_date"] = "2026-02-28"
    assert status(policies.evaluate(approvable), "A") == "not-met"
    approvable["regimen"]["start_date"] = "2026-03-01"
    assert status(policies.evaluate(approvable), "A") == "met"


def test_service_date_falls_back_to_received_date(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    del approvable["regimen"]["start_date"]
    approvable["patient"]["birth_date"] = "2008-11-20"  # 18 on the received date 2026-11-20
    determination = policies.evaluate(approvable)
    assert determination.service_date.isoformat() == "2026-11-20"
    assert status(determination, "A") == "met"
    assert determination.authorization is not None
    assert determination.authorization.valid_through.isoformat() == "2027-11-19"


def test_missing_birth_date_is_unknown_not_false(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    del approvable["patient"]["birth_date"]
    determination = policies.evaluate(approvable)
    assert status(determination, "A") == "unknown"
    assert determination.reasons == ("missing-information",)
    assert [m.fact for m in determination.missing] == ["age_years"]
    assert determination.missing[0].fields == ("patient.birth_date",)


def test_birth_date_after_service_date_is_a_conflict(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    approvable["patient"]["birth_date"] = "2027-01-01"
    determination = policies.evaluate(approvable)
    assert status(determination, "A") == "unknown"
    assert [c.fact for c in determination.conflicts] == ["age_years"]
    assert determination.outcome == "pended"


# --- B: one of i, ii, iii ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "flag",
    [
        "recurrent_unresectable_locoregional",
        "metastatic",
        "no_response_to_preoperative_therapy",
    ],
)
def test_each_b_branch_alone_meets_b(
    policies: PolicySet, approvable: dict[str, Any], flag: str
) -> None:
    determination = policies.evaluate(only_b(approvable, flag, True))
    assert status(determination, "B") == "met"
    assert determination.outcome == "approved"


def test_all_b_branches_false_fails_b(policies: PolicySet, approvable: dict[str, Any]) -> None:
    approvable["diagnoses"] = ["C50.912"]
    approvable["disease"] = {
        "recurrent_unresectable_locoregional": False,
        "metastatic": False,
        "no_response_to_preoperative_therapy": False,
    }
    determination = policies.evaluate(approvable)
    assert status(determination, "B") == "not-met"
    assert determination.reasons == ("criteria-not-met",)
    assert "criterion B not met" in determination.summary
    assert determination.missing == ()


def test_b_unknown_asks_only_the_unknown_branches(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    determination = policies.evaluate(only_b(approvable, "metastatic", False))
    assert status(determination, "B") == "unknown"
    assert status(determination, "B.ii") == "not-met"
    assert determination.reasons == ("missing-information",)
    asked = {m.fact for m in determination.missing}
    assert asked == {"recurrent_unresectable_locoregional", "no_response_to_preoperative_therapy"}
    assert all(m.question.endswith("?") for m in determination.missing)


def test_false_criterion_outranks_unknowns(policies: PolicySet, approvable: dict[str, Any]) -> None:
    """A is false: B's unknowns could not change the outcome, so nobody is asked about them."""
    only_b(approvable, None, None)
    approvable["patient"]["birth_date"] = "2010-01-01"
    determination = policies.evaluate(approvable)
    assert status(determination, "B") == "unknown"
    assert determination.reasons == ("criteria-not-met",)
    assert determination.missing == ()


def test_c77_alone_is_not_metastatic(policies: PolicySet, approvable: dict[str, Any]) -> None:
    approvable["diagnoses"] = ["C50.912", "C77.3"]
    approvable["disease"] = {}
    determination = policies.evaluate(approvable)
    assert determination.facts["metastatic"].value is None
    assert status(determination, "B.ii") == "unknown"
    assert determination.outcome == "pended"


@pytest.mark.parametrize("code", ["C78.01", "C78.7", "C79.51", "C79.31", "C80.0", "C7951"])
def test_distant_metastasis_codes(
    policies: PolicySet, approvable: dict[str, Any], code: str
) -> None:
    approvable["diagnoses"] = ["C50.912", code]
    approvable["disease"] = {}
    determination = policies.evaluate(approvable)
    assert determination.facts["metastatic"].value is True
    assert determination.facts["metastatic"].evidence[0].field == "diagnoses[1]"
    assert determination.outcome == "approved"


def test_c80_1_is_not_disseminated(policies: PolicySet, approvable: dict[str, Any]) -> None:
    approvable["diagnoses"] = ["C50.912", "C80.1"]
    approvable["disease"] = {}
    assert policies.evaluate(approvable).facts["metastatic"].value is None


def test_conflict_attested_not_metastatic_with_metastasis_code(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    approvable["diagnoses"] = ["C50.912", "C78.7"]
    approvable["disease"] = {"metastatic": False}
    determination = policies.evaluate(approvable)
    assert determination.facts["metastatic"].value is None
    (conflict,) = determination.conflicts
    assert conflict.fact == "metastatic"
    assert {e.field for e in conflict.evidence} == {"disease.metastatic", "diagnoses[1]"}
    assert determination.outcome == "pended"
    assert "missing-information" in determination.reasons


def test_conflict_is_shown_even_when_another_branch_decides(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    approvable["diagnoses"] = ["C50.912", "C78.7"]
    approvable["disease"] = {"metastatic": False, "recurrent_unresectable_locoregional": True}
    determination = policies.evaluate(approvable)
    assert determination.outcome == "approved"
    assert [c.fact for c in determination.conflicts] == ["metastatic"]


# --- Indication -----------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["C50.912", "C50.A12", "C50011", "Z85.3"])
def test_breast_cancer_codes(policies: PolicySet, approvable: dict[str, Any], code: str) -> None:
    approvable["diagnoses"] = [code, "C78.01"]
    determination = policies.evaluate(approvable)
    assert determination.facts["breast_cancer"].value is True
    assert determination.outcome == "approved"


def test_z85_3_with_secondary_site_is_metastatic_breast_cancer(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    approvable["diagnoses"] = ["Z85.3", "C79.51"]
    approvable["disease"] = {}
    determination = policies.evaluate(approvable)
    assert determination.outcome == "approved"
    assert determination.facts["breast_cancer"].evidence[0].value == "Z85.3"


@pytest.mark.parametrize("code", ["D05.10", "C34.90", "C56.9", "Z85.038"])
def test_other_diagnoses_are_not_covered(
    policies: PolicySet, approvable: dict[str, Any], code: str
) -> None:
    approvable["diagnoses"] = [code, "C78.01"]
    determination = policies.evaluate(approvable)
    assert determination.reasons[0] == "not-covered-indication"
    assert determination.criteria is None
    assert determination.outcome == "pended"


def test_no_diagnoses_is_missing_not_uncovered(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    approvable["diagnoses"] = []
    approvable["disease"] = {"metastatic": True}
    determination = policies.evaluate(approvable)
    assert determination.reasons == ("missing-information",)
    assert determination.missing[0].fact == "breast_cancer"
    assert determination.indication is not None
    assert determination.indication.status == "unknown"


# --- C: oncologist -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "specialty",
    [
        "207RX0202X",
        "207rh0003x",
        "medical-oncology",
        "Hematology & Oncology",
        "hem-onc",
        "Gynecologic Oncology",
        "oncologist",
    ],
)
def test_oncology_specialties(
    policies: PolicySet, approvable: dict[str, Any], specialty: str
) -> None:
    approvable["prescriber"]["specialty"] = specialty
    assert status(policies.evaluate(approvable), "C") == "met"


def test_non_oncologist_without_consult_is_unknown_and_asked(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    approvable["prescriber"]["specialty"] = "207Q00000X"  # family medicine
    determination = policies.evaluate(approvable)
    assert status(determination, "C") == "unknown"
    assert [m.criteria for m in determination.missing] == [("C",)]


def test_consulting_oncologist_meets_c(policies: PolicySet, approvable: dict[str, Any]) -> None:
    approvable["prescriber"] = {
        "npi": "1234567893",
        "specialty": "family medicine",
        "consulting_oncologist_npi": "1245319599",
    }
    determination = policies.evaluate(approvable)
    assert status(determination, "C") == "met"
    fields = [e.field for e in determination.facts["prescribed_by_or_with_oncologist"].evidence]
    assert fields == ["prescriber.specialty", "prescriber.consulting_oncologist_npi"]


def test_reasons_are_ordered_most_serious_first(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    approvable["patient"]["birth_date"] = "2012-01-01"
    approvable["regimen"]["dose"] = 50
    determination = policies.evaluate(approvable)
    assert determination.reasons == ("criteria-not-met", "dose-exception")
    assert determination.route == "medical-director"
