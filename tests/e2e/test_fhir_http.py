"""Whatever is posted to the FHIR endpoints, the answer is a FHIR resource: a PAS response
Bundle (200) or an OperationOutcome with a 4xx, never a server error."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.service_fixtures import auth
from tests.unit.test_fhir_robustness import JSON_VALUES, PATHS, mutated
from tests.unit.test_fhir_support import fixtures_dir

FILES = sorted(fixtures_dir().glob("*.json"))
HEADERS = {**auth("clinic"), "Content-Type": "application/fhir+json"}


def well_formed(answer: Any) -> None:
    assert answer.status_code in (200, 400, 404, 409), answer.text
    assert answer.headers["content-type"].startswith("application/fhir+json")
    if answer.status_code == 200:
        Bundle.model_validate(answer.json())
    else:
        OperationOutcome.model_validate(answer.json())


@settings(
    max_examples=int(os.environ.get("PRIORAUTH_FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    edits=st.lists(st.tuples(st.sampled_from(PATHS), JSON_VALUES), min_size=1, max_size=3),
    operation=st.sampled_from(["$submit", "$inquire"]),
)
def test_a_mutated_bundle_gets_a_fhir_answer_over_http(
    client: TestClient, edits: list[tuple[tuple[Any, ...], Any]], operation: str
) -> None:
    document = mutated(edits)
    answer = client.post(
        f"/fhir/Claim/{operation}", content=json.dumps(document).encode(), headers=HEADERS
    )
    well_formed(answer)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_reference_fixture_gets_a_fhir_answer_over_http(
    client: TestClient, path: Path
) -> None:
    for operation in ("$submit", "$inquire", "$submit"):
        answer = client.post(f"/fhir/Claim/{operation}", content=path.read_bytes(), headers=HEADERS)
        well_formed(answer)
