"""Loading safety data: every problem found with its code and line, and wiring into the catalog."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from priorauth import PolicyError, PolicySet
from priorauth.catalog import load_policy, load_safety
from priorauth.engine.compiled import CompiledPolicy, policy_hash
from priorauth.engine.request import parse_request
from priorauth.entrypoints.cli import app
from priorauth.policy.loader import load_policy_text
from priorauth.policy.safety_loader import check_safety_text, load_safety_text
from tests.conftest import ROOT
from tests.unit.safety_helpers import base

DATA = ROOT / "policies" / "ixempra-safety.data.yaml"


def _codes(text: str) -> list[tuple[str, int | None, str]]:
    return [(i.code, i.line, i.path) for i in check_safety_text(text).issues]


def test_the_shipped_data_loads_cleanly() -> None:
    result = check_safety_text(DATA.read_text())
    assert result.value is not None
    assert result.issues == []
    assert len(result.value.screens) == 12


MINIMAL = """\
id: test-safety
version: "1"
drug_lists:
  inhibitors:
    drugs:
      - {name: ketoconazole, strength: strong, rxnorm: ["6135"]}
screens:
  - id: inhibitor
    kind: interaction
    title: "Inhibitor"
    severity: warning
    drug_list: inhibitors
    strengths: [strong]
    message: "{drug} is an inhibitor"
    source: "test"
"""


def test_minimal_data_loads() -> None:
    assert _codes(MINIMAL) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("{drug} is an inhibitor", "{drug} at {nonsense}"), ("PS303", 14, "screens[0].message")),
        (("drug_list: inhibitors", "drug_list: others"), ("PS302", 12, "screens[0].drug_list")),
        (("severity: warning", "severity: fatal"), ("PS201", 11, "screens[0].severity")),
        (("strength: strong, rx", "strength: mighty, rx"), ("PS201", 6, "drug_lists.inhibitors")),
        (('version: "1"', "version: [1"), ("PS101", None, "")),
    ],
)
def test_problems_have_codes_and_lines(
    change: tuple[str, str], expected: tuple[str, int | None, str]
) -> None:
    found = _codes(MINIMAL.replace(*change))
    code, line, path = expected
    assert found, "expected a problem"
    assert found[0][0] == code
    if line is not None:
        assert found[0][1] == line
    assert found[0][2].startswith(path)


def test_a_duplicate_screen_id_and_an_unused_list() -> None:
    text = MINIMAL + MINIMAL.split("screens:\n", 1)[1]
    assert ("PS301", 16, "screens[1].id") in _codes(text)
    unused = MINIMAL.replace("drug_list: inhibitors", "drug_list: others").replace(
        "  inhibitors:", "  others:\n    drugs: [{name: x, strength: weak}]\n  inhibitors:"
    )
    assert [c for c, _, _ in _codes(unused)] == ["PS401"]


def test_bands_must_widen_and_end_with_the_catch_all() -> None:
    text = DATA.read_text().replace(
        "aminotransferases_at_most: 10\n        bilirubin_at_most: 1.5",
        "aminotransferases_at_most: 2\n        bilirubin_at_most: 1.5",
    )
    assert [c for c, _, _ in _codes(text)] == ["PS304"]


def test_label_indication_terms_must_be_defined() -> None:
    text = DATA.read_text().replace(
        "- [anthracycline, taxane, capecitabine]", "- [anthracycline, taxol]"
    )
    codes = _codes(text)
    assert [c for c, _, _ in codes] == ["PS307"]
    assert codes[0][2] == "resistance.indications[1].any_of[0][1]"


def test_the_policy_names_a_file_beside_it() -> None:
    policy = load_policy(ROOT / "policies" / "ixempra.yaml")
    assert policy.safety == "ixempra-safety.data.yaml"
    with pytest.raises(ValueError, match="pattern"):
        policy.model_validate({**policy.model_dump(by_alias=True), "safety": "../x.data.yaml"})


def test_a_policy_set_without_the_named_data_is_an_error() -> None:
    policy = load_policy(ROOT / "policies" / "ixempra.yaml")
    with pytest.raises(PolicyError) as caught:
        PolicySet([policy])
    assert caught.value.issues[0].code == "PA502"
    assert PolicySet([policy], {"ixempra": load_safety(DATA)}).get("ixempra") is not None


def test_a_missing_data_file_is_reported(tmp_path: Path) -> None:
    shutil.copy(ROOT / "policies" / "ixempra.yaml", tmp_path)
    with pytest.raises(PolicyError) as caught:
        PolicySet.from_directory(tmp_path)
    assert caught.value.issues[0].code == "PS100"


def test_a_broken_data_file_stops_the_catalog(tmp_path: Path) -> None:
    shutil.copy(ROOT / "policies" / "ixempra.yaml", tmp_path)
    (tmp_path / "ixempra-safety.data.yaml").write_text(
        DATA.read_text().replace("severity: contraindication", "severity: deadly", 1)
    )
    with pytest.raises(PolicyError) as caught:
        PolicySet.from_directory(tmp_path)
    assert caught.value.issues[0].code == "PS201"
    assert caught.value.issues[0].line is not None


def test_without_safety_data_no_screen_runs() -> None:
    policy = load_policy(ROOT / "policies" / "ixempra.yaml")
    request = base()
    request["labs"]["anc_per_mm3"] = 100
    parsed = parse_request(request)
    d = CompiledPolicy(policy).evaluate(parsed, parsed.received_at.date())  # type: ignore[union-attr]
    assert d.outcome == "approved"
    assert d.alerts == () and d.label_indication is None and d.policy is not None
    assert d.policy.safety_hash is None


def test_rxnorm_codes_match_when_names_do_not() -> None:
    policy = load_policy(ROOT / "policies" / "ixempra.yaml")
    compiled = CompiledPolicy(policy, load_safety_text(MINIMAL))
    request = base()
    request["medications"] = [{"name": "Nizoral 200 mg tablet", "rxnorm": "6135"}]
    parsed = parse_request(request)
    d = compiled.evaluate(parsed, parsed.received_at.date())  # type: ignore[union-attr]
    assert [a.code for a in d.alerts] == ["inhibitor"]
    assert d.alerts[0].message == "Nizoral 200 mg tablet is an inhibitor"


def test_cli_validates_data_files_and_prints_the_schema() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["policy", "validate", str(DATA)])
    assert result.exit_code == 0, result.output
    assert "ixempra-safety" in result.output
    result = runner.invoke(app, ["schema", "safety"])
    assert result.exit_code == 0
    assert '"SafetyData"' in result.output or '"title": "SafetyData"' in result.output


def test_a_policy_without_safety_data_hashes_as_before() -> None:
    text = (ROOT / "policies" / "ixempra.yaml").read_text()
    without = load_policy_text(text.replace("safety: ixempra-safety.data.yaml\n", ""))
    named = load_policy_text(text)
    assert without.safety is None and named.safety is not None
    assert policy_hash(without) != policy_hash(named)
    dumped = without.model_dump(mode="json", by_alias=True)
    assert dumped.pop("safety") is None
    canonical = json.dumps(dumped, sort_keys=True, separators=(",", ":")).encode()
    assert policy_hash(without) == "sha256:" + hashlib.sha256(canonical).hexdigest()
