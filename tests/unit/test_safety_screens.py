"""Each label safety screen on the request contract: its boundaries, the unknowns, the units,
and which findings hold a request for a pharmacist. The reviewer is run directly
(SafetyReviewer over a parsed request and a dosing result built by the helpers); the last
tests follow the findings through the whole determination."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from pydantic import TypeAdapter
from rich.console import Console

from priorauth import Determination, PolicySet
from priorauth.engine.determination import Alert
from priorauth.engine.request import parse_request
from priorauth.engine.safety import Review, SafetyReviewer
from priorauth.entrypoints.render import determination_panel
from tests.conftest import example
from tests.unit.safety_helpers import (
    ALT,
    ANC,
    AST,
    BILIRUBIN,
    BSA,
    HEIGHT,
    PLATELETS,
    WEIGHT,
    base,
    codes,
    dosing_for,
    drop_observations,
    not_run,
    review,
    reviewer,
    set_liver,
    set_observation,
    with_capecitabine,
)


def _one(found: Review, code: str) -> Alert:
    alerts = [a for a in found.alerts if a.code == code]
    assert len(alerts) == 1, codes(found)
    return alerts[0]


def test_the_base_request_runs_every_screen_and_finds_nothing() -> None:
    found = review(base())
    assert found.alerts == ()
    assert found.not_run == ()
    assert found.holds is False


def test_without_safety_data_nothing_is_screened() -> None:
    request = parse_request(set_observation(base(), ANC, value=100, unit="/uL"))
    assert SafetyReviewer(None).review(request, dosing_for(request), 1.7) == Review(
        (), (), None, None, False
    )


# Blood counts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "value", "fires"),
    [
        (ANC, 1499, True),
        (ANC, 1500, False),
        (PLATELETS, 99999, True),
        (PLATELETS, 100000, False),
    ],
)
def test_blood_counts_boundary(code: str, value: int, fires: bool) -> None:
    found = review(set_observation(base(), code, value=value, unit="/uL"))
    if fires:
        alert = _one(found, "low-blood-counts")
        assert alert.severity == "contraindication"
        assert alert.facts[f"observations[{code}]"] == value
        assert alert.facts[f"observations[{code}].date"] == "2026-11-25"
        assert "1,500/mm3" in alert.message and "100,000/mm3" in alert.message
        assert found.holds
    else:
        assert found.alerts == ()
        assert not found.holds


@pytest.mark.parametrize(
    ("value", "unit", "fires"),
    [
        (1.499, "10*3/uL", True),
        (1.5, "10*3/uL", False),  # 1,500/mm3 exactly: on the limit, not below it
        (1.5, "10*9/L", False),
        (1.49, "10*9/L", True),
        (1500, "/mm3", False),
        (1500, "cells/uL", False),
    ],
)
def test_a_count_in_other_ucum_units_is_converted(value: float, unit: str, fires: bool) -> None:
    found = review(set_observation(base(), ANC, value=value, unit=unit))
    assert codes(found) == (["low-blood-counts"] if fires else [])
    if fires:
        assert (
            f"Neutrophils (ANC) {value * 1000:,.0f}/mm3, below 1,500/mm3" in found.alerts[0].message
        )


def test_platelets_in_thousands_per_microlitre() -> None:
    found = review(set_observation(base(), PLATELETS, value=99.9, unit="10*3/uL"))
    alert = _one(found, "low-blood-counts")
    assert alert.facts[f"observations[{PLATELETS}]"] == 99900
    assert "Platelets 99,900/mm3, below 100,000/mm3" in alert.message


def test_a_count_without_a_convertible_unit_is_not_read() -> None:
    request = set_observation(base(), ANC, value=900, unit="mg")  # not a count
    found = review(request)
    assert found.alerts == ()
    assert not_run(found)["low-blood-counts"] == (f"observations[{ANC}]",)


def test_the_latest_observation_of_a_code_counts() -> None:
    request = base()
    drop_observations(request, ANC)
    request["observations"] += [
        {"code": ANC, "value": 900, "unit": "/uL", "date": "2026-11-01"},
        {"code": ANC, "value": 2100, "unit": "/uL", "date": "2026-11-20"},
        {"code": ANC, "value": 800, "unit": "/uL"},  # undated: older than any dated one
    ]
    assert review(request).alerts == ()
    request["observations"].append(
        {"code": ANC, "value": 1100, "unit": "/uL", "date": "2026-11-21"}
    )
    alert = _one(review(request), "low-blood-counts")
    assert alert.facts[f"observations[{ANC}]"] == 1100
    assert alert.facts[f"observations[{ANC}].date"] == "2026-11-21"


def test_an_undated_count_alone_is_read_without_a_date() -> None:
    alert = _one(
        review(set_observation(base(), ANC, value=1000, unit="/uL", date=None)), "low-blood-counts"
    )
    assert alert.facts[f"observations[{ANC}]"] == 1000
    assert f"observations[{ANC}].date" not in alert.facts


def test_missing_labs_are_not_a_finding_but_are_reported() -> None:
    found = review(drop_observations(base(), ANC, PLATELETS, AST, ALT, BILIRUBIN))
    assert found.alerts == ()
    assert not found.holds
    missing = not_run(found)
    assert missing["low-blood-counts"] == (f"observations[{ANC}]", f"observations[{PLATELETS}]")
    assert missing["liver-monotherapy-dose"] == (
        f"observations[{AST}]",
        f"observations[{ALT}]",
        f"observations[{BILIRUBIN}]",
    )
    # The combination screen does not apply to the drug given alone.
    assert "liver-with-capecitabine" not in missing


def test_one_low_count_is_a_finding_though_the_other_is_missing() -> None:
    request = drop_observations(base(), PLATELETS)
    found = review(set_observation(request, ANC, value=900, unit="/uL"))
    assert _one(found, "low-blood-counts").facts[f"observations[{PLATELETS}]"] is None
    assert found.holds


def test_one_normal_count_with_the_other_missing_is_not_run() -> None:
    found = review(drop_observations(base(), PLATELETS))
    assert found.alerts == ()
    assert not_run(found)["low-blood-counts"] == (f"observations[{PLATELETS}]",)


# Liver, with capecitabine -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "value", "fires"),
    [
        (AST, 2.6, True),
        (AST, 2.5, False),
        (ALT, 2.51, True),
        (ALT, 2.5, False),
        (BILIRUBIN, 1.01, True),
        (BILIRUBIN, 1.0, False),
    ],
)
def test_liver_with_capecitabine_boundary(code: str, value: float, fires: bool) -> None:
    found = review(set_observation(with_capecitabine(), code, uln_multiple=value))
    assert codes(found) == (["liver-with-capecitabine"] if fires else [])
    assert found.holds is fires
    if fires:
        assert found.alerts[0].facts["service.with[0]"] == "capecitabine"
    # The monotherapy bands do not apply to the combination.
    assert "liver-monotherapy-dose" not in not_run(found)


def test_capecitabine_by_its_brand_name() -> None:
    request = set_observation(base(), BILIRUBIN, uln_multiple=1.2)
    request["service"]["with"] = ["Xeloda"]
    found = review(request)
    assert _one(found, "liver-with-capecitabine").facts["service.with[0]"] == "Xeloda"
    assert found.label_indication is not None
    assert found.label_indication.requested == "with-capecitabine"


def test_liver_with_capecitabine_is_silent_for_monotherapy() -> None:
    found = review(set_observation(base(), AST, uln_multiple=2.6))
    assert codes(found) == ["liver-monotherapy-dose"]
    assert found.alerts[0].severity == "dose-limit"


def test_another_agent_alongside_keeps_the_bands() -> None:
    """The bands hold Ixempra's own dose with any partner but capecitabine (whose combination
    has its own screen): a partner once switched them off silently."""
    request = set_observation(base(), AST, uln_multiple=5.0)
    request["service"]["with"] = ["trastuzumab"]
    found = review(request)
    assert codes(found) == ["liver-monotherapy-dose"]
    assert found.holds


# Liver, monotherapy bands -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("liver", "dose", "severity", "request_type"),
    [
        ((2.5, 2.5, 1.0), 40, None, "initial"),  # 40 band, at its limits
        ((5.0, 1.0, 0.8), 32, None, "initial"),  # 32 band (our reading: AST up, bilirubin normal)
        ((5.0, 1.0, 0.8), 32.1, "dose-limit", "initial"),
        ((2.0, 2.0, 1.3), 40, "dose-limit", "initial"),  # 32 band: bilirubin up, AST normal
        ((10.0, 10.0, 1.5), 32, None, "initial"),  # 32 band, at its limits
        ((1.0, 1.0, 1.51), 20, None, "initial"),  # 20-30 band
        ((1.0, 1.0, 3.0), 20.5, "dose-limit", "initial"),  # starting dose 20
        ((1.0, 1.0, 3.0), 30, None, "continuation"),  # up to 30 in later cycles
        ((1.0, 1.0, 3.0), 30.5, "dose-limit", "continuation"),
        ((10.01, 1.0, 0.5), 16, "contraindication", "initial"),  # not recommended
        ((1.0, 1.0, 3.01), 16, "contraindication", "initial"),
        ((12.0, None, None), 16, "contraindication", "initial"),  # known enough to say
    ],
)
def test_hepatic_bands(
    liver: tuple[float | None, float | None, float | None],
    dose: float,
    severity: str | None,
    request_type: str,
) -> None:
    request = set_liver(base(dose), *liver)
    request["type"] = request_type
    if request_type == "continuation":
        request["prior_authorization_id"] = "PA-2025-000001"
    found = review(request)
    if severity is None:
        assert found.alerts == ()
        assert "liver-monotherapy-dose" not in not_run(found)
    else:
        assert [(a.code, a.severity) for a in found.alerts] == [
            ("liver-monotherapy-dose", severity)
        ]
        assert found.holds


def test_hepatic_dose_limit_message_names_the_allowed_dose() -> None:
    alert = _one(review(set_liver(base(40), 5.0, 1.0, 0.8)), "liver-monotherapy-dose")
    assert alert.message.startswith(
        "AST 5, ALT 1, bilirubin 0.8 x ULN (AST and ALT at most 10 x ULN and bilirubin at "
        "most 1.5 x ULN): the label's starting dose for Ixempra alone is 32 mg/m2; 40 mg/m2 is "
        "requested."
    )
    assert alert.facts["dose_mg_per_m2"] == 40
    assert alert.facts[f"observations[{AST}]"] == 5.0


def test_hepatic_band_with_a_higher_later_dose_says_so() -> None:
    alert = _one(review(set_liver(base(24), 1.0, 1.0, 2.0)), "liver-monotherapy-dose")
    assert "20 mg/m2 to start, up to 30 mg/m2 in later cycles if tolerated" in alert.message


def test_not_recommended_band_message_shows_the_unknown_values() -> None:
    alert = _one(review(set_liver(base(16), 12.0, None, None)), "liver-monotherapy-dose")
    assert alert.severity == "contraindication"
    assert alert.message.startswith("AST 12, ALT unknown, bilirubin unknown x ULN (AST or ALT")
    assert alert.facts[f"observations[{ALT}]"] is None
    assert "dose_mg_per_m2" not in alert.facts


def test_hepatic_band_unknown_is_not_run() -> None:
    found = review(set_liver(base(), 1.0, None, 0.5))
    assert found.alerts == ()
    assert not_run(found)["liver-monotherapy-dose"] == (f"observations[{ALT}]",)


def test_a_liver_test_given_as_a_value_without_its_uln_multiple_is_not_read() -> None:
    request = set_liver(base(), 1.0, 1.0, None)
    set_observation(request, BILIRUBIN, value=0.6, unit="mg/dL")  # no multiple of the ULN
    assert not_run(review(request))["liver-monotherapy-dose"] == (f"observations[{BILIRUBIN}]",)


def test_hepatic_band_without_a_dose_is_not_run() -> None:
    found = review(set_liver(base(None), 5.0, 1.0, 0.8))
    assert found.alerts == ()
    assert not_run(found)["liver-monotherapy-dose"] == ("service.dose",)


@pytest.mark.parametrize(
    ("mg", "bsa", "fires", "compared"),
    [
        (64.0, 1.6, False, 40.0),
        (64.08, 1.6, True, 40.1),  # 40.05 rounds half up to 40.1, above the first band's 40
        (64.07, 1.6, False, 40.0),
    ],
)
def test_a_dose_in_mg_is_compared_in_mg_per_m2_rounded_half_up(
    mg: float, bsa: float, fires: bool, compared: float
) -> None:
    request = set_observation(base(mg, "mg"), BSA, value=bsa, unit="m2")
    request["medications"] = ["ketoconazole"]  # its alert shows the dose compared
    parsed = parse_request(request)
    dosing = dosing_for(parsed)
    assert (dosing.mg_per_dose, dosing.bsa_m2) == (mg, bsa)
    found = reviewer().review(parsed, dosing, bsa)
    assert _one(found, "strong-cyp3a4-inhibitor").facts["dose_mg_per_m2"] == compared
    assert ("liver-monotherapy-dose" in codes(found)) is fires


def test_a_dose_in_mg_without_a_body_surface_area_is_not_run() -> None:
    request = drop_observations(base(64, "mg"), HEIGHT, WEIGHT)
    set_liver(request, 5.0, 1.0, 0.8)
    found = review(request)
    assert found.alerts == ()
    assert not_run(found)["liver-monotherapy-dose"] == (
        f"observations[{BSA}]",
        f"observations[{HEIGHT}]",
        f"observations[{WEIGHT}]",
    )


def test_a_dose_in_micrograms_per_m2_is_read_in_mg() -> None:
    alert = _one(review(set_liver(base(40000, "ug/m2"), 5.0, 1.0, 0.8)), "liver-monotherapy-dose")
    assert alert.facts["dose_mg_per_m2"] == 40


# Cremophor ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allergy", "severity"),
    [
        ({"name": "Cremophor EL", "severity": "severe"}, "contraindication"),
        ({"name": "POLYOXYL 35 castor oil", "severity": "severe"}, "contraindication"),
        ({"name": "cremophor el (paclitaxel vehicle)", "severity": "severe"}, "contraindication"),
        ({"name": "Cremophor EL", "severity": "moderate"}, "warning"),
        ({"name": "Cremophor EL"}, "warning"),
        ({"name": "penicillin", "severity": "severe"}, None),
    ],
)
def test_cremophor(allergy: dict[str, str], severity: str | None) -> None:
    request = base()
    request["allergies"] = [allergy]
    found = review(request)
    assert [a.severity for a in found.alerts] == ([severity] if severity else [])
    assert found.holds is (severity == "contraindication")


def test_an_allergy_message_and_facts() -> None:
    request = base()
    request["allergies"] = [{"name": "penicillin"}, {"name": "Kolliphor EL"}]
    alert = _one(review(request), "cremophor-allergy-other")
    assert alert.message.startswith(
        "Allergy to Kolliphor EL (severity unspecified), a product made with Cremophor EL"
    )
    assert alert.facts == {"allergies[1].name": "Kolliphor EL", "allergies[1].severity": None}


def test_no_allergies_listed_is_not_run() -> None:
    request = base()
    request["allergies"] = []
    missing = not_run(review(request))
    assert missing["cremophor-hypersensitivity"] == ("allergies",)
    assert missing["cremophor-allergy-other"] == ("allergies",)


# Pregnancy and breastfeeding ----------------------------------------------------------------


def test_pregnancy_is_held_for_review() -> None:
    request = base()
    request["patient"]["pregnant"] = True
    found = review(request)
    alert = _one(found, "pregnancy")
    # The US label puts embryo-fetal toxicity under Warnings and Precautions, not
    # Contraindications; a pharmacist still looks before an approval.
    assert alert.severity == "review"
    assert "Warnings and Precautions" in alert.source
    assert alert.facts == {"patient.pregnant": True}
    assert found.holds


def test_breastfeeding_is_a_warning_that_does_not_hold() -> None:
    request = base()
    request["patient"]["breastfeeding"] = True
    found = review(request)
    assert _one(found, "breastfeeding").severity == "warning"
    assert not found.holds


@pytest.mark.parametrize("sex", ["female", "other", "unknown", None])
def test_pregnancy_unknown_is_not_run(sex: str | None) -> None:
    request = base()
    del request["patient"]["pregnant"]
    request["patient"]["sex"] = sex
    assert not_run(review(request))["pregnancy"] == ("patient.pregnant",)


def test_a_male_patient_is_not_screened_for_pregnancy_or_breastfeeding() -> None:
    request = base()
    request["patient"] = {"birth_date": "1960-01-01", "sex": "male"}
    found = review(request)
    assert found.alerts == ()
    assert not {"pregnancy", "breastfeeding"} & set(not_run(found))


# CYP3A4 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("medication", "dose", "severity"),
    [
        ("ketoconazole", 40, "dose-limit"),
        ("KetoConazole", 20.1, "dose-limit"),
        ({"name": " clarithromycin "}, 20, "warning"),
        ("itraconazole", 16, "warning"),
        ("rifampicin", 40, "warning"),  # strong inducer, by another name
        ("rifabutin", 40, "warning"),  # moderate inducer the label names
        ("ondansetron", 40, None),
    ],
)
def test_cyp3a4(medication: Any, dose: float, severity: str | None) -> None:
    request = base(dose)
    request["medications"] = [medication]
    found = review(request)
    assert [a.severity for a in found.alerts] == ([severity] if severity else [])
    assert found.holds is (severity == "dose-limit")


@pytest.mark.parametrize(
    ("name", "fires"),
    [
        ("Ketoconazole 200 MG Oral Tablet", True),  # a record's full drug name
        ("lopinavir/ritonavir", True),
        ("ritonavir-boosted darunavir", True),
        ("ketoconazoles", False),  # not the word
        ("levoketoconazole", True),  # listed in its own right
    ],
)
def test_a_listed_drug_is_found_as_whole_words_in_a_drug_name(name: str, fires: bool) -> None:
    request = base(40)
    request["medications"] = [{"name": name, "status": "active"}]
    found = review(request)
    assert codes(found) == (["strong-cyp3a4-inhibitor"] if fires else [])
    if fires:
        assert found.alerts[0].message.startswith(f"{name} is a strong CYP3A4 inhibitor.")
        assert found.alerts[0].facts["medications[0].name"] == name


def test_cyp3a4_message_says_what_dose_the_label_allows() -> None:
    request = base(40)
    request["medications"] = ["ketoconazole"]
    alert = _one(review(request), "strong-cyp3a4-inhibitor")
    assert "ketoconazole is a strong CYP3A4 inhibitor" in alert.message
    assert "at most 20 mg/m2" in alert.message and "40 mg/m2 is requested" in alert.message
    assert alert.facts == {"medications[0].name": "ketoconazole", "dose_mg_per_m2": 40}


def test_cyp3a4_inhibitor_with_the_dose_unknown_is_a_warning() -> None:
    request = base(None)
    request["medications"] = ["ketoconazole"]
    alert = _one(review(request), "strong-cyp3a4-inhibitor")
    assert alert.severity == "warning"
    assert "an unknown dose is requested" in alert.message
    assert alert.facts["dose_mg_per_m2"] is None


@pytest.mark.parametrize(
    ("medication", "screened"),
    [
        ({"name": "ketoconazole", "status": "active"}, True),
        ({"name": "ketoconazole"}, True),  # no status: taken now
        ({"name": "ketoconazole", "status": "intended"}, True),
        ({"name": "ketoconazole", "status": "on-hold"}, True),
        ({"name": "ketoconazole", "status": "active", "end_date": "2026-12-01"}, True),
        ({"name": "ketoconazole", "status": "active", "end_date": "2026-12-20"}, True),
        ({"name": "ketoconazole", "status": "completed", "end_date": "2026-06-30"}, False),
        ({"name": "ketoconazole", "status": "completed"}, False),
        ({"name": "ketoconazole", "status": "stopped"}, False),
        ({"name": "ketoconazole", "end_date": "2026-11-30"}, False),  # ended before the service
    ],
)
def test_only_medications_taken_now_interact(medication: dict[str, Any], screened: bool) -> None:
    """The service starts 2026-12-01: a completed prior therapy is not an interaction."""
    request = base(40)
    request["medications"] = [{"name": "ondansetron", "status": "active"}, medication]
    found = review(request)
    assert codes(found) == (["strong-cyp3a4-inhibitor"] if screened else [])
    if screened:
        assert found.alerts[0].facts["medications[1].name"] == "ketoconazole"


def test_the_service_date_decides_which_medications_have_ended() -> None:
    request = base(40)
    request["medications"] = [{"name": "ketoconazole", "end_date": "2026-11-30"}]
    assert review(request).alerts == ()
    later = review(request, service_date=dt.date(2026, 11, 30))
    assert codes(later) == ["strong-cyp3a4-inhibitor"]
    del request["service"]["start_date"]  # then the day the request was received, 2026-11-25
    assert codes(review(request)) == ["strong-cyp3a4-inhibitor"]


def test_only_past_medications_means_the_current_list_was_not_given() -> None:
    request = base(40)
    request["medications"] = [{"name": "ketoconazole", "status": "completed"}]
    missing = not_run(review(request))
    assert missing["strong-cyp3a4-inhibitor"] == ("medications",)
    assert missing["cyp3a4-inducer"] == ("medications",)


def test_an_agent_given_alongside_is_screened_too() -> None:
    request = base(40)
    request["medications"] = []
    request["service"]["with"] = ["ritonavir"]
    found = review(request)
    alert = _one(found, "strong-cyp3a4-inhibitor")
    assert alert.facts == {"service.with[0]": "ritonavir", "dose_mg_per_m2": 40}
    # The patient's own list was not given: the inducer screen could not look at it.
    assert not_run(found)["cyp3a4-inducer"] == ("medications",)


def test_no_medications_listed_is_not_run() -> None:
    request = base()
    request["medications"] = []
    missing = not_run(review(request))
    assert missing["strong-cyp3a4-inhibitor"] == ("medications",)
    assert missing["cyp3a4-inducer"] == ("medications",)


def test_several_listed_drugs_are_named_together() -> None:
    request = base(40)
    request["medications"] = ["ketoconazole", "ondansetron", "ritonavir"]
    alert = _one(review(request), "strong-cyp3a4-inhibitor")
    assert alert.message.startswith("ketoconazole, ritonavir is a strong CYP3A4 inhibitor.")
    assert set(alert.facts) == {"medications[0].name", "medications[2].name", "dose_mg_per_m2"}


# Neuropathy and diabetes --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "screens"),
    [
        ("G62.9", ["peripheral-neuropathy"]),
        ("G63", ["peripheral-neuropathy"]),
        ("E11.9", ["diabetes"]),
        ("E11.42", ["peripheral-neuropathy", "diabetes"]),
        ("e1142", ["peripheral-neuropathy", "diabetes"]),  # the contract writes it E11.42
        ("I10", []),
    ],
)
def test_neuropathy_and_diabetes(code: str, screens: list[str]) -> None:
    request = base()
    request["conditions"].append(code)
    found = review(request)
    assert sorted(codes(found)) == sorted(screens)
    assert all(a.severity == "warning" for a in found.alerts)
    assert not found.holds
    for alert in found.alerts:
        assert alert.facts == {"conditions[2].code": alert.message.split(":")[0].split()[-1]}


def test_conditions_in_other_systems_are_not_read_as_icd10() -> None:
    request = base()
    request["conditions"] = [{"code": "302226006", "system": "snomed"}]
    assert not_run(review(request))["diabetes"] == ("conditions",)


# Order and the alert contract ---------------------------------------------------------------


def test_contraindications_come_first() -> None:
    request = base(40)
    request["conditions"].append("E11.9")
    request["medications"] = ["ketoconazole"]
    request["patient"]["pregnant"] = True
    request["allergies"] = [{"name": "Taxol", "severity": "severe"}]
    found = review(request)
    assert [a.severity for a in found.alerts] == [
        "contraindication",
        "dose-limit",
        "review",
        "warning",
    ]
    assert codes(found) == [
        "cremophor-hypersensitivity",
        "strong-cyp3a4-inhibitor",
        "pregnancy",
        "diabetes",
    ]


def test_every_alert_carries_the_whole_contract() -> None:
    request = with_capecitabine(40)
    set_observation(request, ANC, value=1000, unit="/uL")
    set_observation(request, AST, uln_multiple=3)
    set_observation(request, BSA, value=2.5, unit="m2")
    request["medications"] = ["ketoconazole", "carbamazepine"]
    request["allergies"] = [{"name": "Cremophor EL", "severity": "severe"}]
    request["patient"].update(pregnant=True, breastfeeding=True)
    request["conditions"] += ["G62.9", "E10.9"]
    found = review(request)
    assert codes(found) == [
        "low-blood-counts",
        "liver-with-capecitabine",
        "cremophor-hypersensitivity",
        "strong-cyp3a4-inhibitor",
        "pregnancy",
        "cyp3a4-inducer",
        "breastfeeding",
        "peripheral-neuropathy",
        "diabetes",
    ]
    adapter = TypeAdapter(Alert)
    for alert in found.alerts:
        assert alert.code and alert.message and alert.source and alert.facts
        assert alert.severity in {"contraindication", "dose-limit", "review", "warning"}
        assert adapter.validate_python(adapter.dump_python(alert, mode="json")) == alert
    assert found.not_run == ()


def test_the_example_safety_review_is_held_with_both_findings() -> None:
    """examples/10 in the old contract's words: ANC 1,200/mm3 and ketoconazole at 40 mg/m2."""
    request = base(40)
    request["observations"] = [
        {"code": HEIGHT, "value": 162, "unit": "cm"},
        {"code": WEIGHT, "value": 61, "unit": "kg"},
        {"code": ANC, "value": 1200, "unit": "/uL", "date": "2026-11-23"},
        {"code": PLATELETS, "value": 185000, "unit": "/uL", "date": "2026-11-23"},
        {"code": AST, "uln_multiple": 1.2, "date": "2026-11-23"},
        {"code": ALT, "uln_multiple": 0.9, "date": "2026-11-23"},
        {"code": BILIRUBIN, "uln_multiple": 0.7, "date": "2026-11-23"},
    ]
    request["medications"] = [
        {"name": "ketoconazole", "status": "active"},
        {"name": "ondansetron", "status": "active"},
    ]
    request["allergies"] = [{"name": "penicillin", "severity": "moderate"}]
    found = review(request)
    assert found.holds
    assert codes(found) == ["low-blood-counts", "strong-cyp3a4-inhibitor"]
    low, inhibitor = found.alerts
    assert low.message.startswith("Neutrophils (ANC) 1,200/mm3, below 1,500/mm3. The label")
    assert low.source.startswith("Prescribing information section 4, Contraindications")
    assert inhibitor.severity == "dose-limit"
    assert "at most 20 mg/m2" in inhibitor.message


# Through the whole determination: how findings route a request ------------------------------


def test_a_holding_finding_pends_an_approvable_request_for_the_pharmacist(
    policies: PolicySet,
) -> None:
    assert policies.evaluate(base()).outcome == "approved"
    request = base(40)
    request["medications"] = ["ketoconazole"]
    d = policies.evaluate(request)
    assert (d.outcome, d.reasons, d.route) == ("pended", ("safety-review",), "pharmacist")
    assert d.authorization is None
    assert [a.code for a in d.alerts] == ["strong-cyp3a4-inhibitor"]


def test_warnings_ride_along_on_an_approval(policies: PolicySet) -> None:
    request = base()
    request["patient"]["breastfeeding"] = True
    request["conditions"].append("E11.9")
    d = policies.evaluate(request)
    assert d.outcome == "approved" and d.authorization is not None
    assert [a.code for a in d.alerts] == ["breastfeeding", "diabetes"]


def test_missing_labs_do_not_pend_and_are_listed(policies: PolicySet) -> None:
    d = policies.evaluate(drop_observations(base(), ANC, PLATELETS))
    assert d.outcome == "approved"
    assert {s.screen: s.fields for s in d.screens_not_run} == {
        "low-blood-counts": (f"observations[{ANC}]", f"observations[{PLATELETS}]")
    }


def test_findings_ride_along_on_a_request_pended_for_another_reason(policies: PolicySet) -> None:
    request = set_observation(base(), ANC, value=800, unit="/uL")
    request["patient"]["birth_date"] = "2010-01-01"  # 16 on the service date
    d = policies.evaluate(request)
    assert d.reasons == ("criteria-not-met",)
    assert d.route == "medical-director"
    assert [a.code for a in d.alerts] == ["low-blood-counts"]


def test_the_example_safety_review_end_to_end(policies: PolicySet) -> None:
    d = policies.evaluate(example("10-pended-safety-review.json"))
    assert (d.outcome, d.reasons, d.route) == ("pended", ("safety-review",), "pharmacist")
    assert [(a.code, a.severity) for a in d.alerts] == [
        ("low-blood-counts", "contraindication"),
        ("strong-cyp3a4-inhibitor", "dose-limit"),
    ]
    assert d.screens_not_run == ()
    assert d.label_indication is not None and d.label_indication.fits == "monotherapy"
    assert d.guideline is not None
    assert (d.guideline.her2, d.guideline.hormone_receptor) == ("negative", "positive")
    assert d.policy is not None and d.policy.safety_hash is not None
    assert Determination.model_validate(d.model_dump()) == d


def test_the_cli_panel_puts_contraindications_first(policies: PolicySet) -> None:
    d = policies.evaluate(example("10-pended-safety-review.json"))
    console = Console(record=True, width=1000, color_system=None)
    console.print(determination_panel(d))
    text = console.export_text()
    first, second = text.index("CONTRAINDICATION"), text.index("DOSE-LIMIT")
    assert first < second < text.index("Criteria")
    # A reviewer can tell what is wrong, which rule says so and what dose the label allows.
    assert "Neutrophils (ANC) 1,200/mm3, below 1,500/mm3" in text
    assert "ketoconazole is a strong CYP3A4 inhibitor" in text
    assert "at most 20 mg/m2" in text
    assert "source: Prescribing information section 4, Contraindications" in text


def test_a_weight_in_pounds_gives_the_same_findings(policies: PolicySet) -> None:
    """The dose in mg is compared per m2 of the BSA the dosing step works out from height and
    weight, in whatever units they were given."""
    in_kg = set_liver(base(64, "mg"), 5.0, 1.0, 0.8)
    in_pounds = set_observation(copy.deepcopy(in_kg), WEIGHT, value=149.91, unit="[lb_av]")
    kg, pounds = policies.evaluate(in_kg), policies.evaluate(in_pounds)
    assert pounds.dosing is not None and pounds.dosing.bsa_m2 == 1.77
    assert [a.code for a in pounds.alerts] == ["liver-monotherapy-dose"]
    assert pounds.alerts[0].facts["dose_mg_per_m2"] == 36.2
    assert pounds.alerts == kg.alerts
