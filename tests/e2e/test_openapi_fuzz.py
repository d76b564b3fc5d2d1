"""Schemathesis against the published OpenAPI, on SQLite and on PostgreSQL: no input, valid or
not, gets a server error. The submission body is published as the whole request contract, so
generated requests reach the engine and the store, not only the 422s."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from priorauth.entrypoints.api import create_app
from priorauth.service.config import Settings
from priorauth.service.runtime import open_service
from tests.conftest import example
from tests.integration.test_store_properties import accepted_requests
from tests.service_fixtures import BACKENDS, ROOT, TOKENS, database_url

# Bounded: a few examples per operation and role keep this under a minute on two cores.
EXAMPLES = 15


@pytest.fixture(scope="module", params=BACKENDS)
def api_schema(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    folder: Path = tmp_path_factory.mktemp("fuzz")
    service = open_service(
        Settings(
            database_url=database_url(request.param, folder),
            policy_dir=ROOT / "policies",
            max_body_bytes=64_000,
        )
    )
    service.add_user("clinic", "submitter", "Sunrise Oncology", token=TOKENS["clinic"])
    service.add_user(
        "pharmacist", "pharmacist", None, "1245319599", "oncology-pharmacy", TOKENS["pharmacist"]
    )
    clinic = service.authenticate(TOKENS["clinic"])
    service.submit(clinic, example("04-pended-criteria-not-met-age.json"), "M-1")
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(service))
    service.close()


MEMBERS = ["M-1", "M-FUZZ", "A" * 64]


def _with_request(generated: tuple[Any, dict[str, Any], str]) -> Any:
    case, request, member = generated
    case.body = {"member_id": member, "request": request}
    return case


def _fuzz(api_schema: Any, who: str) -> int:
    """Run every operation with generated cases; returns how many cases were sent."""
    headers = {"Authorization": f"Bearer {TOKENS[who]}"}
    sent = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()

        strategy = operation.as_strategy()
        if (operation.method.upper(), operation.path) == ("POST", "/v1/requests"):
            # Half the submissions are requests the contract accepts (varied examples), so the
            # engine, the store and the answers are fuzzed too, not only the 422s.
            strategy = st.one_of(
                strategy,
                st.tuples(strategy, accepted_requests(), st.sampled_from(MEMBERS)).map(
                    _with_request
                ),
            )

        @given(case=strategy)
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def run(case: Any) -> None:
            nonlocal sent
            sent += 1
            response = case.call(headers=headers)
            # No 5xx, and every answer is what the OpenAPI document says (the typed responses).
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance]
            )

        run()
    return sent


def test_no_server_errors_for_a_submitter(api_schema: Any) -> None:
    assert _fuzz(api_schema, "clinic") > 50


def test_no_server_errors_for_a_pharmacist(api_schema: Any) -> None:
    assert _fuzz(api_schema, "pharmacist") > 50
