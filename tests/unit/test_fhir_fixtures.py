"""The HL7 Da Vinci reference implementation's fixtures: each gets a well-formed answer.

A request bundle is either mapped (one request per Claim item) or answered with an
OperationOutcome naming the elements at fault; nothing raises. The fixtures are kept under
tests/fixtures/davinci-prior-auth (see its README).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome

import priorauth
from priorauth import PolicySet
from priorauth.adapters.fhir import Rejected, Submission, map_bundle, submit
from tests.unit.test_fhir_support import (
    CREATED,
    fhir_example,
    fixtures_dir,
    reference_fixture,
    resource,
)

FILES = sorted(fixtures_dir().glob("*.json"))
# Where a document attached to the approvable example lands: after its own entries.
ATTACHED = f"Bundle.entry[{len(fhir_example('pas-approvable.json')['entry'])}].resource"

# What each fixture gets, and the first element named when it is refused. The reference
# implementation validates only base FHIR, so its bundles break PAS rules we check.
EXPECTED: dict[str, tuple[int, str | None]] = {
    # Coverage.payor points at Organizations the bundle does not carry.
    "bundle-items.json": (400, "Bundle.entry[11].resource.payor[0].reference"),
    # An STU3-style Condition (clinicalStatus as a string), a Coverage without beneficiary.
    "bundle-dtr.json": (400, "Bundle.entry[4].resource.clinicalStatus"),
    "bundle-minimal.json": (400, "Bundle.entry"),
    # DeviceRequest.insurance is not a list; QuestionnaireResponse answers use `integer`.
    "bundle-prior-auth.json": (400, "Bundle.entry[1].resource.insurance"),
    # An older PAS shape: no Claim.item (PAS requires one or more).
    "bundle-request.json": (400, "Bundle.entry[0].resource.item"),
    "cds-hook-order-review.json": (400, "Bundle"),
    "claim-update.json": (400, "Bundle"),
    "claimresponse-pended.json": (400, "Bundle.entry[0].resource"),
    "questionnaireresponse-dtr.json": (400, "Bundle"),
    "subscription-resthook.json": (400, "Bundle"),
}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_fixture_gets_a_well_formed_answer(path: Path, policies: PolicySet) -> None:
    answer = submit(path.read_bytes(), policies=policies, created=CREATED)
    if answer.status == 400:
        OperationOutcome.model_validate(answer.body)
        assert all(issue.get("expression") for issue in answer.body["issue"])
    else:
        assert answer.status == 200
        Bundle.model_validate(answer.body)
        assert answer.submission is not None
        for item in answer.submission.items:
            assert item.request is not None or item.note
    status, first = EXPECTED[path.name]
    assert answer.status == status
    if first is not None:
        assert answer.body["issue"][0]["expression"] == [first]


def test_every_fixture_is_listed() -> None:
    assert sorted(p.name for p in FILES) == sorted(EXPECTED)


def _repaired_items() -> dict[str, Any]:
    """bundle-items with its dangling payor references taken out."""
    bundle = reference_fixture("bundle-items.json")
    for entry in bundle["entry"]:
        if "payor" in entry["resource"]:
            entry["resource"]["payor"] = [{"display": "a payer"}]
    return bundle


def test_a_repaired_reference_bundle_maps_each_item(policies: PolicySet) -> None:
    """Two items, neither a drug a policy governs, so each request is pended `no-policy`
    (not an error). Their codes are HCPCS level II codes sent under the CPT system, read as
    HCPCS; the SNOMED CT conditions are conditions."""
    submission = map_bundle(_repaired_items(), policies)
    assert isinstance(submission, Submission)
    requests = [item.request for item in submission.items]
    assert all(request is not None for request in requests)
    assert [r["service"]["codes"] for r in requests if r] == [
        [{"system": "hcpcs", "code": "G0154"}],
        [{"system": "hcpcs", "code": "B4184"}],
    ]
    first = requests[0]
    assert first is not None
    assert first["sources"]["patient.birth_date"] == "Patient/pat013.birthDate"
    assert {(c["system"], c["code"]) for c in first["conditions"]} >= {
        ("snomed", "87837008"),
        ("snomed", "389087006"),
        ("snomed", "44054006"),
    }
    for request in requests:
        assert priorauth.evaluate(request, policies=policies).reasons == ("no-policy",)
    answer = submit(_repaired_items(), policies=policies, created=CREATED)
    assert answer.status == 200
    Bundle.model_validate(answer.body)
    items = answer.body["entry"][0]["resource"]["item"]
    assert [i["itemSequence"] for i in items] == [1, 2]


def _with_attachment(attachment: dict[str, Any]) -> dict[str, Any]:
    """The approvable example with a document attached to its Claim (supportingInfo)."""
    bundle = fhir_example("pas-approvable.json")
    kind, key = attachment["resourceType"], attachment["id"]
    bundle["entry"].append(
        {"fullUrl": f"https://provider.example.org/fhir/{kind}/{key}", "resource": attachment}
    )
    resource(bundle, "Claim/claim-1")["supportingInfo"].append(
        {
            "sequence": 2,
            "category": {"coding": [{"code": "additionalInformation"}]},
            "valueReference": {"reference": f"{kind}/{key}"},
        }
    )
    return bundle


def _dtr_bundle() -> dict[str, Any]:
    dtr = reference_fixture("bundle-dtr.json")
    dtr["id"] = "dtr-bundle"
    return dtr


def test_the_reference_dtr_bundle_attached_to_a_claim_is_refused_naming_its_stu3_element(
    policies: PolicySet,
) -> None:
    """Its Conditions are STU3-shaped (clinicalStatus a string): the element is named inside
    the attached bundle, so the submitter can find it."""
    mapped = map_bundle(_with_attachment(_dtr_bundle()), policies)
    assert isinstance(mapped, Rejected)
    paths = [p.path for p in mapped.problems if p.blocking]
    assert f"{ATTACHED}.entry[4].resource.clinicalStatus" in paths


def test_the_reference_dtr_bundle_once_repaired_adds_to_the_record(policies: PolicySet) -> None:
    """Its conditions and observations join the request's; its Patient, already in the
    request under another id, is one more resource, not a second patient of the Claim."""
    dtr = _dtr_bundle()
    for entry in dtr["entry"]:
        found = entry["resource"]
        if found["resourceType"] == "Condition":
            found["clinicalStatus"] = {"coding": [{"code": found["clinicalStatus"]}]}
            found["verificationStatus"] = {"coding": [{"code": found["verificationStatus"]}]}
        if found["resourceType"] == "Coverage":
            found.pop("grouping")
            found.update(status="active", beneficiary={"reference": "Patient/pat013"})
            found["payor"] = [{"display": "a payer"}]
    submission = map_bundle(_with_attachment(dtr), policies)
    assert isinstance(submission, Submission), submission.problems
    request = submission.items[0].request
    assert request is not None
    conditions = {(c["system"], c["code"]): c for c in request["conditions"]}
    assert conditions[("icd-10-cm", "J44.9")]["status"] == "active"
    assert ("icd-10-cm", "E11.21") in conditions
    observations = {o["code"]: o for o in request["observations"]}
    assert observations["59408-5"]["value"] == 85 and observations["59408-5"]["unit"] == "%"
    assert observations["31100-1"]["date"] == "2019-03-20"
    index = request["observations"].index(observations["59408-5"])
    assert request["sources"][f"observations[{index}]"] == "Observation/obs013.value"
    assert request["patient"]["birth_date"] == "1968-03-14"  # the Claim's own patient


def test_the_reference_questionnaire_response_is_refused_for_its_r3_answers(
    policies: PolicySet,
) -> None:
    """Its answers use `integer`, not R4's valueInteger: each such element is named."""
    mapped = map_bundle(
        _with_attachment(reference_fixture("questionnaireresponse-dtr.json")), policies
    )
    assert isinstance(mapped, Rejected)
    paths = {p.path for p in mapped.problems if p.blocking}
    assert f"{ATTACHED}.item[3].item[1].answer[0].integer" in paths


def test_the_reference_questionnaire_response_once_repaired_answers_no_question_of_ours(
    policies: PolicySet,
) -> None:
    """Its linkIds (`3.1`, `5.1b`) are its own form's, not question ids: nothing of it is read
    as an answer, and nothing of it is refused; our own form's answers still are."""
    response = reference_fixture("questionnaireresponse-dtr.json")
    repaired = copy.deepcopy(response)

    def fix(items: list[dict[str, Any]]) -> None:
        for item in items:
            for answer in item.get("answer", ()):
                if "integer" in answer:
                    answer["valueInteger"] = int(answer.pop("integer"))
            fix(item.get("item", []))

    fix(repaired["item"])
    submission = map_bundle(_with_attachment(repaired), policies)
    assert isinstance(submission, Submission)
    request = submission.items[0].request
    assert request is not None
    assert set(request["answers"]) == {"metastatic", "recurrent_unresectable_locoregional"}
