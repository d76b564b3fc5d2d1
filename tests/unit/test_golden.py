"""Golden files: the whole determination of each example, byte for byte.

A change to the engine that changes any determination shows up here as a diff. When the change
is intended, regenerate with `UPDATE_GOLDEN=1 make test` and review the diff before committing.
"""

from __future__ import annotations

import json
import os

import pytest

from priorauth import PolicySet
from tests.conftest import EXAMPLES, ROOT

GOLDEN = ROOT / "tests" / "golden"
NAMES = sorted(p.name for p in EXAMPLES.glob("*.json"))


@pytest.mark.parametrize("name", NAMES)
def test_determination_matches_golden_file(policies: PolicySet, name: str) -> None:
    request = json.loads((EXAMPLES / name).read_text())
    actual = policies.evaluate(request).model_dump_json(indent=2) + "\n"
    golden = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(actual)
    assert golden.exists(), f"no golden file for {name}: run UPDATE_GOLDEN=1 make test"
    assert actual == golden.read_text()


def test_no_stale_golden_files() -> None:
    assert sorted(p.name for p in GOLDEN.glob("*.json")) == NAMES
