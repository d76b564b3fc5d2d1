"""DTR over HTTP: the questionnaire package for an order, pre-filled from the data sent; the
completed form, attached to a PAS Claim, fills the request's answers; ValueSets, Libraries,
the CapabilityStatement, and FHIR errors as OperationOutcomes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from priorauth.adapters.fhir import dtr
from tests.crd_fixtures import CHARTS, hook_call, remove_condition, resources, without_answers
from tests.integration.test_crd_api import call, coverage
from tests.service_fixtures import auth

PACKAGE = "/fhir/Questionnaire/$questionnaire-package"


def post(client: TestClient, path: str, body: dict[str, Any]) -> Any:
    headers = {**auth("clinic"), "Content-Type": "application/fhir+json"}
    return client.post(path, content=json.dumps(body).encode(), headers=headers)


def stage_unknown() -> dict[str, Any]:
    return without_answers(remove_condition(CHARTS["ixempra"](), "C78"))


def parameters(bundle: dict[str, Any], canonical: str | None = None) -> dict[str, Any]:
    """$questionnaire-package Parameters: the order and the chart's resources as data."""
    found = [
        r for r in resources(bundle) if r["resourceType"] not in ("Claim", "QuestionnaireResponse")
    ]
    params: list[dict[str, Any]] = []
    for resource in found:
        name = "order" if resource["resourceType"] == "MedicationRequest" else "data"
        params.append({"name": name, "resource": resource})
    if canonical:
        params.append({"name": "questionnaire", "valueCanonical": canonical})
    return {"resourceType": "Parameters", "parameter": params}


def package_of(answer: Any) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["resourceType"] == "Parameters"
    (parameter,) = body["parameter"]
    bundle: dict[str, Any] = parameter["resource"]
    dtr.validate(bundle)
    return bundle


def by_type(bundle: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for entry in bundle["entry"]:
        found.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"])
    return found


def test_the_package_for_an_order_asks_what_the_chart_leaves_open(client: TestClient) -> None:
    bundle = package_of(post(client, PACKAGE, parameters(stage_unknown())))
    found = by_type(bundle)
    (questionnaire,) = found["Questionnaire"]
    assert {i["linkId"] for i in questionnaire["item"]} == {
        "metastatic",
        "recurrent_unresectable_locoregional",
        "no_response_to_preoperative_therapy",
    }
    (library,) = found["Library"]
    assert questionnaire["extension"][0]["valueCanonical"] == library["url"]
    assert any(v["id"] == "ixempra-metastatic" for v in found["ValueSet"])
    (response,) = found["QuestionnaireResponse"]
    assert response["questionnaire"] == f"{questionnaire['url']}|{questionnaire['version']}"
    assert response["status"] == "in-progress"
    # Nothing on the form is known from the chart: nothing is pre-filled.
    assert all("answer" not in item for item in response["item"])


def test_the_whole_form_is_prefilled_from_the_data_sent(client: TestClient) -> None:
    chart = remove_condition(CHARTS["ixempra"](), "C78")
    bundle = package_of(
        post(client, PACKAGE, parameters(chart, "http://testserver/fhir/Questionnaire/ixempra"))
    )
    (response,) = by_type(bundle)["QuestionnaireResponse"]
    answers = {i["linkId"]: i.get("answer") for i in response["item"]}
    assert answers["metastatic"] is None  # no secondary-site code: unknown, not "no"
    with_site = CHARTS["ixempra"]()
    bundle = package_of(
        post(client, PACKAGE, parameters(with_site, "http://testserver/fhir/Questionnaire/ixempra"))
    )
    (response,) = by_type(bundle)["QuestionnaireResponse"]
    answers = {i["linkId"]: i.get("answer") for i in response["item"]}
    assert answers["metastatic"] == [{"valueBoolean": True}]


def test_the_completed_form_in_a_pas_claim_fills_the_answers(client: TestClient) -> None:
    chart = stage_unknown()
    unanswered = post(client, "/fhir/Claim/$submit", stage_unknown())
    assert "A4" in json.dumps(unanswered.json()["entry"][0]["resource"]["item"])
    chart["entry"][0]["resource"]["identifier"][0]["value"] += "-with-dtr"
    # CRD first: auth-needed, and the form's canonical.
    crd = coverage(call(client, hook_call(chart)).json())
    assert crd["pa-needed"] == "auth-needed"
    bundle = package_of(post(client, PACKAGE, parameters(chart, crd["questionnaire"])))
    (response,) = by_type(bundle)["QuestionnaireResponse"]
    for item in response["item"]:
        if item["linkId"] == "metastatic":
            item["answer"] = [{"valueBoolean": True}]
    response["status"] = "completed"
    response["author"] = {"reference": "Practitioner/prac-1"}
    dtr.validate(response)
    # The DTR bundle (form and answers) rides in the PAS request, referred to by the Claim.
    dtr_bundle = {
        "resourceType": "Bundle",
        "id": "dtr-answers",
        "type": "collection",
        "entry": [{"resource": e["resource"]} for e in bundle["entry"][:1]]
        + [{"resource": response}],
    }
    chart["entry"].append(
        {"fullUrl": "https://provider.example.org/fhir/Bundle/dtr-answers", "resource": dtr_bundle}
    )
    claim = chart["entry"][0]["resource"]
    claim["supportingInfo"] = [
        {
            "sequence": 1,
            "category": {
                "coding": [
                    {
                        "system": "http://hl7.org/us/davinci-pas/CodeSystem/PASSupportingInfoType",
                        "code": "additionalInformation",
                    }
                ]
            },
            "valueReference": {"reference": "Bundle/dtr-answers"},
        }
    ]
    answer = post(client, "/fhir/Claim/$submit", chart)
    assert answer.status_code == 200, answer.text
    claim_response = answer.json()["entry"][0]["resource"]
    assert claim_response["outcome"] == "complete"
    assert "A1" in json.dumps(claim_response["item"])


def test_value_sets_and_libraries_are_read_and_expanded(client: TestClient) -> None:
    value_set = client.get("/fhir/ValueSet/eribulin-child-pugh-class")
    assert value_set.status_code == 200
    expanded = client.get("/fhir/ValueSet/eribulin-child-pugh-class/$expand")
    assert [c["code"] for c in expanded.json()["expansion"]["contains"]] == ["none", "A", "B", "C"]
    by_url = client.get(
        "/fhir/ValueSet/$expand", params={"url": value_set.json()["url"] + "|2026.03.02"}
    )
    assert by_url.json()["expansion"] == expanded.json()["expansion"]
    library = client.get("/fhir/Library/eribulin")
    assert library.status_code == 200
    dtr.validate(library.json())


def test_questionnaire_errors_are_logged_without_their_text(client: TestClient) -> None:
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "questionnaire",
                "valueCanonical": "http://testserver/fhir/Questionnaire/ixempra",
            },
            {
                "name": "outcome",
                "resource": {
                    "resourceType": "OperationOutcome",
                    "issue": [
                        {"severity": "error", "code": "exception", "diagnostics": "age_years: null"}
                    ],
                },
            },
        ],
    }
    answer = post(client, "/fhir/$log-questionnaire-errors", body)
    assert answer.status_code == 200, answer.text
    assert (
        post(client, "/fhir/$log-questionnaire-errors", {"resourceType": "Parameters"}).status_code
        == 400
    )


def test_the_capability_statement_names_the_operations_and_guides(client: TestClient) -> None:
    answer = client.get("/fhir/metadata")
    assert answer.status_code == 200
    statement = answer.json()
    dtr_ops = {
        op["name"]
        for resource in statement["rest"][0]["resource"]
        for op in resource.get("operation", ())
    }
    assert {
        "submit",
        "inquire",
        "questionnaire-package",
        "log-questionnaire-errors",
        "expand",
    } <= dtr_ops
    assert any("davinci-crd" in guide for guide in statement["implementationGuide"])
    from fhir.resources.R4B.capabilitystatement import CapabilityStatement

    CapabilityStatement.model_validate(statement)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/fhir/Nothing/1", 404),
        ("get", "/fhir/Questionnaire/unknown-form", 404),
        ("get", "/fhir/Library/unknown", 404),
        ("get", "/fhir/ValueSet/unknown/$expand", 404),
        ("delete", "/fhir/metadata", 405),
        ("get", "/fhir/Claim/$submit", 405),
        ("get", "/cds-services/priorauth-order-sign", 405),
    ],
)
def test_fhir_404_and_405_are_operation_outcomes(
    client: TestClient, method: str, path: str, status: int
) -> None:
    answer = getattr(client, method)(path, headers=auth("clinic"))
    assert answer.status_code == status
    assert answer.json()["resourceType"] == "OperationOutcome"


def test_other_404s_keep_their_shape(client: TestClient) -> None:
    answer = client.get("/v1/nothing-here")
    assert answer.status_code == 404
    assert answer.json() == {"detail": "Not Found"}
