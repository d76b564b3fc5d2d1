"""Rate limits per account (PRIORAUTH_RATE_LIMIT): 429 with Retry-After, on both APIs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from priorauth.entrypoints.api import create_app
from priorauth.service.config import Settings
from priorauth.service.runtime import open_service
from tests.service_fixtures import ROOT, TOKENS, auth


def test_an_account_over_its_limit_waits_and_others_do_not(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'throttle.db'}",
        policy_dir=ROOT / "policies",
        rate_limit="3/minute",
    )
    service = open_service(settings)
    service.add_user("clinic", "submitter", "Sunrise Oncology", token=TOKENS["clinic"])
    service.add_user("admin", "admin", token=TOKENS["admin"])
    bundle = json.loads((ROOT / "examples" / "fhir" / "pas-approvable.json").read_text())
    try:
        with TestClient(create_app(service)) as client:
            for _ in range(3):
                answer = client.get("/v1/queue", headers=auth("admin"))
                assert answer.status_code == 200
            over = client.get("/v1/queue", headers=auth("admin"))
            assert over.status_code == 429
            assert 1 <= int(over.headers["Retry-After"]) <= 60
            assert "rate limit" in over.json()["title"]
            # Each account counts apart: the clinic is still within its own limit ...
            first = client.post("/fhir/Claim/$submit", json=bundle, headers=auth("clinic"))
            assert first.status_code == 200, first.text
            for _ in range(2):
                client.post("/fhir/Claim/$inquire", json=bundle, headers=auth("clinic"))
            # ... until it is over it too, and the FHIR API answers with an OperationOutcome.
            refused = client.post("/fhir/Claim/$submit", json=bundle, headers=auth("clinic"))
            assert refused.status_code == 429
            assert refused.json()["resourceType"] == "OperationOutcome"
            assert refused.json()["issue"][0]["code"] == "throttled"
            assert "Retry-After" in refused.headers
            # An unknown token is refused as before, never counted against anyone.
            assert client.get("/v1/queue", headers={"Authorization": "Bearer x"}).status_code == 401
    finally:
        service.close()


def test_a_limit_that_does_not_read_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="PRIORAUTH_RATE_LIMIT 'fast' is not a rate limit"):
        Settings.from_env({"PRIORAUTH_RATE_LIMIT": "fast"})
    assert Settings.from_env({"PRIORAUTH_RATE_LIMIT": "20/second;1000/hour"}).rate_limit
    assert Settings.from_env({"PRIORAUTH_RATE_LIMIT": "off"}).rate_limit is None
