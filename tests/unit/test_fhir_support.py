"""Helpers shared by the FHIR adapter tests (no tests here): example bundles, the fixtures."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

from tests.conftest import ROOT

FHIR_EXAMPLES = ROOT / "examples" / "fhir"
CREATED = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)


def fixtures_dir() -> Path | None:
    """The shared Da Vinci fixtures beside the repository, else at their usual absolute path."""
    for candidate in (
        ROOT.parent / "shared" / "fixtures" / "davinci-prior-auth",
        Path("/work/shared/fixtures/davinci-prior-auth"),
    ):
        if candidate.is_dir():
            return candidate
    return None


def fhir_example(name: str) -> dict[str, Any]:
    """A fresh copy of an example bundle from examples/fhir/."""
    data: dict[str, Any] = json.loads((FHIR_EXAMPLES / name).read_text())
    return copy.deepcopy(data)


def resource(bundle: dict[str, Any], key: str) -> dict[str, Any]:
    """The resource `Type/id` of a bundle (JSON), for a test to change."""
    for entry in bundle["entry"]:
        found: dict[str, Any] = entry["resource"]
        if f"{found['resourceType']}/{found.get('id')}" == key:
            return found
    raise KeyError(key)


def remove(bundle: dict[str, Any], key: str) -> None:
    """Take the resource `Type/id` out of a bundle (JSON)."""
    bundle["entry"] = [
        e
        for e in bundle["entry"]
        if f"{e['resource']['resourceType']}/{e['resource'].get('id')}" != key
    ]
