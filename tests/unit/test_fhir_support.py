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


def fixtures_dir() -> Path:
    """The HL7 Da Vinci reference implementation's fixtures, kept under tests/fixtures."""
    return ROOT / "tests" / "fixtures" / "davinci-prior-auth"


def reference_fixture(name: str) -> dict[str, Any]:
    """A fresh copy of one of the reference implementation's fixtures."""
    data: dict[str, Any] = json.loads((fixtures_dir() / name).read_text())
    return data


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
