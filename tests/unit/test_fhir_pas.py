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
AUTHORIZED_DETAIL = (
    "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-itemAuthorizedDetail"
)


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
    assert item.request is not None and item.parsed is not None
    request = priorauth.parse_request(item.request)
    assert request == item.parsed
    assert request.request_id == "PAS-2026-0001-1"
    assert [(c.system, c.code) for c in request.service.codes] == [("hcpcs", "J9207")]
    assert [c.code for c in request.conditions] == ["C50.912", "C78.01"]
    ((_, prescriber),) = request.practitioner("prescriber")
    assert (prescriber.npi, prescriber.specialty) == ("1234567893", "207RX0202X")
    assert request.service.dose is not None
    assert (request.service.dose.value, request.service.dose.unit) == (40, "mg/m2")
    assert request.service.schedule is not None
    assert request.service.schedule.cycle_length_days == 21
    assert request.service.schedule.doses_per_cycle == 1
    measures = {o.code: (o.value, o.unit) for o in request.observations}
    assert measures["8302-2"] == (165, "cm") and measures["29463-7"] == (68, "kg")
    assert measures["777-3"] == (245, "10*3/uL")
    ast = next(o for o in request.observations if o.code == "1920-8")
    assert ast.uln_multiple == 0.6
    answer = request.answers["metastatic"]
    assert answer is not None and answer.value is True and answer.by == "1234567893"
    assert [m.name for m in request.medications] == ["capecitabine"]
    assert [(a.name, a.severity) for a in request.allergies] == [("penicillin", "mild")]
    determination = priorauth.evaluate(item.request, policies=policies)
    assert determination.outcome == "approved"
    # Every fact's evidence names the FHIR element it was read from.
    for fact in determination.facts.values():
        for evidence in fact.evidence:
            if evidence.field not in ("service.start_date",) and "[" in evidence.field:
                assert evidence.field in determination.sources, evidence.field
    assert determination.sources["conditions[0]"] == "Condition/cond-1.code.coding[0]"
    assert determination.sources["practitioners[0].specialty"] == (
        "PractitionerRole/role-1.specialty[0].coding[0]"
    )
    assert determination.sources["answers.metastatic"] == (
        "QuestionnaireResponse/dtr-1.item[0].item[0]"
    )


def test_an_approval_says_what_it_authorizes(policies: PolicySet) -> None:
    """The billing units for the period, in words and in PAS itemAuthorizedDetail."""
    answer = submit(fhir_example("pas-approvable.json"), policies=policies, created=CREATED)
    (determination,) = answer.determinations
    assert determination is not None and determination.authorization is not None
    authorization = determination.authorization
    (item,) = claim_response(answer.body)["item"]
    detail = extension(item, AUTHORIZED_DETAIL)
    assert detail is not None
    parts = {e["url"]: e for e in detail["extension"]}
    assert parts["quantity"]["valueQuantity"]["value"] == authorization.units
    code = parts["productOrServiceCode"]["valueCodeableConcept"]["coding"][0]["code"]
    assert code == authorization.billing_code == "J9207"
    notes = " ".join(n["text"] for n in claim_response(answer.body)["processNote"])
    assert f"Item 1: authorized: regimen {authorization.regimen} (" in notes
    assert f"{authorization.doses} doses of up to 40 mg/m2" in notes
    assert f"{authorization.units} in all" in notes


def test_pended_bundle_gets_a4_and_notes_in_words(policies: PolicySet) -> None:
    answer = submit(fhir_example("pas-pended.json"), policies=policies, created=CREATED)
    assert answer.status == 200
    response = claim_response(answer.body)
    (item,) = response["item"]
    assert review_code(item) == "A4"
    assert extension(item, PREAUTH_PERIOD) is None
    assert extension(item, AUTHORIZED_DETAIL) is None
    assert "preAuthRef" not in response
    notes = {n["number"]: n["text"] for n in response["processNote"]}
    assert sorted(notes) == item["noteNumber"]
    texts = " ".join(notes.values())
    assert "pended (missing-information)" in texts
    (determination,) = answer.determinations
    assert determination is not None
    asked = {m.fact for m in determination.missing}
    assert {"age_years", "prescribed_by_or_with_oncologist"} <= asked
    for missing in determination.missing:
        assert f"Item 1: missing: {missing.question}" in texts
    assert "date of birth" in texts and "height and weight" in texts and "oncologist" in texts


def test_a_consulting_oncologist_in_the_bundle_meets_the_specialty_criterion(
    policies: PolicySet,
) -> None:
    """The pended example's family physician, with an oncologist's PractitionerRole in the
    bundle: a consultant, whose NUCC taxonomy the policy accepts."""
    bundle = fhir_example("pas-pended.json")
    bundle["entry"] += [
        {
            "fullUrl": "https://provider.example.org/fhir/Practitioner/prac-2",
            "resource": {
                "resourceType": "Practitioner",
                "id": "prac-2",
                "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1245319599"}],
            },
        },
        {
            "fullUrl": "https://provider.example.org/fhir/PractitionerRole/role-2",
            "resource": {
                "resourceType": "PractitionerRole",
                "id": "role-2",
                "practitioner": {"reference": "Practitioner/prac-2"},
                "specialty": [
                    {
                        "coding": [
                            {"system": "http://nucc.org/provider-taxonomy", "code": "207RH0003X"}
                        ]
                    }
                ],
            },
        },
    ]
    resource(bundle, "Claim/claim-1")["careTeam"] = [
        {"sequence": 1, "provider": {"reference": "PractitionerRole/role-2"}}
    ]
    answer = submit(bundle, policies=policies, created=CREATED)
    (determination,) = answer.determinations
    assert determination is not None
    fact = determination.facts["prescribed_by_or_with_oncologist"]
    assert fact.value is True
    (evidence,) = fact.evidence
    assert determination.sources[evidence.field].startswith("PractitionerRole/role-2")
    assert "prescribed_by_or_with_oncologist" not in {m.fact for m in determination.missing}


def test_a_mg_dose_with_height_in_inches_and_weight_in_pounds(policies: PolicySet) -> None:
    """US customary units (UCUM [in_i], [lb_av]) reach the engine as sent; it converts them to
    work out the dose per m2: 70 mg for 65 in and 150 lb (1.77 m2) is 39.5 mg/m2."""
    bundle = fhir_example("pas-approvable.json")
    resource(bundle, "Observation/height-1")["valueQuantity"] = {
        "value": 65,
        "unit": "in",
        "system": "http://unitsofmeasure.org",
        "code": "[in_i]",
    }
    resource(bundle, "Observation/weight-1")["valueQuantity"] = {
        "value": 150,
        "unit": "lb",
        "system": "http://unitsofmeasure.org",
        "code": "[lb_av]",
    }
    dose = resource(bundle, "MedicationRequest/order-1")["dosageInstruction"][0]["doseAndRate"][0]
    dose["doseQuantity"] = {"value": 70, "system": "http://unitsofmeasure.org", "code": "mg"}
    answer = submit(bundle, policies=policies, created=CREATED)
    (determination,) = answer.determinations
    assert determination is not None and determination.dosing is not None
    assert determination.dosing.bsa_m2 == pytest.approx(1.77)
    assert determination.outcome == "approved"
    assert review_code(claim_response(answer.body)["item"][0]) == "A1"


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
    assert "cpt 99213" in determinations[2].summary
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
