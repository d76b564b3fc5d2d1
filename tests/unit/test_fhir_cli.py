"""`priorauth evaluate` reads a PAS request bundle as it reads a plain request: one
determination per Claim item, and a bundle it cannot use exits 2 naming the element."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from priorauth.entrypoints.cli import app
from tests.unit.test_fhir_support import FHIR_EXAMPLES, fhir_example, resource

runner = CliRunner()
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"


def said(output: str) -> str:
    """The output with the console's line wrapping undone."""
    return " ".join(output.split())


def saved(tmp_path: Path, bundle: dict[str, Any]) -> str:
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    return str(path)


def test_a_bundle_is_decided_like_a_request() -> None:
    result = runner.invoke(
        app, ["evaluate", "--format", "line", str(FHIR_EXAMPLES / "pas-approvable.json")]
    )
    assert result.exit_code == 0, result.output
    (line,) = result.output.splitlines()
    assert line.startswith("PAS-2026-0001-1") and "approved" in line


def test_each_claim_item_is_one_determination(tmp_path: Path) -> None:
    bundle = fhir_example("pas-approvable.json")
    claim = resource(bundle, "Claim/claim-1")
    claim["item"].append(
        {"sequence": 2, "productOrService": {"coding": [{"system": HCPCS, "code": "J9171"}]}}
    )
    result = runner.invoke(app, ["evaluate", "--format", "json", saved(tmp_path, bundle)])
    assert result.exit_code == 0, result.output
    first, second = (json.loads(line) for line in result.output.splitlines())
    assert (first["request_id"], first["outcome"]) == ("PAS-2026-0001-1", "approved")
    assert (second["request_id"], second["reasons"]) == ("PAS-2026-0001-2", ["no-policy"])
    assert first["sources"]["conditions[0]"] == "Condition/cond-1.code.coding[0]"


def test_a_bundle_that_breaks_a_pas_rule_exits_2_naming_the_element() -> None:
    path = str(FHIR_EXAMPLES / "pas-invalid.json")
    result = runner.invoke(app, ["evaluate", path])
    assert result.exit_code == 2
    assert "not a usable PAS request bundle" in said(result.output)
    assert "Bundle.entry[0].resource.use" in said(result.output)
    assert "Traceback" not in result.output


def test_an_unknown_unit_exits_2_naming_the_element(tmp_path: Path) -> None:
    bundle = fhir_example("pas-approvable.json")
    resource(bundle, "Observation/weight-1")["valueQuantity"]["code"] = "kilos"
    result = runner.invoke(app, ["evaluate", saved(tmp_path, bundle)])
    assert result.exit_code == 2
    assert "Bundle.entry[14].resource.valueQuantity.code: unknown unit 'kilos'" in said(
        result.output
    )


def test_an_item_with_nothing_to_decide_exits_2_naming_it(tmp_path: Path) -> None:
    bundle = fhir_example("pas-approvable.json")
    resource(bundle, "Claim/claim-1")["item"].append(
        {"sequence": 2, "productOrService": {"text": "an office visit"}}
    )
    result = runner.invoke(app, ["evaluate", saved(tmp_path, bundle)])
    assert result.exit_code == 2
    assert "Bundle.entry[0].resource.item[1]: the item names no code" in said(result.output)


def test_the_fhir_adapter_is_loaded_only_for_a_bundle() -> None:
    """fhir.resources takes a while to import; a plain request does not need it."""
    code = (
        "import sys, priorauth.entrypoints.cli\n"
        "print([m for m in sys.modules if m.startswith(('fhir', 'priorauth.adapters'))])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
