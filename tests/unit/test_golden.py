"""Golden files: the whole determination of each example request, byte for byte.

Every `examples/*.json` (not examples/fhir) has its determination in `tests/golden/` under the
same name; a new example is picked up on its own and fails until its golden file exists. A
change to the engine that changes any determination shows up here as a diff. When the change is
intended, regenerate and READ the diff before committing:

    PRIORAUTH_REGENERATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_golden.py
    git diff tests/golden/
"""

from __future__ import annotations

import json
import os

import pytest

from priorauth import PolicySet
from tests.conftest import EXAMPLES, ROOT

GOLDEN = ROOT / "tests" / "golden"
NAMES = sorted(p.name for p in EXAMPLES.glob("*.json"))
REGENERATE = os.environ.get("PRIORAUTH_REGENERATE_GOLDEN") == "1"
HOW = "PRIORAUTH_REGENERATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_golden.py"

# Examples whose determination is known to be wrong for now, with why. Their golden files keep
# the determination they should have (regenerating leaves them alone); once the cause is gone,
# the strict xfail fails: remove the entry, regenerate and review.
KNOWN_WRONG: dict[str, str] = {}


def _params() -> list[object]:
    return [
        pytest.param(name, marks=pytest.mark.xfail(reason=KNOWN_WRONG[name], strict=True))
        if name in KNOWN_WRONG
        else name
        for name in NAMES
    ]


@pytest.mark.parametrize("name", _params())
def test_determination_matches_golden_file(policies: PolicySet, name: str) -> None:
    request = json.loads((EXAMPLES / name).read_text())
    actual = policies.evaluate(request).model_dump_json(indent=2) + "\n"
    golden = GOLDEN / name
    if REGENERATE and name not in KNOWN_WRONG:
        golden.write_text(actual)
    assert golden.exists(), f"no golden file tests/golden/{name}: generate it with {HOW}"
    assert actual == golden.read_text(), (
        f"the determination of examples/{name} differs from tests/golden/{name}; if the change "
        f"is intended, regenerate with {HOW} and review `git diff tests/golden/`"
    )


def test_no_stale_golden_files() -> None:
    stale = sorted(p.name for p in GOLDEN.glob("*.json") if p.name not in NAMES)
    assert not stale, f"golden files without an example (remove them): {stale}"
