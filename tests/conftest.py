"""Shared fixtures: the shipped policies and example requests."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from priorauth import PolicySet

# The service tests' fixtures (databases, the service, an HTTP client).
pytest_plugins = ["tests.service_fixtures"]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="session")
def policies() -> PolicySet:
    return PolicySet.from_directory(ROOT / "policies")


def example(name: str) -> dict[str, Any]:
    """A fresh copy of an example request, by file name without the directory."""
    return copy.deepcopy(json.loads((EXAMPLES / name).read_text()))


@pytest.fixture
def approvable() -> dict[str, Any]:
    """A request that meets every criterion and the 3-weekly regimen."""
    return example("01-approved-every-3-weeks.json")
