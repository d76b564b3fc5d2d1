"""Loading safety data: every problem found with its code and line, and wiring into the catalog."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from priorauth import PolicyError, PolicySet
from priorauth.catalog import default_vocabulary, load_policy, load_safety
from priorauth.clinical.drugs import Vocabulary
from priorauth.engine.compiled import CompiledPolicy, policy_hash
from priorauth.engine.request import parse_request
from priorauth.engine.safety import SafetyReviewer
from priorauth.entrypoints.cli import app
from priorauth.policy.loader import load_policy_text
from priorauth.policy.safety_loader import check_safety_text, load_safety_text
from tests.unit.safety_helpers import ANC, DATA, ROOT, base, dosing_for, set_observation


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
screens:
  - id: inhibitor
    kind: interaction
    title: "Inhibitor"
    severity: warning
    classes: [cyp3a4-strong-inhibitors]
    message: "{drug} is an inhibitor"
    source: "test"
"""

LIMITS = """\
id: test-safety
version: "1"
screens:
  - id: counts
    kind: observation-limits
    title: "Counts"
    severity: contraindication
    any:
      - {code: "751-8", label: "ANC", unit: "10*9/L", below: 1.5}
    message: "{found}"
    source: "test"
"""

BANDS = """\
id: test-safety
version: "1"
screens:
  - id: kidney
    kind: observation-bands
    title: "Kidney"
    severity: dose-limit
    observations:
      crcl: {code: "2164-2", label: "CrCl", unit: "mL/min"}
    bands:
      - {id: a, text: "A", at_most: {crcl: 1000}, dose_mg_per_m2: 40}
      - {id: b, text: "B", not_recommended: true}
    message: "{found} {band} {dose} {allowed}"
    not_recommended_message: "{found}"
    source: "test"
"""


def test_minimal_data_loads() -> None:
    assert _codes(MINIMAL) == []
    assert _codes(LIMITS) == []
    assert _codes(BANDS) == []


@pytest.mark.parametrize(
    ("text", "change", "expected"),
    [
        (
            MINIMAL,
            ("{drug} is an inhibitor", "{drug} at {nonsense}"),
            ("PS303", 9, "screens[0].message"),
        ),
        (MINIMAL, ("{drug} is an inhibitor", "{drug"), ("PS303", 9, "screens[0].message")),
        (MINIMAL, ("severity: warning", "severity: fatal"), ("PS201", 7, "screens[0].severity")),
        (MINIMAL, ("classes: [cyp3a4", "classes: [CYP3A4"), ("PS201", 8, "screens[0].classes")),
        (MINIMAL, ('version: "1"', "version: [1"), ("PS101", None, "")),
        (LIMITS, ('unit: "10*9/L"', 'unit: "10*9/LL"'), ("PS201", 9, "screens[0].any[0].unit")),
        (LIMITS, ('unit: "10*9/L"', 'unit: "{cells}/uL"'), ("PS201", 9, "screens[0].any[0].unit")),
        (LIMITS, ('code: "751-8"', 'code: "ANC"'), ("PS201", 9, "screens[0].any[0].code")),
        (LIMITS, ("below: 1.5", "below: 1.5, above: 9"), ("PS201", 9, "screens[0].any[0]")),
        (LIMITS, ('"{found}"', '"{code}"'), ("PS303", 10, "screens[0].message")),
        (
            BANDS,
            ("at_most: {crcl: 1000}", "at_most: {gfr: 1000}"),
            ("PS304", 11, "screens[0].bands[0].at_most"),
        ),
        (BANDS, ("at_most: {crcl: 1000}", "at_most: {}"), ("PS304", 11, "screens[0].bands[0]")),
        (
            BANDS,
            ("not_recommended: true}", "not_recommended: true, at_most: {crcl: 9}}"),
            ("PS304", 12, "screens[0].bands[1]"),
        ),
        (
            BANDS,
            ("{found} {band} {dose} {allowed}", "{found} {drug}"),
            ("PS303", 13, "screens[0].message"),
        ),
    ],
)
def test_problems_have_codes_and_lines(
    text: str, change: tuple[str, str], expected: tuple[str, int | None, str]
) -> None:
    changed = text.replace(*change)
    assert changed != text
    found = _codes(changed)
    code, line, path = expected
    assert found, "expected a problem"
    assert found[0][0] == code, found
    if line is not None:
        assert found[0][1] == line, found
    assert found[0][2].startswith(path), found


def test_a_duplicate_screen_id() -> None:
    text = MINIMAL + MINIMAL.split("screens:\n", 1)[1]
    assert ("PS301", 11, "screens[1].id") in _codes(text)


def test_a_class_the_vocabulary_does_not_have() -> None:
    data = load_safety_text(MINIMAL.replace("cyp3a4-strong-inhibitors", "cyp3a4-inhibitors"))
    with pytest.raises(PolicyError) as caught:
        SafetyReviewer(data)
    issue = caught.value.issues[0]
    assert (issue.code, issue.path) == ("PS309", "screens[0].classes[0]")
    assert "did you mean 'cyp3a4-strong-inhibitors'" in issue.message


def test_bands_must_widen_and_end_with_the_catch_all() -> None:
    text = DATA.read_text().replace(
        "at_most: {ast: 10, alt: 10, bilirubin: 1.5}", "at_most: {ast: 2, alt: 10, bilirubin: 1.5}"
    )
    assert [c for c, _, _ in _codes(text)] == ["PS304"]
    same = DATA.read_text().replace(
        "at_most: {ast: 10, alt: 10, bilirubin: 3}", "at_most: {ast: 10, alt: 10, bilirubin: 1.5}"
    )
    assert [c for c, _, _ in _codes(same)] == ["PS304"]


def test_an_agent_in_two_classes() -> None:
    text = DATA.read_text().replace(
        "agents: [capecitabine, xeloda]", "agents: [capecitabine, taxol]"
    )
    assert [c for c, _, _ in _codes(text)] == ["PS306"]


def test_label_indication_terms_must_be_defined() -> None:
    text = DATA.read_text().replace(
        "- [anthracycline, taxane, capecitabine]", "- [anthracycline, taxol]"
    )
    codes = _codes(text)
    assert [c for c, _, _ in codes] == ["PS307"]
    assert codes[0][2] == "resistance.indications[1].any_of[0][1]"


def test_a_resistance_condition_names_a_class() -> None:
    text = DATA.read_text().replace("agent_class: anthracycline", "agent_class: anthracyclines")
    codes = _codes(text)
    assert [c for c, _, _ in codes] == ["PS308"]
    assert codes[0][2] == "resistance.conditions.anthracycline-contraindicated.agent_class"


def test_rxnorm_codes_match_when_names_do_not() -> None:
    """The vocabulary reads a medication's RxNorm code first (codes are data: `rxnorm:`)."""
    shipped = default_vocabulary().data
    data = shipped.model_copy(update={"rxnorm": {"900001": ["ketoconazole"]}})
    reviewer = SafetyReviewer(load_safety_text(MINIMAL), Vocabulary(data, [], {}))
    request = base()
    request["medications"] = [{"name": "Tablet A 200 mg", "code": "900001", "system": "rxnorm"}]
    parsed = parse_request(request)
    found = reviewer.review(parsed, dosing_for(parsed), None)
    assert [a.code for a in found.alerts] == ["inhibitor"]
    assert found.alerts[0].message == "Tablet A 200 mg is an inhibitor"
    # The same code in another system is not an RxNorm code, and the name alone is unknown.
    request["medications"] = [{"name": "Tablet A 200 mg", "code": "900001", "system": "snomed"}]
    parsed = parse_request(request)
    found = reviewer.review(parsed, dosing_for(parsed), None)
    assert found.alerts == ()
    assert [u.name for u in found.unrecognized] == ["Tablet A 200 mg"]


def test_a_limit_in_the_data_file_unit_reads_a_count_given_in_another() -> None:
    reviewer = SafetyReviewer(load_safety_text(LIMITS))
    parsed = parse_request(set_observation(base(), ANC, value=1499, unit="/uL"))
    found = reviewer.review(parsed, None, None)
    assert [a.message for a in found.alerts] == ["ANC 1.499 10*9/L, below 1.5 10*9/L"]
    parsed = parse_request(set_observation(base(), ANC, value=1500, unit="/mm3"))
    assert reviewer.review(parsed, None, None).alerts == ()


# Wiring into the catalog, the engine and the CLI --------------------------------------------


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


def test_without_safety_data_the_determination_has_no_screens() -> None:
    policy = load_policy(ROOT / "policies" / "ixempra.yaml")
    parsed = parse_request(set_observation(base(), ANC, value=100, unit="/uL"))
    assert parsed.received_at is not None
    d = CompiledPolicy(policy).evaluate(parsed, parsed.received_at.date())
    assert d.alerts == () and d.screens_not_run == () and d.label_indication is None
    assert d.policy is not None and d.policy.safety_hash is None
    with_data = CompiledPolicy(policy, load_safety(DATA)).evaluate(
        parsed, parsed.received_at.date()
    )
    assert [a.code for a in with_data.alerts] == ["low-blood-counts"]
    assert with_data.policy is not None and with_data.policy.safety_hash is not None


def test_cli_validates_data_files_and_prints_the_schema() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["policy", "validate", str(DATA)])
    assert result.exit_code == 0, result.output
    assert "ixempra-safety" in result.output and "12 screens" in result.output
    result = runner.invoke(app, ["schema", "safety"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["title"] == "SafetyData"
    assert "observation-limits" in result.output and "observation-bands" in result.output


def test_cli_reports_a_broken_data_file_with_its_line(tmp_path: Path) -> None:
    broken = tmp_path / "x-safety.data.yaml"
    broken.write_text(LIMITS.replace('unit: "10*9/L"', 'unit: "10*9/LL"'))
    result = CliRunner().invoke(app, ["policy", "validate", str(broken)])
    assert result.exit_code == 1
    output = result.output.replace("\n", "")  # the console wraps long lines
    assert f"{broken}:9: error PS201 at screens[0].any[0].unit" in output


def test_a_policy_without_safety_data_hashes_as_before() -> None:
    text = (ROOT / "policies" / "ixempra.yaml").read_text()
    without = load_policy_text(text.replace("safety: ixempra-safety.data.yaml\n", ""))
    named = load_policy_text(text)
    assert without.safety is None and named.safety is not None
    assert policy_hash(without) != policy_hash(named)
    # No field left empty is hashed: a policy without safety data hashes as one written before
    # the field existed.
    dumped = without.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert "safety" not in dumped
    canonical = json.dumps(dumped, sort_keys=True, separators=(",", ":")).encode()
    assert policy_hash(without) == "sha256:" + hashlib.sha256(canonical).hexdigest()
