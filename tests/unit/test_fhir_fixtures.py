"""The HL7 Da Vinci reference implementation's fixtures: each gets a well-formed answer.

A request bundle is either mapped (one request per Claim item) or answered with an
OperationOutcome naming the elements at fault; nothing raises. The tests skip when the shared
fixture folder is absent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome

import priorauth
from priorauth import PolicySet
from priorauth.adapters.fhir import Submission, map_bundle, submit
from tests.unit.test_fhir_support import CREATED, fixtures_dir

FIXTURES = fixtures_dir()
FILES = sorted(FIXTURES.glob("*.json")) if FIXTURES is not None else []
needs_fixtures = pytest.mark.skipif(
    FIXTURES is None, reason="shared/fixtures/davinci-prior-auth is not beside the repository"
)

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


def _load(name: str) -> dict[str, Any]:
    assert FIXTURES is not None
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


@needs_fixtures
@pytest.mark.parametrize("path", FILES or [Path("none")], ids=lambda p: p.name)
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
    expected = EXPECTED.get(path.name)
    if expected is not None:
        status, first = expected
        assert answer.status == status
        if first is not None:
            assert answer.body["issue"][0]["expression"] == [first]


@needs_fixtures
def test_every_fixture_is_listed() -> None:
    assert sorted(p.name for p in FILES) == sorted(EXPECTED)


@needs_fixtures
def test_a_repaired_reference_bundle_maps_each_item(policies: PolicySet) -> None:
    """bundle-items with its dangling payor references taken out: two items, neither a drug
    a policy governs, so each request is pended `no-policy` (not an error)."""
    bundle = _load("bundle-items.json")
    for entry in bundle["entry"]:
        if "payor" in entry["resource"]:
            entry["resource"]["payor"] = [{"display": "a payer"}]
    submission = map_bundle(bundle, policies)
    assert isinstance(submission, Submission)
    requests = [item.request for item in submission.items]
    assert all(request is not None for request in requests)
    assert [r["drug"] for r in requests if r] == [{"hcpcs": "G0154"}, {"hcpcs": "B4184"}]
    first = requests[0]
    assert first is not None
    assert first["sources"]["patient.birth_date"] == "Patient/pat013.birthDate"
    for request in requests:
        assert priorauth.evaluate(request, policies=policies).reasons == ("no-policy",)
    answer = submit(bundle, policies=policies, created=CREATED)
    assert answer.status == 200
    Bundle.model_validate(answer.body)
    items = answer.body["entry"][0]["resource"]["item"]
    assert [i["itemSequence"] for i in items] == [1, 2]
