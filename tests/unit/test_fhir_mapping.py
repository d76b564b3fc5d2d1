"""FHIR elements -> request fields: what is read, what is left unknown, and where from."""

from __future__ import annotations

from typing import Any

import pytest

import priorauth
from priorauth import PolicySet
from priorauth.adapters.fhir import Problem, Submission, map_bundle
from tests.unit.test_fhir_support import fhir_example, remove, resource

HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"


def mapped(bundle: dict[str, Any], policies: PolicySet) -> tuple[dict[str, Any], list[Problem]]:
    """The first item's request (checked against the contract) and the warnings."""
    submission = map_bundle(bundle, policies)
    assert isinstance(submission, Submission)
    request = submission.items[0].request
    assert request is not None
    priorauth.parse_request(request)
    return request, list(submission.problems)


@pytest.fixture
def bundle() -> dict[str, Any]:
    return fhir_example("pas-approvable.json")


def test_a_missing_element_leaves_the_field_unknown_never_false(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    del resource(bundle, "Patient/pat-1")["birthDate"]
    remove(bundle, "QuestionnaireResponse/dtr-1")
    del resource(bundle, "Claim/claim-1")["supportingInfo"]
    request, _ = mapped(bundle, policies)
    assert "birth_date" not in request["patient"]
    assert "disease" not in request
    assert "patient.birth_date" not in request["sources"]


def test_a_partial_birth_date_is_unknown_with_a_warning(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    resource(bundle, "Patient/pat-1")["birthDate"] = "1968"
    request, problems = mapped(bundle, policies)
    assert "birth_date" not in request["patient"]
    assert [p.path for p in problems] == ["Bundle.entry[1].resource.birthDate"]
    assert "1968" not in problems[0].message


def test_diagnoses_read_icd10cm_only_and_skip_refuted_conditions(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    condition = resource(bundle, "Condition/cond-2")
    condition["code"]["coding"].insert(0, {"system": "http://snomed.info/sct", "code": "94391008"})
    refuted = {
        "resourceType": "Condition",
        "id": "cond-3",
        "verificationStatus": {"coding": [{"code": "refuted"}]},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "C79.51"}]},
        "subject": {"reference": "Patient/pat-1"},
    }
    bundle["entry"].append(
        {"fullUrl": "urn:uuid:3b9c2d7e-1111-4a2b-8c3d-9e8f7a6b5c4d", "resource": refuted}
    )
    request, _ = mapped(bundle, policies)
    assert request["diagnoses"] == ["C50.912", "C78.01"]
    assert request["sources"]["diagnoses[1]"] == "Condition/cond-2.code.coding[1]"


def test_claim_diagnosis_codeable_concepts_are_read(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    claim = resource(bundle, "Claim/claim-1")
    claim["diagnosis"] = [
        {
            "sequence": 1,
            "diagnosisCodeableConcept": {
                "coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "C50912"}]
            },
        }
    ]
    remove(bundle, "Condition/cond-1")
    remove(bundle, "Condition/cond-2")
    request, _ = mapped(bundle, policies)
    assert request["diagnoses"] == ["C50.912"]
    assert request["sources"]["diagnoses[0]"] == (
        "Claim/claim-1.diagnosis[0].diagnosisCodeableConcept.coding[0]"
    )


@pytest.mark.parametrize(
    ("repeat", "expected"),
    [
        ({"frequency": 3, "period": 28, "periodUnit": "d"}, (3, 28)),
        ({"frequency": 1, "period": 3, "periodUnit": "wk"}, (1, 21)),
        ({"period": 21, "periodUnit": "d"}, (1, 21)),
        ({"frequency": 1, "period": 1, "periodUnit": "mo"}, (None, None)),
        ({"frequency": 1}, (None, None)),
    ],
)
def test_the_schedule_is_read_from_timing_repeat_where_it_can_be(
    bundle: dict[str, Any],
    policies: PolicySet,
    repeat: dict[str, Any],
    expected: tuple[int | None, int | None],
) -> None:
    dosage = resource(bundle, "MedicationRequest/order-1")["dosageInstruction"][0]
    dosage["timing"] = {"repeat": repeat}
    request, _ = mapped(bundle, policies)
    regimen = request["regimen"]
    assert (regimen.get("doses_per_cycle"), regimen.get("cycle_length_days")) == expected


def test_a_dose_in_another_unit_is_left_unknown(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    dosage = resource(bundle, "MedicationRequest/order-1")["dosageInstruction"][0]
    dosage["doseAndRate"][0]["doseQuantity"] = {"value": 4, "unit": "mL", "code": "mL"}
    request, problems = mapped(bundle, policies)
    assert "dose" not in request["regimen"] and "dose_unit" not in request["regimen"]
    assert any(p.path.endswith("doseAndRate[0].doseQuantity") for p in problems)


def test_an_ndc_item_and_a_drug_known_only_by_name(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    item = resource(bundle, "Claim/claim-1")["item"][0]
    item["productOrService"] = {
        "coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "70020191001"}]
    }
    request, _ = mapped(bundle, policies)
    assert request["drug"]["ndc"] == "70020-1910-01"
    item["productOrService"] = {"text": "Ixempra kit"}
    resource(bundle, "MedicationRequest/order-1")["medicationCodeableConcept"] = {
        "text": "ixabepilone 15 mg kit"
    }
    request, _ = mapped(bundle, policies)
    assert request["drug"] == {"hcpcs": "J9207", "name": "Ixempra kit"}
    assert priorauth.evaluate(request, policies=policies).outcome == "approved"


def test_liver_tests_need_an_upper_limit_of_normal(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    del resource(bundle, "Observation/ast-1")["referenceRange"]
    request, problems = mapped(bundle, policies)
    assert "ast_uln_ratio" not in request["labs"]
    assert request["labs"]["alt_uln_ratio"] == 0.667
    assert any(p.path == "Bundle.entry[17].resource.referenceRange" for p in problems)


def test_the_latest_observation_wins_and_units_convert(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    newer = dict(resource(bundle, "Observation/weight-1"))
    newer.update(
        id="weight-2",
        effectiveDateTime="2026-11-19",
        valueQuantity={"value": 154, "unit": "lb", "code": "[lb_av]"},
    )
    bundle["entry"].append(
        {"fullUrl": "urn:uuid:5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "resource": newer}
    )
    request, _ = mapped(bundle, policies)
    assert request["patient"]["weight_kg"] == pytest.approx(69.8533, abs=1e-3)
    assert request["sources"]["patient.weight_kg"] == "Observation/weight-2.valueQuantity"


def test_a_value_the_contract_refuses_is_left_out_with_its_element_named(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    resource(bundle, "Observation/height-1")["valueQuantity"]["value"] = 1650
    request, problems = mapped(bundle, policies)
    assert "height_cm" not in request["patient"]
    assert any(p.path == "Bundle.entry[13].resource.valueQuantity" for p in problems)


def test_an_invalid_npi_is_left_out(bundle: dict[str, Any], policies: PolicySet) -> None:
    resource(bundle, "Practitioner/prac-1")["identifier"][0]["value"] = "1234567890"
    request, problems = mapped(bundle, policies)
    assert "npi" not in request["prescriber"]
    assert request["prescriber"]["specialty"] == "207RX0202X"
    assert any("not a valid NPI" in p.message for p in problems)


def test_a_practitioner_requester_finds_its_role(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    resource(bundle, "MedicationRequest/order-1")["requester"] = {
        "reference": "Practitioner/prac-1"
    }
    resource(bundle, "Claim/claim-1")["provider"] = {"reference": "Organization/clinic-1"}
    request, _ = mapped(bundle, policies)
    assert request["prescriber"] == {"specialty": "207RX0202X", "npi": "1234567893"}


def test_attestations_by_coded_answers(bundle: dict[str, Any], policies: PolicySet) -> None:
    response = resource(bundle, "QuestionnaireResponse/dtr-1")
    response["item"][0]["item"][0]["answer"] = [{"valueCoding": {"code": "N"}}]
    response["item"][0]["item"].append(
        {
            "linkId": "no-response-to-preoperative-therapy",
            "answer": [{"valueCoding": {"system": "http://loinc.org", "code": "LA33-6"}}],
        }
    )
    request, _ = mapped(bundle, policies)
    assert request["disease"] == {
        "metastatic": False,
        "recurrent_unresectable_locoregional": False,
        "no_response_to_preoperative_therapy": True,
    }


def test_urgency_and_continuation(bundle: dict[str, Any], policies: PolicySet) -> None:
    claim = resource(bundle, "Claim/claim-1")
    claim["priority"] = {"coding": [{"code": "stat"}]}
    claim["extension"] = [
        {
            "url": "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-certificationType",
            "valueCodeableConcept": {"coding": [{"code": "4"}]},
        }
    ]
    claim["related"] = [{"claim": {"identifier": {"value": "PA-2025-000042"}}}]
    request, _ = mapped(bundle, policies)
    assert request["urgency"] == "expedited"
    assert request["type"] == "continuation"
    assert request["prior_authorization_id"] == "PA-2025-000042"


def test_one_request_per_item_each_with_its_own_order(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    claim = resource(bundle, "Claim/claim-1")
    second = dict(claim["item"][0])
    second["sequence"] = 2
    second["productOrService"] = {"coding": [{"system": HCPCS, "code": "J9171"}]}
    del second["extension"]
    claim["item"].append(second)
    submission = map_bundle(bundle, policies)
    assert isinstance(submission, Submission)
    first, other = (item.request for item in submission.items)
    assert first is not None and other is not None
    assert first["request_id"] == "PAS-2026-0001-1" and other["request_id"] == "PAS-2026-0001-2"
    assert first["regimen"]["dose"] == 40
    assert "dose" not in other.get("regimen", {})  # its order is not named, so not guessed


def _staging(code: str, value: dict[str, Any]) -> dict[str, Any]:
    return {
        "fullUrl": "urn:uuid:7c6b5a49-3827-4161-9504-a3b2c1d0e9f8",
        "resource": {
            "resourceType": "Observation",
            "id": "stage-1",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": "Patient/pat-1"},
            "valueCodeableConcept": value,
        },
    }


@pytest.mark.parametrize(
    ("code", "value", "expected"),
    [
        ("21907-1", {"coding": [{"display": "American Joint Committee on Cancer cM1"}]}, True),
        ("21901-4", {"text": "pM1b"}, True),
        ("21908-9", {"text": "Stage IV"}, True),
        ("21907-1", {"coding": [{"display": "American Joint Committee on Cancer cM0"}]}, None),
        ("21908-9", {"text": "Stage IIIA"}, None),
    ],
)
def test_mcode_staging_shows_metastasis_but_never_its_absence(
    bundle: dict[str, Any],
    policies: PolicySet,
    code: str,
    value: dict[str, Any],
    expected: bool | None,
) -> None:
    remove(bundle, "QuestionnaireResponse/dtr-1")
    del resource(bundle, "Claim/claim-1")["supportingInfo"]
    bundle["entry"].append(_staging(code, value))
    request, _ = mapped(bundle, policies)
    assert request.get("disease", {}).get("metastatic") is expected
    if expected:
        assert request["sources"]["disease.metastatic"] == (
            "Observation/stage-1.valueCodeableConcept"
        )


def test_staging_against_an_attested_no_is_left_unknown(
    bundle: dict[str, Any], policies: PolicySet
) -> None:
    answers = resource(bundle, "QuestionnaireResponse/dtr-1")["item"][0]["item"]
    answers[0]["answer"] = [{"valueBoolean": False}]
    bundle["entry"].append(_staging("21908-9", {"text": "Stage IV"}))
    request, problems = mapped(bundle, policies)
    assert "metastatic" not in request["disease"]
    assert any("left unknown for a person" in p.message for p in problems)
