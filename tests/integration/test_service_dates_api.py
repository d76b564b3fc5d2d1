"""Service dates through the HTTP API: a retro request, and one starting years ahead, reach the
intake queue with the reason and the field named; never an authorization."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import example
from tests.service_fixtures import auth


@pytest.mark.parametrize(
    ("start", "words"), [("2023-12-01", "days before"), ("2029-12-01", "days after")]
)
def test_a_start_outside_the_window_is_pended_for_intake(
    client: TestClient, start: str, words: str
) -> None:
    request = example("01-approved-every-3-weeks.json")
    request["service"]["start_date"] = start
    response = client.post(
        "/v1/requests", json={"member_id": "M-7", "request": request}, headers=auth("clinic")
    )
    assert response.status_code == 201, response.text
    case = response.json()
    assert case["status"] == "pended"
    assert case["authorizations"] == []
    determination = case["determination"]
    assert determination["reasons"][0] == "service-date"
    assert determination["route"] == "intake"
    assert f"service.start_date {start} is" in determination["summary"]
    assert words in determination["summary"]
    queue = client.get("/v1/queue?queue=intake", headers=auth("pharmacist")).json()
    assert case["case_id"] in [item["case_id"] for item in queue]
