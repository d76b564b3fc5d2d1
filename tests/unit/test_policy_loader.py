"""Loading policies: files, folders and the catalog; the engine names no drug.

The checks a policy file goes through (YAML, schema, references, lint, did-you-mean) are
tests/unit/test_policy_validate.py's; here is what loading adds around them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from priorauth import PolicyError, PolicySet, load_policy
from priorauth.entrypoints.cli import app
from priorauth.policy.loader import check_policy_text
from tests.conftest import ROOT

SHIPPED = ROOT / "policies" / "ixempra.yaml"
runner = CliRunner()


def shipped_text() -> str:
    return SHIPPED.read_text()


def test_shipped_policy_reads_as_written() -> None:
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
    assert policy.dosing.regimens[1].cycle is not None
    assert policy.dosing.regimens[1].cycle.doses == 3


def test_schema_errors_are_all_reported_with_lines() -> None:
    text = shipped_text().replace("at_least: 18", "at_least: eighteen")
    text = text.replace("max_doses: 3", "max_doses: 0")
    result = check_policy_text(text)
    assert result.value is None
    found = {(i.code, i.path) for i in result.errors}
    assert ("PA201", "indications[0].criteria.all[0].at_least") in found
    assert ("PA201", "dosing.regimens[1].cycle.max_doses") in found
    lines = text.splitlines()
    for issue in result.errors:
        assert issue.line is not None
        assert issue.path.split(".")[-1].split("[")[0] in lines[issue.line - 1]


def test_load_policy_raises_with_every_issue(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(shipped_text().replace("version:", "versionn:", 1))
    with pytest.raises(PolicyError) as raised:
        load_policy(bad)
    assert raised.value.source == str(bad)
    assert {i.code for i in raised.value.issues} == {"PA201"}
    messages = " ".join(i.message for i in raised.value.issues)
    assert "version" in messages


def test_an_unreadable_policy_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as raised:
        load_policy(tmp_path / "missing.yaml")
    assert [i.code for i in raised.value.issues] == ["PA100"]


def test_a_folder_without_policies(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as raised:
        PolicySet.from_directory(tmp_path)
    assert [i.code for i in raised.value.issues] == ["PA100"]


def test_two_policies_cannot_govern_one_code(tmp_path: Path) -> None:
    policy = load_policy(SHIPPED).model_copy(update={"safety": None})
    other = policy.model_copy(update={"id": "other"})
    with pytest.raises(PolicyError) as raised:
        PolicySet([policy, other])
    (issue,) = raised.value.issues
    assert issue.code == "PA501"
    assert "J9207 is governed by ixempra and other" in issue.message


def test_safety_data_named_must_be_loaded() -> None:
    with pytest.raises(PolicyError) as raised:
        PolicySet([load_policy(SHIPPED)])
    assert [i.code for i in raised.value.issues] == ["PA502"]


def test_the_catalog_finds_a_policy_by_each_of_its_codes(policies: PolicySet) -> None:
    from priorauth import parse_request

    for codes in (
        [{"system": "hcpcs", "code": "j9207"}],
        [{"system": "ndc", "code": "70020191101"}],
        [{"system": "cpt", "code": "96413"}, {"system": "hcpcs", "code": "J9207"}],
    ):
        parsed = parse_request({"request_id": "PA-1", "service": {"codes": codes}})
        found = policies.find(parsed.service)
        assert found is not None and found.policy.id == "ixempra", codes
    parsed = parse_request({"request_id": "PA-1", "service": {"code": "J9171"}})
    assert policies.find(parsed.service) is None


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
        .replace("safety: ixempra-safety.data.yaml", "")
    )
    (tmp_path / "examplumab.yaml").write_text(text)
    policies = PolicySet.from_directory(tmp_path)
    request = {
        "request_id": "PA-X",
        "service": {
            "code": "J9999",
            "dose": {"value": 40, "unit": "mg/m2"},
            "schedule": {"cycle_length_days": 21, "doses_per_cycle": 1},
            "start_date": "2026-12-01",
        },
        "patient": {"birth_date": "2006-01-01"},
        "conditions": ["C50.912", "C78.01"],
        "practitioners": [{"specialty": "207RX0202X"}],
    }
    determination = policies.evaluate(request)
    assert determination.policy is not None
    assert determination.policy.id == "examplumab"
    assert determination.reasons == ("criteria-not-met",)  # 20 is under this policy's 21


# Drug names and product codes of the shipped policies and their examples: none may appear in
# the engine's source, so that every drug-specific thing lives in policies/.
DRUG_WORDS = (
    "ixabepilone", "ixempra", "eribulin", "halaven", "infliximab", "remicade", "inflectra",
    "renflexis", "avsola", "capecitabine", "xeloda", "J9207", "J9179", "J1745", "Q5103",
    "Q5104", "Q5121", "doxorubicin", "paclitaxel", "ketoconazole",
)  # fmt: skip


def test_no_drug_is_named_in_the_source() -> None:
    pattern = re.compile("|".join(DRUG_WORDS), re.IGNORECASE)
    source = ROOT / "src" / "priorauth"
    found = []
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        if "__pycache__" in path.parts:
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            for match in pattern.finditer(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {match.group(0)}")
    assert not found, "drug names or product codes in src/:\n" + "\n".join(found)
