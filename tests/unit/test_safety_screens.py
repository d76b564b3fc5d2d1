"""Each label safety screen, its boundaries, the unknowns, and how findings route a request."""

from __future__ import annotations

from typing import Any

import pytest
from rich.console import Console

from priorauth import Determination, PolicySet
from priorauth.engine.determination import Alert
from priorauth.entrypoints.render import determination_panel
from tests.conftest import example
from tests.unit.safety_helpers import base, with_capecitabine


def _alerts(d: Determination, code: str) -> list[Alert]:
    return [a for a in d.alerts if a.code == code]


def _one(d: Determination, code: str) -> Alert:
    found = _alerts(d, code)
    assert len(found) == 1, [a.code for a in d.alerts]
    return found[0]


def _not_run(d: Determination) -> dict[str, tuple[str, ...]]:
    return {s.screen: s.fields for s in d.screens_not_run}


def test_the_base_request_is_approved_with_every_screen_run(policies: PolicySet) -> None:
    d = policies.evaluate(base())
    assert d.outcome == "approved"
    assert d.alerts == ()
    assert d.screens_not_run == ()


# Blood counts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lab", "value", "fires"),
    [
        ("anc_per_mm3", 1499, True),
        ("anc_per_mm3", 1500, False),
        ("platelets_per_mm3", 99999, True),
        ("platelets_per_mm3", 100000, False),
    ],
)
def test_blood_counts_boundary(policies: PolicySet, lab: str, value: int, fires: bool) -> None:
    request = base()
    request["labs"][lab] = value
    d = policies.evaluate(request)
    if fires:
        alert = _one(d, "low-blood-counts")
        assert alert.severity == "contraindication"
        assert alert.facts[f"labs.{lab}"] == value
        assert "1,500/mm3" in alert.message and "100,000/mm3" in alert.message
        assert d.outcome == "pended"
        assert d.reasons == ("safety-review",)
        assert d.route == "pharmacist"
        assert d.authorization is None
    else:
        assert d.outcome == "approved"
        assert not _alerts(d, "low-blood-counts")


def test_missing_labs_are_not_a_finding_but_are_reported(policies: PolicySet) -> None:
    request = base()
    del request["labs"]
    d = policies.evaluate(request)
    assert d.outcome == "approved"
    assert d.alerts == ()
    not_run = _not_run(d)
    assert not_run["low-blood-counts"] == ("labs.anc_per_mm3", "labs.platelets_per_mm3")
    assert "liver-monotherapy-dose" in not_run


def test_one_low_count_is_a_finding_though_the_other_is_missing(policies: PolicySet) -> None:
    request = base()
    request["labs"] = {"anc_per_mm3": 900}
    d = policies.evaluate(request)
    assert _one(d, "low-blood-counts").facts["labs.platelets_per_mm3"] is None
    assert d.reasons == ("safety-review",)


def test_one_normal_count_with_the_other_missing_is_not_run(policies: PolicySet) -> None:
    request = base()
    request["labs"] = {"anc_per_mm3": 2500}
    d = policies.evaluate(request)
    assert d.outcome == "approved"
    assert _not_run(d)["low-blood-counts"] == ("labs.platelets_per_mm3",)


# Liver, with capecitabine -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("lab", "value", "fires"),
    [
        ("ast_uln_ratio", 2.6, True),
        ("ast_uln_ratio", 2.5, False),
        ("alt_uln_ratio", 2.51, True),
        ("alt_uln_ratio", 2.5, False),
        ("bilirubin_uln_ratio", 1.01, True),
        ("bilirubin_uln_ratio", 1.0, False),
    ],
)
def test_liver_with_capecitabine_boundary(
    policies: PolicySet, lab: str, value: float, fires: bool
) -> None:
    request = with_capecitabine()
    request["labs"][lab] = value
    d = policies.evaluate(request)
    assert bool(_alerts(d, "liver-with-capecitabine")) is fires
    assert d.outcome == ("pended" if fires else "approved")
    # The monotherapy bands do not apply to the combination.
    assert not _alerts(d, "liver-monotherapy-dose")


def test_capecitabine_by_its_brand_name(policies: PolicySet) -> None:
    request = base()
    request["regimen"]["with"] = ["Xeloda"]
    request["labs"]["bilirubin_uln_ratio"] = 1.2
    d = policies.evaluate(request)
    assert _one(d, "liver-with-capecitabine").facts["regimen.with"] == "Xeloda"
    assert d.label_indication is not None
    assert d.label_indication.requested == "with-capecitabine"


def test_liver_with_capecitabine_is_silent_for_monotherapy(policies: PolicySet) -> None:
    request = base()
    request["labs"]["ast_uln_ratio"] = 2.6
    d = policies.evaluate(request)
    assert not _alerts(d, "liver-with-capecitabine")
    assert _one(d, "liver-monotherapy-dose").severity == "dose-limit"


# Liver, monotherapy bands -----------------------------------------------------------------


def _liver(ast: float | None, alt: float | None, bili: float | None) -> dict[str, Any]:
    return {
        "anc_per_mm3": 3000,
        "platelets_per_mm3": 200000,
        "ast_uln_ratio": ast,
        "alt_uln_ratio": alt,
        "bilirubin_uln_ratio": bili,
    }


@pytest.mark.parametrize(
    ("labs", "dose", "kind", "request_type"),
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
    policies: PolicySet,
    labs: tuple[float | None, float | None, float | None],
    dose: float,
    kind: str | None,
    request_type: str,
) -> None:
    request = base(dose=dose)
    request["labs"] = _liver(*labs)
    request["type"] = request_type
    if request_type == "continuation":
        request["prior_authorization_id"] = "PA-2025-000001"
    d = policies.evaluate(request)
    found = _alerts(d, "liver-monotherapy-dose")
    if kind is None:
        assert not found
        assert d.outcome == "approved"
    else:
        assert [a.severity for a in found] == [kind]
        assert d.reasons == ("safety-review",)


def test_hepatic_dose_limit_message_names_the_allowed_dose(policies: PolicySet) -> None:
    request = base(dose=40)
    request["labs"] = _liver(5.0, 1.0, 0.8)
    alert = _one(policies.evaluate(request), "liver-monotherapy-dose")
    assert "32 mg/m2" in alert.message and "40 mg/m2 is requested" in alert.message
    assert alert.facts["dosing.dose_mg_per_m2"] == 40


def test_hepatic_band_unknown_is_not_run(policies: PolicySet) -> None:
    request = base()
    request["labs"] = _liver(1.0, None, 0.5)
    d = policies.evaluate(request)
    assert d.outcome == "approved"
    assert _not_run(d)["liver-monotherapy-dose"] == ("labs.alt_uln_ratio",)


# Cremophor --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allergy", "severity"),
    [
        ({"name": "Cremophor EL", "severity": "severe"}, "contraindication"),
        ({"name": "POLYOXYL 35 castor oil", "severity": "severe"}, "contraindication"),
        ({"name": "cremophor el (paclitaxel vehicle)", "severity": "severe"}, "contraindication"),
        ({"name": "Cremophor EL", "severity": "moderate"}, "warning"),
        ({"name": "Cremophor EL"}, "warning"),
    ],
)
def test_cremophor(policies: PolicySet, allergy: dict[str, str], severity: str) -> None:
    request = base()
    request["allergies"] = [allergy]
    d = policies.evaluate(request)
    assert [a.severity for a in d.alerts] == [severity]
    assert d.outcome == ("pended" if severity == "contraindication" else "approved")


def test_no_allergies_listed_is_not_run(policies: PolicySet) -> None:
    request = base()
    request["allergies"] = []
    assert "cremophor-hypersensitivity" in _not_run(policies.evaluate(request))


# Pregnancy and breastfeeding --------------------------------------------------------------


def test_pregnancy_is_a_contraindication(policies: PolicySet) -> None:
    request = base()
    request["patient"]["pregnant"] = True
    d = policies.evaluate(request)
    assert _one(d, "pregnancy").severity == "contraindication"
    assert d.reasons == ("safety-review",)


def test_breastfeeding_is_a_warning_on_an_approval(policies: PolicySet) -> None:
    request = base()
    request["patient"]["breastfeeding"] = True
    d = policies.evaluate(request)
    assert _one(d, "breastfeeding").severity == "warning"
    assert d.outcome == "approved"
    assert d.authorization is not None


def test_pregnancy_unknown_is_not_run_except_for_a_male_patient(policies: PolicySet) -> None:
    request = base()
    del request["patient"]["pregnant"]
    assert _not_run(policies.evaluate(request))["pregnancy"] == ("patient.pregnant",)
    request["patient"]["sex"] = "male"
    assert "pregnancy" not in _not_run(policies.evaluate(request))


# CYP3A4 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("medication", "dose", "severity"),
    [
        ("ketoconazole", 40, "dose-limit"),
        ("KetoConazole", 20.1, "dose-limit"),
        ({"name": " clarithromycin "}, 20, "warning"),
        ("itraconazole", 16, "warning"),
        ("rifampicin", 40, "warning"),  # strong inducer, by another name
        ("rifabutin", 40, None),  # moderate inducer: listed, not screened
        ("ondansetron", 40, None),
    ],
)
def test_cyp3a4(policies: PolicySet, medication: Any, dose: float, severity: str | None) -> None:
    request = base(dose=dose)
    request["medications"] = [medication]
    d = policies.evaluate(request)
    assert [a.severity for a in d.alerts] == ([severity] if severity else [])
    assert d.outcome == ("pended" if severity == "dose-limit" else "approved")


def test_cyp3a4_message_says_what_dose_the_label_allows(policies: PolicySet) -> None:
    request = base(dose=40)
    request["medications"] = ["ketoconazole"]
    alert = _one(policies.evaluate(request), "strong-cyp3a4-inhibitor")
    assert "ketoconazole" in alert.message and "20 mg/m2" in alert.message
    assert "40 mg/m2 is requested" in alert.message
    assert alert.facts == {"medications[0].name": "ketoconazole", "dosing.dose_mg_per_m2": 40}


def test_no_medications_listed_is_not_run(policies: PolicySet) -> None:
    request = base()
    request["medications"] = []
    not_run = _not_run(policies.evaluate(request))
    assert not_run["strong-cyp3a4-inhibitor"] == ("medications",)
    assert not_run["strong-cyp3a4-inducer"] == ("medications",)


# Body surface area ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bsa", "dose", "unit", "fires"),
    [
        (2.4, 40, "mg/m2", True),  # 96 mg
        (2.4, 88, "mg", False),
        (2.4, 88.5, "mg", True),
        (2.2, 40, "mg/m2", False),  # 88 mg, BSA not above 2.2
        (2.21, 39.9, "mg/m2", True),  # 88.2 mg
    ],
)
def test_bsa_cap(policies: PolicySet, bsa: float, dose: float, unit: str, fires: bool) -> None:
    request = base(dose=dose, dose_unit=unit)
    request["patient"]["bsa_m2"] = bsa
    d = policies.evaluate(request)
    found = _alerts(d, "bsa-above-cap")
    assert bool(found) is fires
    if fires:
        assert found[0].severity == "warning" and "88 mg" in found[0].message


def test_bsa_unknown_is_not_run(policies: PolicySet) -> None:
    request = base()
    del request["patient"]["height_cm"]
    assert "bsa-above-cap" in _not_run(policies.evaluate(request))


# Neuropathy and diabetes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "screens"),
    [
        ("G62.9", ["peripheral-neuropathy"]),
        ("G63", ["peripheral-neuropathy"]),
        ("E11.9", ["diabetes"]),
        ("E11.42", ["peripheral-neuropathy", "diabetes"]),
        ("I10", []),
    ],
)
def test_neuropathy_and_diabetes(policies: PolicySet, code: str, screens: list[str]) -> None:
    request = base()
    request["diagnoses"].append(code)
    d = policies.evaluate(request)
    assert sorted(a.code for a in d.alerts) == sorted(screens)
    assert all(a.severity == "warning" for a in d.alerts)
    assert d.outcome == "approved"


# Routing and the alert contract -----------------------------------------------------------


def test_findings_ride_along_on_a_request_pended_for_another_reason(policies: PolicySet) -> None:
    request = base()
    request["patient"]["birth_date"] = "2010-01-01"  # 16 on the service date
    request["labs"]["anc_per_mm3"] = 800
    d = policies.evaluate(request)
    assert d.reasons == ("criteria-not-met",)
    assert d.route == "medical-director"
    assert _one(d, "low-blood-counts").severity == "contraindication"


def test_contraindications_come_first(policies: PolicySet) -> None:
    request = base(dose=40)
    request["diagnoses"].append("E11.9")
    request["medications"] = ["ketoconazole"]
    request["patient"]["pregnant"] = True
    d = policies.evaluate(request)
    assert [a.severity for a in d.alerts] == ["contraindication", "dose-limit", "warning"]
    assert "pregnancy (contraindication)" in d.summary


def test_every_alert_carries_the_whole_contract(policies: PolicySet) -> None:
    request = with_capecitabine(dose=40)
    request["labs"].update(anc_per_mm3=1000, ast_uln_ratio=3)
    request["medications"] = ["ketoconazole", "carbamazepine"]
    request["allergies"] = [{"name": "Cremophor EL", "severity": "severe"}]
    request["patient"].update(pregnant=True, breastfeeding=True, bsa_m2=2.5)
    request["diagnoses"] += ["G62.9", "E10.9"]
    d = policies.evaluate(request)
    assert len(d.alerts) == 10
    for alert in d.alerts:
        assert alert.code and alert.message and alert.source and alert.facts
        assert alert.severity in {"contraindication", "dose-limit", "warning"}
    again = Determination.model_validate(d.model_dump())
    assert again == d


def test_safety_review_is_routed_to_the_pharmacist(policies: PolicySet) -> None:
    request = base()
    request["medications"] = ["ketoconazole"]
    d = policies.evaluate(request)
    assert (d.outcome, d.reasons, d.route) == ("pended", ("safety-review",), "pharmacist")


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
    assert "source: Prescribing information: Contraindications" in text
