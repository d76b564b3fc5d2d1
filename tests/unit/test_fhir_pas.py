"""Round trips: example PAS bundle -> requests -> priorauth.evaluate -> PAS response bundle."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.claimresponse import ClaimResponse
from fhir.resources.R4B.operationoutcome import OperationOutcome

import priorauth
from priorauth import PolicySet
from priorauth.adapters.fhir import (
    InvalidResponse,
    Submission,
    build_response,
    code_table,
    decide,
    map_bundle,
    submit,
    validate_response,
)
from tests.unit.test_fhir_support import CREATED, fhir_example, resource

REVIEW_ACTION = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-reviewAction"
PREAUTH_PERIOD = (
    "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-itemPreAuthPeriod"
)
REVIEWER = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-claimResponseReviewer"


def claim_response(body: dict[str, Any]) -> dict[str, Any]:
    Bundle.model_validate(body)
    first: dict[str, Any] = body["entry"][0]["resource"]
    assert first["resourceType"] == "ClaimResponse"
    ClaimResponse.model_validate(first)
    return first


def review_code(item: dict[str, Any]) -> str:
    (adjudication,) = item["adjudication"]
    (action,) = [e for e in adjudication["extension"] if e["url"] == REVIEW_ACTION]
    (code,) = [e for e in action["extension"] if e["url"] == "code"]
    coding = code["valueCodeableConcept"]["coding"][0]
    assert coding["system"] == "https://codesystem.x12.org/005010/306"
    value: str = coding["code"]
    return value


def extension(item: dict[str, Any], url: str) -> dict[str, Any] | None:
    return next((e for e in item.get("extension", ()) if e["url"] == url), None)


def test_approvable_bundle_is_certified_in_total_for_one_year(policies: PolicySet) -> None:
    answer = submit(fhir_example("pas-approvable.json"), policies=policies, created=CREATED)
    assert answer.status == 200
    response = claim_response(answer.body)
    (item,) = response["item"]
    assert item["itemSequence"] == 1
    assert review_code(item) == "A1"
    period = extension(item, PREAUTH_PERIOD)
    assert period is not None
    assert period["valuePeriod"] == {"start": "2026-12-01", "end": "2027-11-30"}
    action = item["adjudication"][0]["extension"][0]["extension"]
    number = next(e["valueString"] for e in action if e["url"] == "number")
    assert number.startswith("PA-")
    assert response["preAuthRef"] == number
    reviewer = next(e for e in response["extension"] if e["url"] == REVIEWER)
    assert reviewer["extension"] == [{"url": "wasHumanReviewedFlag", "valueBoolean": False}]
    assert response["request"] == {"reference": "Claim/claim-1"}
    assert response["created"] == CREATED.isoformat()
    # The resources the ClaimResponse points at travel with it.
    keys = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in answer.body["entry"]}
    assert keys == {
        "ClaimResponse/claim-1-response",
        "Patient/pat-1",
        "Organization/payer-1",
        "PractitionerRole/role-1",
    }


def test_the_mapped_request_is_the_contract_with_its_sources(policies: PolicySet) -> None:
    submission = map_bundle(fhir_example("pas-approvable.json"), policies)
    assert isinstance(submission, Submission)
    (item,) = submission.items
    assert item.request is not None
    request = priorauth.parse_request(item.request)
    assert request.request_id == "PAS-2026-0001-1"
    assert request.diagnoses == ("C50.912", "C78.01")
    assert request.prescriber.specialty == "207RX0202X"
    assert request.prescriber.npi == "1234567893"
    assert request.regimen.dose == 40 and request.regimen.dose_unit == "mg/m2"
    assert (request.regimen.doses_per_cycle, request.regimen.cycle_length_days) == (1, 21)
    assert request.patient.height_cm == 165 and request.patient.weight_kg == 68
    assert request.disease.metastatic is True
    assert request.labs.ast_uln_ratio == 0.6
    assert request.labs.platelets_per_mm3 == 245_000
    assert [m.name for m in request.medications] == ["capecitabine"]
    assert [(a.name, a.severity) for a in request.allergies] == [("penicillin", "mild")]
    determination = priorauth.evaluate(item.request, policies=policies)
    assert determination.outcome == "approved"
    assert determination.sources["diagnoses[0]"] == "Condition/cond-1.code.coding[0]"
    assert determination.sources["prescriber.specialty"] == (
        "PractitionerRole/role-1.specialty[0].coding[0]"
    )
    assert determination.sources["disease.metastatic"] == (
        "QuestionnaireResponse/dtr-1.item[0].item[0].answer[0].valueBoolean"
    )


def test_pended_bundle_gets_a4_and_notes_in_words(policies: PolicySet) -> None:
    answer = submit(fhir_example("pas-pended.json"), policies=policies, created=CREATED)
    assert answer.status == 200
    response = claim_response(answer.body)
    (item,) = response["item"]
    assert review_code(item) == "A4"
    assert extension(item, PREAUTH_PERIOD) is None
    assert "preAuthRef" not in response
    notes = {n["number"]: n["text"] for n in response["processNote"]}
    assert sorted(notes) == item["noteNumber"]
    texts = " ".join(notes.values())
    assert "pended (missing-information)" in texts
    assert "date of birth" in texts
    assert "height (cm) and weight (kg)" in texts
    assert "oncologist" in texts


def test_invalid_bundle_gets_an_operation_outcome_naming_the_elements(
    policies: PolicySet,
) -> None:
    answer = submit(fhir_example("pas-invalid.json"), policies=policies)
    assert answer.status == 400
    OperationOutcome.model_validate(answer.body)
    where = {i["expression"][0]: i["diagnostics"] for i in answer.body["issue"]}
    assert "Bundle.entry[0].resource.use" in where
    assert "Bundle.entry[0].resource.diagnosis[1].diagnosisReference.reference" in where
    assert any("appears more than once" in text for text in where.values())
    assert answer.submission is None and answer.determinations == ()


def test_items_no_policy_governs_are_pended_not_errors(policies: PolicySet) -> None:
    bundle = fhir_example("pas-approvable.json")
    claim = resource(bundle, "Claim/claim-1")
    docetaxel = {
        "sequence": 2,
        "productOrService": {
            "coding": [
                {
                    "system": "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
                    "code": "J9171",
                }
            ]
        },
    }
    visit = {
        "sequence": 3,
        "productOrService": {
            "coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "99213"}]
        },
    }
    claim["item"] += [docetaxel, visit]
    answer = submit(bundle, policies=policies, created=CREATED)
    assert answer.status == 200
    response = claim_response(answer.body)
    assert [i["itemSequence"] for i in response["item"]] == [1, 2, 3]
    assert [review_code(i) for i in response["item"]] == ["A1", "A4", "A4"]
    assert "preAuthRef" not in response  # more than one item: numbers are per item
    # A drug no policy governs, and a visit known only by its CPT code, are both requests
    # pended for intake (so a person's queue has them), each by its own code.
    determinations = answer.determinations
    assert determinations[1] is not None and determinations[1].reasons == ("no-policy",)
    assert determinations[2] is not None and determinations[2].reasons == ("no-policy",)
    assert determinations[2].route == "intake"
    assert "http://www.ama-assn.org/go/cpt 99213" in determinations[2].summary
    notes = " ".join(n["text"] for n in response["processNote"])
    assert "Item 2: pended (no-policy)" in notes
    assert "Item 3: pended (no-policy)" in notes


def test_an_item_with_no_code_at_all_is_pended_with_the_reason(policies: PolicySet) -> None:
    bundle = fhir_example("pas-approvable.json")
    claim = resource(bundle, "Claim/claim-1")
    claim["item"].append({"sequence": 2, "productOrService": {"text": "an office visit"}})
    answer = submit(bundle, policies=policies, created=CREATED)
    assert answer.status == 200
    assert answer.determinations[1] is None
    notes = " ".join(n["text"] for n in claim_response(answer.body)["processNote"])
    assert "Item 2: pended for intake: the item names no code" in notes


def test_a_dose_exception_says_why(policies: PolicySet) -> None:
    bundle = fhir_example("pas-approvable.json")
    order = resource(bundle, "MedicationRequest/order-1")
    order["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] = 45
    answer = submit(bundle, policies=policies, created=CREATED)
    response = claim_response(answer.body)
    assert review_code(response["item"][0]) == "A4"
    notes = " ".join(n["text"] for n in response["processNote"])
    assert "dose-exception" in notes and "Item 1: dose:" in notes


def test_build_response_takes_its_own_numbering(policies: PolicySet) -> None:
    submission = map_bundle(fhir_example("pas-approvable.json"), policies)
    assert isinstance(submission, Submission)
    determinations = decide(submission, policies)
    body = build_response(submission, determinations, created=CREATED, number=lambda d: "AUTH-7")
    assert claim_response(body)["preAuthRef"] == "AUTH-7"


def test_the_same_bundle_gives_the_same_response(policies: PolicySet) -> None:
    first = submit(fhir_example("pas-approvable.json"), policies=policies, created=CREATED)
    second = submit(fhir_example("pas-approvable.json"), policies=policies, created=CREATED)
    assert first.body == second.body


def test_the_code_table_is_data() -> None:
    actions = code_table().review_actions
    assert {k: v.code for k, v in actions.items()} == {
        "approved": "A1",
        "denied": "A3",
        "pended": "A4",
        "modified": "A6",
    }


def test_a_response_that_does_not_validate_is_a_defect_not_an_answer() -> None:
    broken = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": "urn:x", "resource": {"resourceType": "ClaimResponse"}}],
    }
    with pytest.raises(InvalidResponse, match="required"):
        validate_response(broken)


def test_item_trace_numbers_come_back(policies: PolicySet) -> None:
    bundle = fhir_example("pas-approvable.json")
    trace = {
        "url": "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-itemTraceNumber",
        "valueIdentifier": {
            "system": "urn:ietf:rfc:3986",
            "value": "urn:uuid:1f0e2d3c-0000-4000-8000-000000000001",
        },
    }
    resource(bundle, "Claim/claim-1")["item"][0]["extension"].append(trace)
    answer = submit(bundle, policies=policies, created=CREATED)
    (item,) = claim_response(answer.body)["item"]
    assert trace in item["extension"]
