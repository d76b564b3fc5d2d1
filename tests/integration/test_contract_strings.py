"""Strings at the contract (#16): a NUL byte or a string longer than the column it would be
stored in is refused with a 422 (an OperationOutcome on the FHIR routes) before the database
sees it. On PostgreSQL each of these was a 500: it refuses NUL in text and over-long varchars.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import String
from typer.testing import CliRunner

from priorauth import sizes
from priorauth.adapters.store import Base
from priorauth.engine.request import Request
from priorauth.entrypoints.api.app import DecisionBody, Submission
from priorauth.entrypoints.cli import app as cli
from tests.conftest import example
from tests.integration.test_fhir_api import bundle, post
from tests.integration.test_fhir_subscriptions import subscription
from tests.service_fixtures import Env, auth

NUL = "\x00"


def _pended(client: TestClient) -> str:
    body = {"member_id": "M-1", "request": example("07-pended-dose-exception.json")}
    response = client.post("/v1/requests", json=body, headers=auth("clinic"))
    assert response.status_code == 201, response.text
    return str(response.json()["case_id"])


@pytest.mark.parametrize(
    ("path", "who"),
    [
        ("/v1/authorizations?member_id=M%001", "clinic"),
        ("/v1/queue?queue=pharm%00acist", "pharmacist"),
        ("/v1/requests?request_id=PA%001", "clinic"),
        ("/v1/policies/ixem%00pra", "clinic"),
        ("/v1/requests/ab%00cd", "clinic"),
    ],
)
def test_a_nul_in_a_query_or_path_is_a_422(client: TestClient, path: str, who: str) -> None:
    response = client.get(path, headers=auth(who))
    assert response.status_code == 422, response.text
    assert "NUL" in response.text


def test_a_nul_in_a_review_reason_is_a_422_naming_the_field(client: TestClient) -> None:
    case_id = _pended(client)
    for route, body, who in (
        ("decision", {"action": "deny", "reason": f"no{NUL}", "criterion": "A"}, "md1"),
        ("extension", {"reason": f"more{NUL}time"}, "pharmacist"),
        ("appeal", {"reason": NUL}, "clinic"),
    ):
        response = client.post(f"/v1/requests/{case_id}/{route}", json=body, headers=auth(who))
        assert response.status_code == 422, (route, response.text)
        assert response.json()["detail"][0]["field"] == "reason", response.text
    # Nothing happened to the case.
    case = client.get(f"/v1/requests/{case_id}", headers=auth("clinic")).json()
    assert case["status"] == "pended" and case["extended"] is False


def test_a_nul_anywhere_in_a_submitted_request_is_a_422(client: TestClient) -> None:
    request = example("03-continuation-approved.json")
    request["prior_authorization_id"] = f"PA{NUL}1"
    response = client.post(
        "/v1/requests", json={"member_id": "M-1", "request": request}, headers=auth("clinic")
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == "request.prior_authorization_id"


def test_an_over_long_review_field_is_a_422(client: TestClient) -> None:
    case_id = _pended(client)
    criterion = "A" * (sizes.CRITERION + 1)
    body = {"action": "deny", "reason": "not met", "criterion": criterion}
    response = client.post(f"/v1/requests/{case_id}/decision", json=body, headers=auth("md1"))
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == "criterion"


def test_a_201_character_claim_identifier_is_an_operation_outcome(client: TestClient) -> None:
    document = bundle("approvable")
    claim = document["entry"][0]["resource"]
    claim["identifier"][0]["value"] = "C" * (sizes.CLAIM_IDENTIFIER + 1)
    for operation in ("Claim/$submit", "Claim/$inquire"):
        answer = post(client, operation, document)
        assert answer.status_code in (400, 422), answer.text
        outcome = answer.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert "identifier" in outcome["issue"][0]["expression"][0]
    # One character less is stored.
    claim["identifier"][0]["value"] = "C" * sizes.CLAIM_IDENTIFIER
    assert post(client, "Claim/$submit", document).status_code == 200


def test_a_nul_in_a_fhir_identifier_is_an_operation_outcome(client: TestClient) -> None:
    document = bundle("approvable")
    document["entry"][0]["resource"]["identifier"][0]["value"] = f"CLAIM{NUL}1"
    for operation in ("Claim/$submit", "Claim/$inquire"):
        answer = post(client, operation, document)
        assert answer.status_code in (400, 422), answer.text
        outcome = answer.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert "NUL" in outcome["issue"][0]["diagnostics"]
        assert outcome["issue"][0]["expression"][0].startswith("Bundle.entry[0].resource.identif")


def test_a_2100_character_subscription_endpoint_is_an_operation_outcome(
    client: TestClient,
) -> None:
    endpoint = "http://127.0.0.1:9/" + "x" * 2100
    answer = post(client, "Subscription", subscription(endpoint))
    assert answer.status_code in (400, 422), answer.text
    assert answer.json()["issue"][0]["expression"] == ["Subscription.channel.endpoint"]
    nul = post(client, "Subscription", subscription(f"http://127.0.0.1:9/a{NUL}b"))
    assert nul.status_code in (400, 422), nul.text


def _schema_max(schema: dict[str, Any], name: str) -> int:
    field = schema["properties"][name]
    for option in field.get("anyOf", [field]):
        if "maxLength" in option:
            return int(option["maxLength"])
    raise AssertionError(f"{name} has no maxLength: {json.dumps(field)}")


def test_the_contract_lengths_are_the_column_lengths() -> None:
    """The contract takes what the columns hold, and no more (one place: priorauth.sizes)."""
    columns = {
        f"{table.name}.{column.name}": column.type.length
        for table in Base.metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, String) and column.type.length
    }
    assert columns["cases.request_id"] == _schema_max(Request.model_json_schema(), "request_id")
    assert columns["cases.member_id"] == _schema_max(Submission.model_json_schema(), "member_id")
    decision = DecisionBody.model_json_schema()
    assert columns["reviews.criterion"] == _schema_max(decision, "criterion")
    assert columns["reviews.dose_rule"] == _schema_max(decision, "dose_rule")
    assert columns["fhir_claims.claim_identifier"] == sizes.CLAIM_IDENTIFIER
    assert columns["fhir_subscriptions.endpoint"] == sizes.SUBSCRIPTION_ENDPOINT


def test_account_fields_longer_than_their_columns_are_refused_in_one_line(env: Env) -> None:
    runner = CliRunner()
    url = ["--database-url", env.url]
    for args, field in (
        (["users", "add", "n" * (sizes.ACCOUNT_NAME + 1), "--role", "admin"], "name"),
        (["users", "add", "a", "--role", "submitter", "--organization", "o" * 201], "organization"),
        (["users", "add", "x\x00y", "--role", "admin"], "name"),
    ):
        result = runner.invoke(cli, [*args, *url])
        assert result.exit_code == 2, result.output
        assert field in result.output and "Traceback" not in result.output
