"""Subscriptions end to end with a real HTTP subscriber on 127.0.0.1: a pended FHIR request is
decided by a person, the notification waits in the outbox while the subscriber is down, and
arrives (with the full PAS response bundle) once it is up, even across a restart."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from priorauth.adapters.fhir import validate_response
from priorauth.devserver import free_port
from priorauth.entrypoints.api import create_app
from priorauth.service.config import Settings
from priorauth.service.outbox import OutboxWorker
from priorauth.service.runtime import open_service
from tests.integration.test_fhir_api import action, bundle, claim_response, only_case, post
from tests.service_fixtures import Env, auth

ROOT = Path(__file__).resolve().parents[2]
TOPIC = "http://hl7.org/fhir/us/davinci-pas/SubscriptionTopic/PASSubscriptionTopic"
CONTENT = (
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content"
)


class Subscriber:
    """A rest-hook endpoint on loopback that records what it is sent (by path)."""

    def __init__(
        self, port: int, status: int = 200, host: str = "127.0.0.1", location: str = ""
    ) -> None:
        self.received: list[tuple[str, dict[str, Any], str]] = []
        self.headers: list[dict[str, str]] = []
        self.status = status
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                outer.received.append((self.path, body, self.headers.get("Content-Type", "")))
                outer.headers.append(dict(self.headers))
                self.send_response(outer.status)
                if location:
                    self.send_header("Location", location)
                self.end_headers()

            def do_GET(self) -> None:
                # A redirected POST comes back as a GET: record it too.
                outer.received.append((self.path, {}, ""))
                outer.headers.append(dict(self.headers))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def subscribers() -> Iterator[list[Subscriber]]:
    started: list[Subscriber] = []
    yield started
    for subscriber in started:
        subscriber.close()


def subscription(url: str, **channel: Any) -> dict[str, Any]:
    return {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "Updates on pended prior-authorization requests",
        "criteria": TOPIC,
        "channel": {
            "type": "rest-hook",
            "endpoint": url,
            "payload": "application/fhir+json",
            "_payload": {"extension": [{"url": CONTENT, "valueCode": "full-resource"}]},
            **channel,
        },
    }


def deny_the_pended_request(client: TestClient) -> None:
    post(client, "Claim/$submit", bundle("pended"))
    case = only_case(client)
    decided = client.post(
        f"/v1/requests/{case['case_id']}/decision",
        json={"action": "deny", "criterion": "B.i", "reason": "No record of an anthracycline"},
        headers=auth("md1"),
    )
    assert decided.status_code == 200, decided.text


def test_a_subscription_is_registered_for_the_callers_organization(client: TestClient) -> None:
    answer = post(client, "Subscription", subscription("http://127.0.0.1:9/hook"))
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert created["status"] == "active" and created["id"]
    read = client.get(f"/fhir/Subscription/{created['id']}", headers=auth("clinic"))
    assert read.status_code == 200 and read.json() == created
    other = client.get(f"/fhir/Subscription/{created['id']}", headers=auth("other-clinic"))
    assert other.status_code == 404


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"type": "websocket"}, "Subscription.channel.type"),
        ({"endpoint": "ftp://127.0.0.1/hook"}, "Subscription.channel.endpoint"),
        # Notifications carry health information: only hosts the plan allows (loopback here).
        ({"endpoint": "https://collector.example.net/hook"}, "Subscription.channel.endpoint"),
        (
            {"_payload": {"extension": [{"url": CONTENT, "valueCode": "id-only"}]}},
            "Subscription.channel.payload.extension",
        ),
    ],
)
def test_a_subscription_pas_cannot_serve_is_refused_naming_the_element(
    client: TestClient, change: dict[str, Any], path: str
) -> None:
    answer = post(client, "Subscription", subscription("http://127.0.0.1:9/hook", **change))
    assert answer.status_code == 400
    assert [i["expression"] for i in answer.json()["issue"]] == [[path]]
    assert post(client, "Subscription", b"{").status_code == 400


def test_a_notification_waits_for_a_subscriber_that_is_down_and_survives_a_restart(
    client: TestClient, env: Env, port: int, subscribers: list[Subscriber]
) -> None:
    endpoint = f"http://127.0.0.1:{port}/clinic"
    assert post(client, "Subscription", subscription(endpoint)).status_code == 201
    # Another organization's subscription hears nothing of the clinic's requests.
    other = subscription(f"http://127.0.0.1:{port}/other")
    assert post(client, "Subscription", other, who="other-clinic").status_code == 201
    deny_the_pended_request(client)

    worker = OutboxWorker(env.service.database, base_delay=0.05, timeout=2)
    assert worker.deliver_due() == 0  # the subscriber is down: nothing delivered, retry later
    assert worker.deliver_due() == 0  # not due yet (backoff)

    # A restart: a new service and worker on the same database; the subscriber comes up.
    settings = Settings(database_url=env.url, policy_dir=ROOT / "policies")
    restarted = open_service(settings)
    try:
        subscribers.append(Subscriber(port))
        worker = OutboxWorker(restarted.database, base_delay=0.05, timeout=2)
        deadline = time.monotonic() + 10
        delivered = 0
        while not delivered and time.monotonic() < deadline:
            time.sleep(0.06)
            delivered = worker.deliver_due()
        assert delivered == 1
        assert worker.deliver_due() == 0  # delivered once only
    finally:
        restarted.close()

    [(path, notification, content_type)] = subscribers[0].received
    assert path == "/clinic" and content_type == "application/fhir+json"
    assert notification["resourceType"] == "Bundle" and notification["type"] == "history"
    validate_response(notification)
    status, response = (entry["resource"] for entry in notification["entry"])
    assert status["resourceType"] == "Parameters"
    parameters = {p["name"]: p for p in status["parameter"]}
    assert parameters["type"]["valueCode"] == "event-notification"
    assert parameters["events-since-subscription-start"]["valueString"] == "1"
    # The full PAS response bundle: the ClaimResponse says A3 with the reason.
    resource = claim_response(response)
    assert action(resource["item"][0]) == "A3"
    assert any("No record of an anthracycline" in n["text"] for n in resource["processNote"])


def test_a_redirect_is_not_followed_so_no_other_host_hears_the_secret(
    client: TestClient, env: Env, port: int, subscribers: list[Subscriber]
) -> None:
    """An allowed subscriber answering 302 to another address must not make the service call
    it, forwarding the subscription's secret header (issue #16, SSRF)."""
    elsewhere_port = free_port()
    elsewhere = Subscriber(elsewhere_port, host="127.0.0.2")
    subscribers.append(elsewhere)
    target = f"http://127.0.0.2:{elsewhere_port}/internal"
    redirecting = Subscriber(port, status=302, location=target)
    subscribers.append(redirecting)
    endpoint = f"http://127.0.0.1:{port}/hook"
    secret = {"header": ["Authorization: Bearer subscriber-secret"]}
    assert post(client, "Subscription", subscription(endpoint, **secret)).status_code == 201
    deny_the_pended_request(client)
    worker = OutboxWorker(env.service.database, base_delay=0.05, timeout=2)
    assert worker.deliver_due() == 0  # a redirect is not a delivery
    time.sleep(0.2)
    assert len(redirecting.received) == 1
    assert redirecting.headers[0].get("Authorization") == "Bearer subscriber-secret"
    assert elsewhere.received == []  # never called, so never told the secret


def test_the_server_worker_retries_with_backoff_until_the_subscriber_answers(
    client: TestClient, env: Env, port: int, subscribers: list[Subscriber]
) -> None:
    assert post(client, "Subscription", subscription(f"http://127.0.0.1:{port}/")).status_code
    failing = Subscriber(port, status=503)
    subscribers.append(failing)
    deny_the_pended_request(client)
    worker = OutboxWorker(env.service.database, base_delay=0.05, poll_seconds=0.02, timeout=2)
    assert [worker.delay(n).total_seconds() for n in (1, 2, 3)] == [0.05, 0.1, 0.2]
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while len(failing.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(failing.received) >= 2  # refused, then tried again
        failing.status = 200
        tried = len(failing.received)
        while len(failing.received) == tried and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
    finally:
        worker.stop()
    assert len(failing.received) == tried + 1  # accepted once, then no more attempts
    bodies = {json.dumps(body, sort_keys=True) for _, body, _ in failing.received}
    assert len(bodies) == 1  # every attempt carries the same notification


def test_the_app_alone_delivers_nothing_and_a_rest_only_case_notifies_nobody(
    env: Env, port: int, subscribers: list[Subscriber]
) -> None:
    subscribers.append(Subscriber(port))
    with TestClient(create_app(env.service)) as client:
        post(client, "Subscription", subscription(f"http://127.0.0.1:{port}/"))
        request = json.loads(
            (ROOT / "examples" / "04-pended-criteria-not-met-age.json").read_text()
        )
        submitted = client.post(
            "/v1/requests", json={"member_id": "M-1", "request": request}, headers=auth("clinic")
        )
        case_id = submitted.json()["case_id"]
        decided = client.post(
            f"/v1/requests/{case_id}/decision",
            json={"action": "approve"},
            headers=auth("md1"),
        )
        assert decided.status_code == 200
    assert OutboxWorker(env.service.database).deliver_due() == 0
    assert subscribers[0].received == []


def test_a_host_taken_off_the_allow_list_is_not_called(
    client: TestClient, env: Env, port: int, subscribers: list[Subscriber]
) -> None:
    """The allow-list is checked again at delivery, not only when the subscription is made."""
    subscriber = Subscriber(port)
    subscribers.append(subscriber)
    endpoint = f"http://127.0.0.1:{port}/hook"
    assert post(client, "Subscription", subscription(endpoint)).status_code == 201
    deny_the_pended_request(client)
    narrowed = OutboxWorker(env.service.database, base_delay=0.05, allowed_hosts=frozenset({"::1"}))
    assert narrowed.deliver_due() == 0
    assert subscriber.received == []
    with env.service.database.engine.connect() as connection:
        error = connection.execute(text("SELECT last_error FROM fhir_outbox")).scalar_one()
    assert error == "host not allowed (PRIORAUTH_SUBSCRIPTION_HOSTS)"
