"""The PAS rules on a request bundle: every problem collected with its FHIRPath, never raised."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome
from pydantic import ValidationError

from priorauth.adapters.fhir import PasBundle, Rejected, operation_outcome, read_bundle
from priorauth.adapters.fhir.bundle import _shell_problems
from priorauth.adapters.fhir.problems import problems_from_validation
from tests.unit.test_fhir_support import fhir_example, remove, resource


def rejected(data: object) -> dict[str, str]:
    """The problems of a rejected bundle, as {path: message}."""
    result = read_bundle(data)
    assert isinstance(result, Rejected), "expected the bundle to be rejected"
    outcome = operation_outcome(result.problems)
    OperationOutcome.model_validate(outcome)
    return {p.path: p.message for p in result.problems}


def test_the_approvable_example_passes() -> None:
    result = read_bundle(fhir_example("pas-approvable.json"))
    assert isinstance(result, PasBundle)
    assert result.claim.id == "claim-1"
    assert [p for p in result.problems if p.blocking] == []


@pytest.mark.parametrize(
    "data",
    [b"{not json", "[]", 42, None, {"resourceType": "Claim"}, {"no": "type"}],
)
def test_what_is_not_a_bundle_is_rejected(data: object) -> None:
    assert list(rejected(data)) == ["Bundle"]


def test_json_text_and_bytes_are_read() -> None:
    text = json.dumps(fhir_example("pas-approvable.json"))
    assert isinstance(read_bundle(text), PasBundle)
    assert isinstance(read_bundle(text.encode()), PasBundle)


def test_an_empty_bundle_names_its_entries() -> None:
    assert "Bundle.entry" in rejected({"resourceType": "Bundle", "type": "collection"})


def test_unknown_and_missing_resource_types_are_named() -> None:
    bundle = fhir_example("pas-approvable.json")
    bundle["entry"][3]["resource"]["resourceType"] = "Nonsense"
    del bundle["entry"][4]["resource"]["resourceType"]
    bundle["entry"][5] = {"fullUrl": "x"}
    problems = rejected(bundle)
    assert (
        "Nonsense is not a FHIR R4 resource type"
        in problems["Bundle.entry[3].resource.resourceType"]
    )
    assert "Bundle.entry[4].resource.resourceType" in problems
    assert "Bundle.entry[5].resource" in problems


def test_the_claim_comes_first() -> None:
    bundle = fhir_example("pas-approvable.json")
    bundle["entry"].append(bundle["entry"].pop(0))
    problems = rejected(bundle)
    assert problems["Bundle.entry[0].resource"] == "the first entry of a PAS request is the Claim"


def test_a_bundle_without_a_claim() -> None:
    bundle = fhir_example("pas-approvable.json")
    bundle["entry"].pop(0)
    assert "no Claim" in rejected(bundle)["Bundle.entry[0].resource"]


def test_one_claim_only() -> None:
    bundle = fhir_example("pas-approvable.json")
    second = json.loads(json.dumps(bundle["entry"][0]))
    second["resource"]["id"] = "claim-2"
    second["fullUrl"] = "urn:uuid:8d1f3f5e-3c1a-4b8e-9d7e-0a0b0c0d0e0f"
    bundle["entry"].append(second)
    last = len(bundle["entry"]) - 1
    assert rejected(bundle)[f"Bundle.entry[{last}].resource"] == "a PAS request carries one Claim"


def test_use_must_be_preauthorization() -> None:
    bundle = fhir_example("pas-approvable.json")
    resource(bundle, "Claim/claim-1")["use"] = "claim"
    assert "preauthorization" in rejected(bundle)["Bundle.entry[0].resource.use"]


def test_the_claim_needs_an_item() -> None:
    bundle = fhir_example("pas-approvable.json")
    del resource(bundle, "Claim/claim-1")["item"]
    assert "Bundle.entry[0].resource.item" in rejected(bundle)


def test_sequences_are_unique() -> None:
    bundle = fhir_example("pas-approvable.json")
    claim = resource(bundle, "Claim/claim-1")
    claim["supportingInfo"].append(dict(claim["supportingInfo"][0]))
    claim["item"].append(dict(claim["item"][0]))
    problems = rejected(bundle)
    assert "used twice" in problems["Bundle.entry[0].resource.supportingInfo[1].sequence"]
    assert "used twice" in problems["Bundle.entry[0].resource.item[1].sequence"]


def test_each_resource_once() -> None:
    bundle = fhir_example("pas-approvable.json")
    bundle["entry"].append(json.loads(json.dumps(bundle["entry"][1])))
    last = len(bundle["entry"]) - 1
    problems = rejected(bundle)
    assert list(problems) == [f"Bundle.entry[{last}].resource"]
    assert "appears more than once" in problems[f"Bundle.entry[{last}].resource"]


def test_every_reference_resolves_inside_the_bundle() -> None:
    bundle = fhir_example("pas-approvable.json")
    remove(bundle, "Condition/cond-2")
    problems = rejected(bundle)
    path = "Bundle.entry[0].resource.diagnosis[1].diagnosisReference.reference"
    assert list(problems) == [path]
    assert problems[path].startswith("the Condition referred to is not in the bundle")


def test_references_by_full_url_uuid_and_contained_resolve() -> None:
    bundle = fhir_example("pas-approvable.json")
    bundle["entry"][1]["fullUrl"] = "urn:uuid:0c8a0a8e-2f49-4c1e-9f58-8d0b4a7c5b11"
    claim = resource(bundle, "Claim/claim-1")
    claim["patient"] = {"reference": "urn:uuid:0c8a0a8e-2f49-4c1e-9f58-8d0b4a7c5b11"}
    claim["insurer"] = {"reference": "https://provider.example.org/fhir/Organization/payer-1"}
    order = resource(bundle, "MedicationRequest/order-1")
    order["contained"] = [
        {"resourceType": "Medication", "id": "med", "code": {"text": "ixabepilone"}}
    ]
    order["medicationReference"] = {"reference": "#med"}
    del order["medicationCodeableConcept"]
    assert isinstance(read_bundle(bundle), PasBundle)


def test_model_errors_carry_the_element_path_and_never_the_value() -> None:
    bundle = fhir_example("pas-approvable.json")
    resource(bundle, "Patient/pat-1")["birthDate"] = "1968-13-45"
    resource(bundle, "Condition/cond-1")["verificationStatus"] = "confirmed"
    resource(bundle, "Coverage/cov-1")["payor"] = {"reference": "Organization/payer-1"}
    result = read_bundle(bundle)
    assert isinstance(result, Rejected)
    paths = {p.path for p in result.problems}
    assert "Bundle.entry[1].resource.birthDate" in paths
    assert "Bundle.entry[7].resource.verificationStatus" in paths
    assert "Bundle.entry[4].resource.payor" in paths
    assert all("1968-13-45" not in p.message for p in result.problems)


def test_a_non_collection_bundle_is_a_warning() -> None:
    bundle = fhir_example("pas-approvable.json")
    bundle["type"] = "batch"
    result = read_bundle(bundle)
    assert isinstance(result, PasBundle)
    assert [(p.path, p.severity) for p in result.problems] == [("Bundle.type", "warning")]


def test_operation_outcome_lists_errors_first_and_validates() -> None:
    result = read_bundle(fhir_example("pas-invalid.json"))
    assert isinstance(result, Rejected)
    outcome: dict[str, Any] = operation_outcome(result.problems)
    OperationOutcome.model_validate(outcome)
    assert {i["severity"] for i in outcome["issue"]} == {"error"}
    assert all(i["expression"][0].startswith("Bundle") for i in outcome["issue"])


def test_an_empty_outcome_still_validates() -> None:
    OperationOutcome.model_validate(operation_outcome([]))


def test_a_claim_without_its_patient_is_refused_naming_the_element() -> None:
    # Found by the mutation fuzz: the models accept a Claim without `patient`, the mapper did not.
    bundle = fhir_example("pas-approvable.json")
    del bundle["entry"][0]["resource"]["patient"]
    assert "Bundle.entry[0].resource.patient" in rejected(bundle)


def _model_shell_problems(bundle: dict[str, Any]) -> list[tuple[str, str]]:
    """The Bundle model's own verdict on the bundle's elements, its entries without resources."""
    shell = {k: v for k, v in bundle.items() if k != "entry"}
    shell["entry"] = [{k: v for k, v in e.items() if k != "resource"} for e in bundle["entry"]]
    try:
        Bundle.model_validate(shell)
    except ValidationError as exc:
        return [(p.path, p.message) for p in problems_from_validation("Bundle", exc)]
    return []


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"fullUrl": ""},
        {"fullUrl": "not a uri, with spaces"},
        {"fullUrl": "urn:uuid:0c8a0a8e-2f49-4c1e-9f58-8d0b4a7c5b11"},
        {"fullUrl": 5},
        {"fullUrl": None},
        {"fullUrl": ["x"]},
        {"search": {"mode": "match"}},
        {"search": {"mode": "nonsense"}},
        {"request": {"method": "POST"}},
        {"unknown": 1},
        {"type": "no such type"},
        {"timestamp": "yesterday"},
    ],
)
def test_bundle_elements_are_judged_as_the_bundle_model_judges_them(
    change: dict[str, Any],
) -> None:
    # Entries of a resource and a fullUrl alone have their fullUrls checked in one call, not a
    # BundleEntry model each: the problems must stay those of the model, path for path.
    bundle = fhir_example("pas-approvable.json")
    for name, value in change.items():
        if name in ("type", "timestamp"):
            bundle[name] = value
        else:
            bundle["entry"][2][name] = value
    found = [(p.path, p.message) for p in _shell_problems(bundle, bundle["entry"])]
    assert found == _model_shell_problems(bundle)


def test_an_unresolved_reference_is_named_among_resolved_ones() -> None:
    bundle = fhir_example("pas-approvable.json")
    order = resource(bundle, "MedicationRequest/order-1")
    order["reasonReference"] = [
        {"reference": "Condition/cond-1"},
        {"reference": "Condition/elsewhere"},
        {"reference": "#nothing-contained"},
    ]
    problems = rejected(bundle)
    where = "Bundle.entry[9].resource.reasonReference"
    assert sorted(problems) == [f"{where}[1].reference", f"{where}[2].reference"]
