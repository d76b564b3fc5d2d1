"""The FHIR PAS endpoints end to end on a real database: $submit, a person's decision seen in
FHIR, $inquire, updates, cancellations, and the refusals (always a 4xx OperationOutcome)."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from priorauth.adapters.fhir import validate_response
from tests.service_fixtures import Env, auth

ROOT = Path(__file__).resolve().parents[2]
FHIR = ROOT / "examples" / "fhir"
X12 = "https://codesystem.x12.org/005010/306"
REVIEWER = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-claimResponseReviewer"
PERIOD = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-itemPreAuthPeriod"
CERTIFICATION = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-certificationType"


def bundle(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FHIR / f"pas-{name}.json").read_text())
    return copy.deepcopy(data)


def post(client: TestClient, path: str, body: dict[str, Any] | bytes, who: str = "clinic") -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {**auth(who), "Content-Type": "application/fhir+json"}
    return client.post(f"/fhir/{path}", content=content, headers=headers)


def claim_response(answer: dict[str, Any]) -> dict[str, Any]:
    """The ClaimResponse of a PAS response bundle, after checking the whole bundle with
    fhir.resources (the service does not on its hot path: every shape is checked here)."""
    assert answer["resourceType"] == "Bundle", answer
    validate_response(answer)
    resource: dict[str, Any] = answer["entry"][0]["resource"]
    assert resource["resourceType"] == "ClaimResponse"
    return resource


def action(item: dict[str, Any]) -> str:
    [review] = item["adjudication"][0]["extension"]
    code = next(e for e in review["extension"] if e["url"] == "code")
    [coding] = code["valueCodeableConcept"]["coding"]
    assert coding["system"] == X12
    return str(coding["code"])


def period(item: dict[str, Any]) -> dict[str, str]:
    found = next(e for e in item.get("extension", ()) if e["url"] == PERIOD)
    return dict(found["valuePeriod"])


def reviewer(resource: dict[str, Any]) -> dict[str, Any]:
    found = next(e for e in resource["extension"] if e["url"] == REVIEWER)
    return {
        e["url"]: next(v for k, v in e.items() if k.startswith("value")) for e in found["extension"]
    }


def notes(resource: dict[str, Any]) -> list[str]:
    return [n["text"] for n in resource.get("processNote", ())]


def only_case(client: TestClient, who: str = "md1") -> dict[str, Any]:
    [case] = client.get("/v1/queue", headers=auth(who)).json()
    return dict(case)


def test_an_approvable_bundle_is_certified_with_its_year_and_a_stored_authorization(
    client: TestClient,
) -> None:
    answer = post(client, "Claim/$submit", bundle("approvable"))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/fhir+json")
    resource = claim_response(answer.json())
    [item] = resource["item"]
    assert item["itemSequence"] == 1 and action(item) == "A1"
    assert period(item) == {"start": "2026-12-01", "end": "2027-11-30"}
    assert reviewer(resource) == {"wasHumanReviewedFlag": False}
    # The authorization number is the service's own: the same one the REST inquiry lists.
    listed = client.get("/v1/authorizations?member_id=M-000-0001", headers=auth("clinic")).json()
    assert [a["authorization_id"] for a in listed] == [resource["preAuthRef"]]
    assert listed[0]["valid_through"] == "2027-11-30"
    # The same bundle again: the same answer, and no second case.
    again = post(client, "Claim/$submit", bundle("approvable"))
    assert again.status_code == 200 and again.json() == answer.json()
    listed = client.get("/v1/authorizations?member_id=M-000-0001", headers=auth("clinic")).json()
    assert len(listed) == 1


def test_a_pended_bundle_waits_in_the_queue_and_a_denial_by_a_person_shows_as_a3(
    client: TestClient,
) -> None:
    answer = post(client, "Claim/$submit", bundle("pended"))
    resource = claim_response(answer.json())
    [item] = resource["item"]
    assert action(item) == "A4" and "preAuthRef" not in resource
    assert any("date of birth" in text for text in notes(resource))
    case = only_case(client)
    assert case["request_id"] == "PAS-2026-0002-1" and case["status"] == "pended"
    decided = client.post(
        f"/v1/requests/{case['case_id']}/decision",
        json={"action": "deny", "criterion": "B.i", "reason": "No record of an anthracycline"},
        headers=auth("md1"),
    )
    assert decided.status_code == 200, decided.text
    inquiry = post(client, "Claim/$inquire", bundle("pended"))
    assert inquiry.status_code == 200
    resource = claim_response(inquiry.json())
    [item] = resource["item"]
    assert action(item) == "A3"
    assert "preAuthRef" not in resource and PERIOD not in json.dumps(item)
    assert any(
        "not certified after review: No record of an anthracycline (criterion B.i not met)" in t
        for t in notes(resource)
    )
    assert reviewer(resource) == {
        "wasHumanReviewedFlag": True,
        "reviewerNPI": {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1679576722"},
        "reviewerSpecialty": {"text": "medical-oncology"},
    }
    # Submitting the same bundle again now answers the decided state too.
    again = claim_response(post(client, "Claim/$submit", bundle("pended")).json())
    assert action(again["item"][0]) == "A3"


@pytest.mark.parametrize(
    ("decision", "code"),
    [
        ({"action": "approve"}, "A1"),
        (
            {
                "action": "approve-modified",
                "reason": "Weekly schedule instead",
                "regimen": {
                    "dose": {"value": 16, "unit": "mg/m2"},
                    "schedule": {"doses_per_cycle": 3, "cycle_length_days": 28},
                },
            },
            "A6",
        ),
    ],
)
def test_an_approval_by_a_person_shows_its_code_period_and_number(
    client: TestClient, decision: dict[str, Any], code: str
) -> None:
    post(client, "Claim/$submit", bundle("pended"))
    case = only_case(client)
    decided = client.post(
        f"/v1/requests/{case['case_id']}/decision", json=decision, headers=auth("md1")
    )
    assert decided.status_code == 200, decided.text
    [authorization] = decided.json()["authorizations"]
    resource = claim_response(post(client, "Claim/$inquire", bundle("pended")).json())
    [item] = resource["item"]
    assert action(item) == code
    assert resource["preAuthRef"] == authorization["authorization_id"]
    assert period(item) == {
        "start": authorization["valid_from"],
        "end": authorization["valid_through"],
    }
    assert reviewer(resource)["wasHumanReviewedFlag"] is True


def test_inquiries_see_only_the_organizations_own_matching_request(client: TestClient) -> None:
    post(client, "Claim/$submit", bundle("pended"))
    assert post(client, "Claim/$inquire", bundle("pended"), who="other-clinic").status_code == 404
    other_patient = bundle("pended")
    for entry in other_patient["entry"]:
        if entry["resource"]["resourceType"] == "Patient":
            entry["resource"]["identifier"] = [{"system": "urn:x", "value": "someone-else"}]
    answer = post(client, "Claim/$inquire", other_patient)
    assert answer.status_code == 404
    assert answer.json()["resourceType"] == "OperationOutcome"


def test_an_item_known_only_by_a_cpt_code_reaches_the_intake_queue(client: TestClient) -> None:
    sent = bundle("approvable")
    claim = sent["entry"][0]["resource"]
    claim["item"].append(
        {
            "sequence": 2,
            "productOrService": {
                "coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "96413"}]
            },
        }
    )
    answer = post(client, "Claim/$submit", sent)
    assert answer.status_code == 200, answer.text
    assert [action(i) for i in claim_response(answer.json())["item"]] == ["A1", "A4"]
    queue = client.get("/v1/queue?queue=intake", headers=auth("pharmacist")).json()
    assert len(queue) == 1
    case = client.get(f"/v1/requests/{queue[0]['case_id']}", headers=auth("pharmacist")).json()
    assert case["request"]["service"]["codes"] == [{"system": "cpt", "code": "96413"}]
    assert case["request"]["sources"]["service.codes[0]"] == (
        "Claim/claim-1.item[1].productOrService.coding[0]"
    )


def as_update_of(bundle: dict[str, Any], earlier: str) -> None:
    """Make a bundle's Claim an update of the claim identified `earlier` (related.claim)."""
    claim = bundle["entry"][0]["resource"]
    claim["identifier"][0]["value"] = f"{earlier}-U1"
    claim["related"] = [
        {
            "claim": {"identifier": {"value": earlier}},
            "relationship": {"coding": [{"code": "prior"}]},
        }
    ]


def test_an_update_decides_the_pended_request_again(client: TestClient) -> None:
    post(client, "Claim/$submit", bundle("pended"))
    case = only_case(client)
    update = bundle("approvable")
    as_update_of(update, "PAS-2026-0002")
    answer = post(client, "Claim/$submit", update)
    assert answer.status_code == 200, answer.text
    [item] = claim_response(answer.json())["item"]
    assert action(item) == "A1"
    # The same case was decided again (not a second one), and the queue is empty.
    read = client.get(f"/v1/requests/{case['case_id']}", headers=auth("clinic")).json()
    assert read["status"] == "approved" and len(read["determinations"]) == 2
    assert client.get("/v1/queue", headers=auth("md1")).json() == []
    # An inquiry by the earlier claim identifier finds the updated answer.
    inquiry = claim_response(post(client, "Claim/$inquire", bundle("pended")).json())
    assert action(inquiry["item"][0]) == "A1"


def test_an_update_replaces_the_request_so_what_it_leaves_out_is_gone(
    client: TestClient,
) -> None:
    # First sent with ketoconazole among the current medications: a strong CYP3A4 inhibitor
    # with 40 mg/m2 holds the request for a pharmacist.
    first = bundle("approvable")
    claim = first["entry"][0]["resource"]
    claim["identifier"][0]["value"] = "PAS-2026-0009"
    statements = [
        e for e in first["entry"] if e["resource"]["resourceType"] == "MedicationStatement"
    ]
    inhibitor = copy.deepcopy(statements[0])
    inhibitor["fullUrl"] = inhibitor["fullUrl"].replace("med-1", "med-9")
    inhibitor["resource"].update(id="med-9", medicationCodeableConcept={"text": "ketoconazole"})
    first["entry"].append(inhibitor)
    answer = post(client, "Claim/$submit", first)
    assert answer.status_code == 200, answer.text
    assert action(claim_response(answer.json())["item"][0]) == "A4"
    case = only_case(client, "pharmacist")
    # The update lists no current medications at all: the patient stopped them. Laid over the
    # stored request, the ketoconazole would stay; the update replaces it, so it is gone.
    update = bundle("approvable")
    update["entry"] = [
        e for e in update["entry"] if e["resource"]["resourceType"] != "MedicationStatement"
    ]
    as_update_of(update, "PAS-2026-0009")
    answer = post(client, "Claim/$submit", update)
    assert answer.status_code == 200, answer.text
    assert action(claim_response(answer.json())["item"][0]) == "A1"
    read = client.get(f"/v1/requests/{case['case_id']}", headers=auth("clinic")).json()
    assert read["status"] == "approved"
    assert "medications" not in read["request"]


def test_certification_type_3_cancels(client: TestClient) -> None:
    post(client, "Claim/$submit", bundle("pended"))
    case = only_case(client)
    cancel = bundle("pended")
    claim = cancel["entry"][0]["resource"]
    claim["identifier"][0]["value"] = "PAS-2026-0002-C"
    claim["related"] = [{"claim": {"identifier": {"value": "PAS-2026-0002"}}}]
    claim["extension"] = [
        {"url": CERTIFICATION, "valueCodeableConcept": {"coding": [{"code": "3"}]}}
    ]
    answer = post(client, "Claim/$submit", cancel)
    assert answer.status_code == 200, answer.text
    resource = claim_response(answer.json())
    assert resource["status"] == "cancelled"
    assert any("cancelled at the submitter's request" in t for t in notes(resource))
    assert client.get("/v1/queue", headers=auth("md1")).json() == []
    read = client.get(f"/v1/requests/{case['case_id']}", headers=auth("clinic")).json()
    assert read["status"] == "cancelled"
    # Cancelling again answers the same.
    assert post(client, "Claim/$submit", cancel).json() == answer.json()


def test_refusals_are_operation_outcomes_naming_the_element(client: TestClient) -> None:
    invalid = post(client, "Claim/$submit", bundle("invalid"))
    assert invalid.status_code == 400
    outcome = invalid.json()
    assert outcome["resourceType"] == "OperationOutcome"
    paths = {p for issue in outcome["issue"] for p in issue.get("expression", ())}
    assert "Bundle.entry[0].resource.use" in paths
    for body in (b"{not json", b"[]", b"", b'{"resourceType": "Patient"}'):
        answer = post(client, "Claim/$submit", body)
        assert answer.status_code == 400, body
        assert answer.json()["resourceType"] == "OperationOutcome"
    nobody = client.post("/fhir/Claim/$submit", content=b"{}")
    assert nobody.status_code == 401 and nobody.json()["resourceType"] == "OperationOutcome"
    pharmacist = post(client, "Claim/$submit", bundle("approvable"), who="pharmacist")
    assert pharmacist.status_code == 403
    post(client, "Claim/$submit", bundle("pended"))
    changed = bundle("pended")
    changed["entry"][0]["resource"]["created"] = "2026-11-21T10:00:00Z"
    conflict = post(client, "Claim/$submit", changed)
    assert conflict.status_code == 409
    assert conflict.json()["issue"][0]["expression"] == ["Bundle.entry[0].resource.identifier"]


def test_a_fhir_submission_is_audited_like_a_rest_one(client: TestClient, env: Env) -> None:
    post(client, "Claim/$submit", bundle("approvable"))
    count, broken = env.service.verify_audit()
    assert broken is None and count > 0
    case = client.get("/v1/authorizations?member_id=M-000-0001", headers=auth("clinic")).json()
    assert case[0]["source"] == "automatic"


def test_a_bundle_stored_in_another_spelling_is_still_the_same_bundle(
    client: TestClient, env: Env
) -> None:
    # A small decimal is spelled 1e-07 by the standard library and 1e-7 by orjson: a claim
    # stored before the store wrote bundles with orjson must still answer its repeats.
    sent = bundle("approvable")
    sent["entry"][0]["resource"]["total"] = {"value": 1e-07, "currency": "USD"}
    first = post(client, "Claim/$submit", sent)
    assert first.status_code == 200
    older = json.dumps(sent, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    with env.service.database.engine.begin() as connection:
        connection.execute(
            text("UPDATE fhir_claims SET bundle_json = :text, submission_hash = :hash"),
            {"text": older, "hash": "sha256:" + hashlib.sha256(older.encode()).hexdigest()},
        )
    again = post(client, "Claim/$submit", sent)
    assert again.status_code == 200 and again.json() == first.json()
    changed = copy.deepcopy(sent)
    changed["entry"][0]["resource"]["total"]["value"] = 2e-07
    assert post(client, "Claim/$submit", changed).status_code == 409
