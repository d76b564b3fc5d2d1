"""Whole PAS bundles for each shipped policy, decided by the engine: what each policy reads
arrives from its FHIR elements (an induction on given dates, days 1 and 8 of a cycle, a dose
per kg with a weight in pounds, a tumour's histology, a coded test result, medication history,
answers of a DTR form, a schedule in months). The people are invented."""

from __future__ import annotations

from typing import Any

from priorauth import PolicySet
from priorauth.adapters.fhir import Submission, map_bundle, submit
from priorauth.engine.determination import Determination
from tests.unit.test_fhir_support import CREATED, lab, pas_bundle, quantity, statement

SNOMED = "http://snomed.info/sct"


def decided(bundle: dict[str, Any], policies: PolicySet) -> Determination:
    answer = submit(bundle, policies=policies, created=CREATED)
    assert answer.status == 200, answer.body
    (determination,) = answer.determinations
    assert determination is not None
    return determination


def infliximab_induction() -> dict[str, Any]:
    """Crohn's disease, a preferred biosimilar at 5 mg/kg at weeks 0, 2 and 6 then every
    8 weeks, a weight in pounds, a negative interferon-gamma release assay (SNOMED CT), a
    corticosteroid tried and an immunomodulator taken now, a gastroenterologist."""
    dose = {"doseQuantity": quantity(5, "mg/kg")}
    route = {"coding": [{"system": SNOMED, "code": "47625008"}]}
    return pas_bundle(
        claim_id="PAS-2026-0301",
        created="2026-03-02T10:00:00Z",
        hcpcs="Q5103",
        birth_date="1994-07-18",
        gender="male",
        specialty="207RG0100X",
        conditions=[{"code": "K50.90"}],
        dosage=[
            {
                "sequence": 1,
                "timing": {"event": ["2026-03-09", "2026-03-23", "2026-04-20"]},
                "route": route,
                "doseAndRate": [dose],
            },
            {
                "sequence": 2,
                "timing": {"repeat": {"frequency": 1, "period": 8, "periodUnit": "wk"}},
                "route": route,
                "doseAndRate": [dose],
            },
        ],
        resources=[
            lab("weight", "29463-7", "2026-03-02", valueQuantity=quantity(158.7, "[lb_av]")),
            lab(
                "igra",
                "71774-4",
                "2026-02-20",
                valueCodeableConcept={"coding": [{"system": SNOMED, "code": "260385009"}]},
            ),
            statement("pred", "prednisone", "completed", "2025-10-01", "2025-12-15"),
            statement("aza", "azathioprine", "active", "2025-12-01", None),
        ],
        answers={"moderately_to_severely_active": {"valueBoolean": True}},
    )


def test_infliximab_an_induction_then_maintenance_is_approved(policies: PolicySet) -> None:
    bundle = infliximab_induction()
    submission = map_bundle(bundle, policies)
    assert isinstance(submission, Submission)
    request = submission.items[0].request
    assert request is not None
    assert request["service"]["schedule"] == {"induction_days": [0, 14, 42], "interval_days": 56}
    determination = decided(bundle, policies)
    assert determination.outcome == "approved", determination.reasons
    assert determination.dosing is not None
    assert determination.dosing.weight_kg is not None
    assert round(determination.dosing.weight_kg) == 72
    assert determination.facts["tb_test"].value == "negative"
    tb = determination.facts["tb_test"].evidence[0]
    assert determination.sources[tb.field] == "Observation/igra.value"


def test_infliximab_a_dose_above_the_policys_is_a_dose_exception(policies: PolicySet) -> None:
    bundle = infliximab_induction()
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "MedicationRequest":
            for dosage in entry["resource"]["dosageInstruction"]:
                dosage["doseAndRate"][0]["doseQuantity"] = quantity(10, "mg/kg")
    determination = decided(bundle, policies)
    assert determination.outcome == "pended"
    assert "dose-exception" in determination.reasons


def test_infliximab_without_the_tuberculosis_screen_asks_for_it(policies: PolicySet) -> None:
    bundle = infliximab_induction()
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"].get("id") != "igra"]
    determination = decided(bundle, policies)
    assert determination.outcome == "pended"
    assert "tb_test" in {m.fact for m in determination.missing}


def eribulin_liposarcoma() -> dict[str, Any]:
    """A metastatic liposarcoma known by its mCODE histology (ICD-O-3), 1.4 mg/m2 on days 1
    and 8 of each 21-day cycle, an anthracycline regimen before, an oncologist, no hepatic
    impairment answered on the DTR form."""
    histology = {
        "url": "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-histology-morphology-behavior",
        "valueCodeableConcept": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/icd-o-3", "code": "8852/3"}
            ]
        },
    }
    return pas_bundle(
        claim_id="PAS-2026-0202",
        created="2026-11-20T10:00:00Z",
        hcpcs="J9179",
        birth_date="1971-08-23",
        gender="male",
        specialty="207RX0202X",
        conditions=[{"code": "C49.22", "extension": [histology]}, {"code": "C78.00"}],
        dosage=[
            {
                "timing": {
                    "event": ["2026-11-30", "2026-12-07"],
                    "repeat": {"frequency": 2, "period": 21, "periodUnit": "d"},
                },
                "route": {"coding": [{"system": SNOMED, "code": "47625008"}]},
                "doseAndRate": [{"doseQuantity": quantity(1.4, "mg/m2")}],
            }
        ],
        resources=[
            lab("height", "8302-2", "2026-11-12", valueQuantity=quantity(180, "cm")),
            lab("weight", "29463-7", "2026-11-12", valueQuantity=quantity(84, "kg")),
            lab("creatinine", "2160-0", "2026-11-12", valueQuantity=quantity(1.0, "mg/dL")),
            statement("doxo", "doxorubicin", "completed", "2025-09-01", "2026-02-15"),
            statement("ifos", "ifosfamide", "completed", "2025-09-01", "2026-02-15"),
        ],
        answers={"child_pugh_class": {"valueString": "none"}},
    )


def test_eribulin_a_liposarcoma_by_its_histology_on_days_1_and_8_is_approved(
    policies: PolicySet,
) -> None:
    bundle = eribulin_liposarcoma()
    submission = map_bundle(bundle, policies)
    assert isinstance(submission, Submission)
    request = submission.items[0].request
    assert request is not None
    assert request["service"]["schedule"] == {"cycle_length_days": 21, "cycle_days": [1, 8]}
    determination = decided(bundle, policies)
    assert determination.outcome == "approved", determination.reasons
    histology = determination.facts["liposarcoma_histology"]
    assert histology.value is True
    assert determination.sources[histology.evidence[0].field] == (
        "Condition/cond-1.extension[0].valueCodeableConcept.coding[0]"
    )


def test_eribulin_a_child_pugh_class_b_needs_the_lower_dose(policies: PolicySet) -> None:
    bundle = eribulin_liposarcoma()
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "QuestionnaireResponse":
            entry["resource"]["item"][0]["answer"] = [{"valueCoding": {"code": "B"}}]
    determination = decided(bundle, policies)
    assert determination.outcome == "pended"
    assert "dose-exception" in determination.reasons


def denosumab_every_six_months() -> dict[str, Any]:
    """Postmenopausal osteoporosis, 60 mg under the skin every 6 months, DXA T-scores with
    UCUM's annotation unit, a bisphosphonate that failed, an endocrinologist."""
    return pas_bundle(
        claim_id="PAS-2026-0401",
        created="2026-04-27T10:00:00Z",
        hcpcs="J0897",
        birth_date="1955-02-11",
        gender="female",
        specialty="207RE0101X",
        conditions=[{"code": "M81.0"}, {"code": "Z78.0"}],
        dosage=[
            {
                "timing": {
                    "repeat": {
                        "frequency": 1,
                        "period": 6,
                        "periodUnit": "mo",
                        "boundsPeriod": {"start": "2026-05-04"},
                    }
                },
                "route": {"coding": [{"system": SNOMED, "code": "34206005"}]},
                "doseAndRate": [{"doseQuantity": quantity(60, "mg")}],
            }
        ],
        resources=[
            lab("t-spine", "38267-1", "2026-01-15", valueQuantity=quantity(-2.8, "{T-score}")),
            lab("t-hip", "38263-0", "2026-01-15", valueQuantity=quantity(-2.1, "{T-score}")),
            lab("calcium", "17861-6", "2026-04-20", valueQuantity=quantity(9.4, "mg/dL")),
            lab("creatinine", "2160-0", "2026-04-20", valueQuantity=quantity(0.9, "mg/dL")),
            lab("weight", "29463-7", "2026-04-20", valueQuantity=quantity(58, "kg")),
            statement("alendronate", "alendronate", "stopped", "2023-01-10", "2025-11-30"),
        ],
    )


def test_denosumab_every_six_months_is_approved(policies: PolicySet) -> None:
    bundle = denosumab_every_six_months()
    submission = map_bundle(bundle, policies)
    assert isinstance(submission, Submission)
    request = submission.items[0].request
    assert request is not None
    assert request["service"]["schedule"] == {"interval_months": 6}
    assert request["service"]["route"] == "subcutaneous"
    spine = next(o for o in request["observations"] if o["code"] == "38267-1")
    assert spine["value"] == -2.8 and "unit" not in spine
    determination = decided(bundle, policies)
    assert determination.outcome == "approved", determination.reasons
    # Every 6 calendar months: two doses in a one-year authorization, not three.
    assert determination.authorization is not None
    assert determination.authorization.doses == 2


def test_denosumab_every_three_months_is_a_dose_exception(policies: PolicySet) -> None:
    bundle = denosumab_every_six_months()
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "MedicationRequest":
            entry["resource"]["dosageInstruction"][0]["timing"]["repeat"]["period"] = 3
    determination = decided(bundle, policies)
    assert determination.outcome == "pended"
    assert "dose-exception" in determination.reasons
