"""The policy loader reports every problem with a stable code and its line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from priorauth import PolicyError, load_policy
from priorauth.entrypoints.cli import app
from priorauth.policy.loader import check_policy_text
from tests.conftest import ROOT

SHIPPED = ROOT / "policies" / "ixempra.yaml"
runner = CliRunner()


def shipped_text() -> str:
    return SHIPPED.read_text()


def test_shipped_policy_is_clean() -> None:
    result = check_policy_text(shipped_text())
    assert result.value is not None
    assert result.issues == []
    policy = result.value
    assert [n.id for n in policy.indications[0].criteria.walk()] == [
        "1", "A", "B", "B.i", "B.ii", "B.iii", "C",
    ]  # fmt: skip
    assert policy.drugs[0].hcpcs == ["J9207"]
    assert policy.drugs[0].ndc_products == ["70020-1910", "70020-1911"]
    assert [r.id for r in policy.dosing.regimens] == ["A", "B"]


def test_yaml_syntax_error_has_a_line() -> None:
    result = check_policy_text("id: x\ntitle: [unclosed\nversion: 1\n")
    (issue,) = result.issues
    assert issue.code == "PA101"
    assert issue.stage == "parse"
    assert issue.line is not None


def test_not_a_mapping() -> None:
    assert check_policy_text("- a\n- b\n").issues[0].code == "PA102"


def test_schema_errors_are_all_reported_with_lines() -> None:
    text = shipped_text().replace("at_least: 18", "at_least: eighteen")
    text = text.replace("max_doses_per_cycle: 3", "max_doses_per_cycle: 0")
    result = check_policy_text(text)
    assert result.value is None
    codes = {(i.code, i.path) for i in result.errors}
    assert ("PA201", "indications[0].criteria.all[0].at_least") in codes
    assert ("PA201", "dosing.regimens[1].max_doses_per_cycle") in codes
    lines = text.splitlines()
    for issue in result.errors:
        assert issue.line is not None
        assert issue.path.split(".")[-1].split("[")[0] in lines[issue.line - 1]


def test_unknown_fact_and_duplicate_id_are_reference_errors() -> None:
    text = shipped_text().replace("fact: metastatic", "fact: metastasis")
    text = text.replace("- id: B.iii", "- id: B.i")
    result = check_policy_text(text)
    found = {i.code: i for i in result.errors}
    assert found["PA301"].message.startswith("fact 'metastasis'")
    assert found["PA302"].stage == "references"
    assert "fact: metastasis" in text.splitlines()[found["PA301"].line - 1]  # type: ignore[operator]


def test_numeric_fact_needs_a_comparator() -> None:
    text = shipped_text().replace("          at_least: 18\n", "")
    assert [i.code for i in check_policy_text(text).errors] == ["PA303"]


def test_lint_warns_about_unused_facts() -> None:
    text = shipped_text().replace(
        "indications:",
        "  spare:\n    kind: attested\n    attested: patient.pregnant\n"
        "    question: Is she pregnant\n\nindications:",
    )
    result = check_policy_text(text)
    assert result.value is not None
    assert {i.code for i in result.issues} == {"PA401", "PA402"}
    assert all(i.severity == "warning" for i in result.issues)


def test_load_policy_raises_with_every_issue(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(shipped_text().replace("version:", "versionn:"))
    with pytest.raises(PolicyError) as raised:
        load_policy(bad)
    assert {i.code for i in raised.value.issues} == {"PA201"}
    assert len(raised.value.issues) == 2  # version missing, versionn not allowed


def test_cli_validate_exit_codes(tmp_path: Path) -> None:
    ok = runner.invoke(app, ["policy", "validate", str(SHIPPED)])
    assert ok.exit_code == 0
    assert "ok" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(shipped_text().replace("fact: metastatic", "fact: metastasis"))
    result = runner.invoke(app, ["policy", "validate", str(bad)])
    assert result.exit_code == 1
    assert "PA301" in result.output
    assert f"{bad}:" in result.output


def test_cli_show_prints_the_criteria_tree() -> None:
    result = runner.invoke(app, ["policy", "show", str(SHIPPED)])
    assert result.exit_code == 0
    for text in ("ONE of", "B.iii", "J9207", "16 mg/m2"):
        assert text in result.output


def test_a_second_policy_needs_only_a_yaml_file(tmp_path: Path) -> None:
    """The engine names no drug: a made-up policy for another drug works from data alone."""
    text = (
        shipped_text()
        .replace("id: ixempra", "id: examplumab")
        .replace("J9207", "J9999")
        .replace('"70020-1910", "70020-1911"', '"99999-0001"')
        .replace("at_least: 18", "at_least: 21")
    )
    (tmp_path / "examplumab.yaml").write_text(text)
    safety = ROOT / "policies" / "ixempra-safety.data.yaml"
    (tmp_path / safety.name).write_text(safety.read_text())  # screens are data too
    from priorauth import PolicySet

    policies = PolicySet.from_directory(tmp_path)
    request = {
        "request_id": "PA-X",
        "drug": {"hcpcs": "J9999"},
        "patient": {"birth_date": "2006-01-01"},
        "diagnoses": ["C50.912", "C78.01"],
        "prescriber": {"specialty": "207RX0202X"},
        "regimen": {
            "dose": 40,
            "dose_unit": "mg/m2",
            "doses_per_cycle": 1,
            "cycle_length_days": 21,
            "start_date": "2026-12-01",
        },
    }
    determination = policies.evaluate(request)
    assert determination.policy is not None
    assert determination.policy.id == "examplumab"
    assert determination.reasons == ("criteria-not-met",)  # 20 is under this policy's 21


def test_indication_needs_a_true_false_fact() -> None:
    text = shipped_text().replace("when: breast_cancer", "when: age_years")
    assert "PA307" in [i.code for i in check_policy_text(text).errors]
