"""What a caller learns and leaves behind (#16): no global audit numbers for submitters, no
open benchmark hook, a bounded number of subscriptions, refused reads on the record, and a
rate limit unless an operator turns it off."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from priorauth.service.config import DEFAULT_RATE_LIMIT, Settings
from tests.conftest import example
from tests.integration.test_fhir_api import post
from tests.integration.test_fhir_subscriptions import subscription
from tests.service_fixtures import Env, auth


def _submit(client: TestClient, name: str, who: str = "clinic") -> str:
    body = {"member_id": "M-1", "request": example(name)}
    response = client.post("/v1/requests", json=body, headers=auth(who))
    assert response.status_code == 201, response.text
    return str(response.json()["case_id"])


def test_a_case_history_numbers_its_own_events_not_the_global_trail(
    client: TestClient, env: Env
) -> None:
    # Other organizations' work moves the global trail on; a submitter must not see how far.
    _submit(client, "01-approved-every-3-weeks.json", who="other-clinic")
    case_id = _submit(client, "04-pended-criteria-not-met-age.json")
    for _ in range(2):
        client.get(f"/v1/requests/{case_id}", headers=auth("clinic")).raise_for_status()
    history = client.get(f"/v1/requests/{case_id}", headers=auth("clinic")).json()["history"]
    assert [entry["number"] for entry in history] == list(range(1, len(history) + 1))
    assert all("event" not in entry for entry in history)
    with env.service.database.engine.connect() as connection:
        total = connection.execute(text("SELECT count(*) FROM audit_events")).scalar_one()
    assert len(history) < total


def test_the_benchmark_hook_needs_a_token(client: TestClient) -> None:
    assert client.post("/v1/noop", content=b"{}").status_code == 401
    assert client.post("/v1/noop", content=b"{}", headers=auth("clinic")).json() == {"ok": True}


def test_subscriptions_per_organization_are_limited(client: TestClient, env: Env) -> None:
    limit = env.service.settings.max_subscriptions
    for number in range(limit):
        answer = post(client, "Subscription", subscription(f"http://127.0.0.1:9/{number}"))
        assert answer.status_code == 201, answer.text
    over = post(client, "Subscription", subscription("http://127.0.0.1:9/one-more"))
    assert over.status_code == 422, over.text
    issue = over.json()["issue"][0]
    assert issue["code"] == "business-rule"
    assert f"at most {limit}" in issue["diagnostics"]
    assert "PRIORAUTH_MAX_SUBSCRIPTIONS" in issue["diagnostics"]
    # Another organization has its own allowance.
    other = post(client, "Subscription", subscription("http://127.0.0.1:9/x"), who="other-clinic")
    assert other.status_code == 201, other.text


@pytest.mark.parametrize("route", ["", "/information", "/appeal"])
def test_a_refused_cross_organization_read_is_an_audit_event_without_health_data(
    client: TestClient, env: Env, route: str
) -> None:
    case_id = _submit(client, "06-pended-missing-information.json")
    url = f"/v1/requests/{case_id}{route}"
    if route:
        body = {"request": {}} if route == "/information" else {"reason": "why"}
        refused = client.post(url, json=body, headers=auth("other-clinic"))
    else:
        refused = client.get(url, headers=auth("other-clinic"))
    assert refused.status_code == 404
    with env.service.database.engine.connect() as connection:
        last = connection.execute(
            text(
                "SELECT actor, action, case_id, detail_json FROM audit_events "
                "ORDER BY id DESC LIMIT 1"
            )
        ).one()
    assert (last.actor, last.action) == ("other-clinic", "request.refused")
    detail = json.loads(last.detail_json)
    assert detail == {"case": case_id, "organization": "Harbor Cancer Care", "role": "submitter"}
    # Not in the case's own history (its owner does not learn who probed), and the chain holds.
    assert last.case_id is None
    assert env.service.verify_audit()[1] is None


def test_a_rate_limit_is_on_unless_turned_off() -> None:
    assert Settings.from_env({}).rate_limit == DEFAULT_RATE_LIMIT
    assert Settings.from_env({"PRIORAUTH_RATE_LIMIT": "off"}).rate_limit is None
    assert Settings.from_env({"PRIORAUTH_MAX_SUBSCRIPTIONS": "3"}).max_subscriptions == 3


def test_a_refused_read_of_another_organizations_subscription_is_an_audit_event(
    client: TestClient, env: Env
) -> None:
    created = post(client, "Subscription", subscription("http://127.0.0.1:9/hook")).json()
    url = f"/fhir/Subscription/{created['id']}"
    refused = client.get(url, headers=auth("other-clinic"))
    missing = client.get("/fhir/Subscription/0123456789abcdef", headers=auth("other-clinic"))
    assert refused.status_code == missing.status_code == 404
    assert refused.json() == missing.json()
    with env.service.database.engine.connect() as connection:
        last = connection.execute(
            text("SELECT actor, action, detail_json FROM audit_events ORDER BY id DESC LIMIT 1")
        ).one()
    assert (last.actor, last.action) == ("other-clinic", "fhir.subscription.refused")
    assert json.loads(last.detail_json)["subscription"] == created["id"]
    assert client.get(url, headers=auth("clinic")).status_code == 200
    assert env.service.verify_audit()[1] is None


def test_a_continuation_names_the_authorization_number_it_continues_not_a_row_id(
    client: TestClient,
) -> None:
    first = _submit_request(client, "01-approved-every-3-weeks.json", "PA-2025-000042")
    later = _submit_request(client, "03-continuation-approved.json", None)
    number = first["authorizations"][0]["authorization_id"]
    assert later["authorizations"][0]["continues"] == number
    read = client.get(f"/v1/requests/{later['case_id']}", headers=auth("clinic")).json()
    assert read["authorizations"][0]["continues"] == number


def _submit_request(client: TestClient, name: str, request_id: str | None) -> dict[str, Any]:
    request = example(name)
    if request_id:
        request["request_id"] = request_id
    body = {"member_id": "M-7", "request": request}
    response = client.post("/v1/requests", json=body, headers=auth("clinic"))
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer
