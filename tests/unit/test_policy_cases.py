"""Every shipped policy's test cases pass and reach at least 90% of its criteria branches; the
case runner (policy.testing, `priorauth policy test`) reports differences and counts coverage
exactly."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from priorauth import PolicySet
from priorauth.casefiles import case_file_for, find_suites, policy_file_for, run_suite
from priorauth.engine.determination import Determination
from priorauth.entrypoints.cli import app
from priorauth.policy.loader import load_policy_text
from priorauth.policy.model import Policy
from priorauth.policy.testing import build_request, check_cases_text, run_cases
from tests.conftest import ROOT

runner = CliRunner()
POLICIES = ROOT / "policies"
SHIPPED = sorted(p for p in POLICIES.glob("*.yaml") if not p.name.endswith(".data.yaml"))
MINIMUM_COVERAGE = 90.0


@pytest.mark.parametrize("policy_file", SHIPPED, ids=lambda p: p.stem)
def test_shipped_policy_cases_pass_and_cover_its_criteria(policy_file: Path) -> None:
    run = run_suite(policy_file, case_file_for(policy_file))
    assert run.result is not None, [str(issue) for _, issue in run.problems]
    assert not run.problems, [str(issue) for _, issue in run.problems]
    failures = {c.name: c.problems for c in run.result.cases if not c.passed}
    assert failures == {}
    coverage = run.result.coverage
    assert coverage.percent >= MINIMUM_COVERAGE, coverage.not_reached()
    assert coverage.fitted == set(coverage.regimens), "a regimen no case fits"


def test_case_files_sit_beside_the_policies_and_are_not_loaded_as_policies() -> None:
    catalog = PolicySet.from_directory(POLICIES)
    assert sorted(p.policy.id for p in catalog.policies) == sorted(p.stem for p in SHIPPED)
    assert find_suites([POLICIES]) == [(p, case_file_for(p)) for p in SHIPPED]
    case_file = POLICIES / "tests" / "eribulin.cases.yaml"
    assert policy_file_for(case_file) == POLICIES / "eribulin.yaml"
    assert find_suites([case_file]) == [(POLICIES / "eribulin.yaml", case_file)]


# --- the runner, on a small policy of its own ----------------------------------------------------

POLICY = """\
id: demo
title: Demo
version: "1"
review_date: 2026-01-01
effective_date: 2026-01-01
drugs: [{name: Demo, generic_name: demo, hcpcs: [J1234], billing: {code: J1234, mg_per_unit: 1}}]
facts:
  age_years: {kind: age, question: "Date of birth?"}
  cancer: {kind: condition, codes: ["C50.*"], absent: "false", question: "Diagnosis?"}
  stage_four: {kind: answer, question: "Stage IV?"}
indications:
  - id: "1"
    title: Cancer
    when: cancer
    approval: {years: 1}
    criteria:
      id: "1"
      text: A and B
      all:
        - {id: A, text: Adult, fact: age_years, at_least: 18}
        - {id: B, text: Stage IV, fact: stage_four}
dosing:
  regimens:
    - {id: R1, text: Weekly, dose: {max: 10, unit: mg}, interval: {min_days: 7}}
    - {id: R2, text: Daily, dose: {max: 1, unit: mg}, interval: {min_days: 1}}
"""

CASES = """\
as_of: 2026-06-01
bases:
  default:
    service: {dose: {value: 10, unit: mg}, schedule: {interval_days: 7}}
    patient: {birth_date: 1970-01-01}
    conditions: [C50.912]
    answers: {stage_four: true}
cases:
  - name: approved
    expect: {outcome: approved, regimen: R1, criteria: {"1": met, A: met, B: met}}
  - name: a child
    request: {patient: {birth_date: 2015-01-01}}
    expect: {outcome: pended, reasons: [criteria-not-met], criteria: {A: not-met}}
  - name: stage unknown
    request: {answers: null}
    expect: {outcome: pended, missing: [stage_four], criteria: {B: unknown}}
"""


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy_text(POLICY)


def decider(policy: Policy) -> Any:
    catalog = PolicySet([policy])

    def decide(request: Mapping[str, Any], as_of: dt.date) -> Determination:
        return catalog.evaluate(request, as_of)

    return decide


def test_a_case_request_is_its_base_with_its_own_request_laid_over(policy: Policy) -> None:
    cases = check_cases_text(CASES, policy).value
    assert cases is not None
    child = build_request(cases, 1, policy)
    assert child["patient"] == {"birth_date": dt.date(2015, 1, 1)}
    assert child["conditions"] == ["C50.912"]
    assert child["request_id"] == "TEST-demo-2"
    assert child["service"] == {
        "dose": {"value": 10, "unit": "mg"},
        "schedule": {"interval_days": 7},
        "code": "J1234",
    }
    assert "answers" not in build_request(cases, 2, policy)  # null removes a key


def test_coverage_counts_each_node_met_and_not_met(policy: Policy) -> None:
    cases = check_cases_text(CASES, policy).value
    assert cases is not None
    result = run_cases(cases, policy, decider(policy))
    assert [c.passed for c in result.cases] == [True, True, True]
    coverage = result.coverage
    (tree,) = coverage.trees
    assert tree.label == "indication 1 (initial)"
    assert tree.seen == {
        "1": {"met", "not-met", "unknown"},
        "A": {"met", "not-met"},
        "B": {"met", "unknown"},
    }
    # 3 nodes x (met, not-met) = 6 branches; B was never seen not met.
    assert coverage.branches == (5, 6)
    assert coverage.percent == pytest.approx(83.33, abs=0.01)
    assert coverage.not_reached() == ["indication 1 (initial) B not-met"]
    assert coverage.fitted == {"R1"}
    assert coverage.regimens["R2"] == {"not-met"}


def test_a_wrong_expectation_fails_with_each_difference(policy: Policy) -> None:
    text = CASES.replace(
        'expect: {outcome: approved, regimen: R1, criteria: {"1": met, A: met, B: met}}',
        "expect: {outcome: pended, regimen: R2, criteria: {A: not-met, B: met}, units: 3}",
    )
    cases = check_cases_text(text, policy).value
    assert cases is not None
    first = run_cases(cases, policy, decider(policy)).cases[0]
    assert not first.passed
    assert first.problems[:4] == (
        "outcome: expected pended, got approved",
        "criterion A: expected not-met, got met",
        "regimen: expected R2, got R1",
        "units: expected 3, got 530",  # 53 weekly doses of 10 mg
    )
    assert first.problems[-1].startswith("(the engine says: Approved")


def test_an_invalid_request_fails_unless_expected(policy: Policy) -> None:
    text = CASES.replace(
        "    request: {answers: null}\n", "    request: {answers: {stage: true}}\n"
    )
    cases = check_cases_text(text, policy).value
    assert cases is not None
    third = run_cases(cases, policy, decider(policy)).cases[2]
    assert not third.passed
    assert third.problems[0].startswith("invalid request: answers.stage: policy demo asks no")
    expected = text.replace(
        "expect: {outcome: pended, missing: [stage_four], criteria: {B: unknown}}",
        "expect: {invalid: asks no question 'stage'}",
    )
    cases = check_cases_text(expected, policy).value
    assert cases is not None
    assert run_cases(cases, policy, decider(policy)).cases[2].passed


def test_a_case_that_breaks_the_engine_fails_alone(policy: Policy) -> None:
    cases = check_cases_text(CASES, policy).value
    assert cases is not None
    calls: list[str] = []

    def breaks_on_the_child(request: Mapping[str, Any], as_of: dt.date) -> Determination:
        calls.append(request["request_id"])
        if request["patient"]["birth_date"].year == 2015:
            raise ZeroDivisionError("division by zero")
        return decider(policy)(request, as_of)

    result = run_cases(cases, policy, breaks_on_the_child)
    assert [c.passed for c in result.cases] == [True, False, True]
    assert result.cases[1].problems == (
        "the engine raised ZeroDivisionError: division by zero (an engine bug: report it)",
    )
    assert len(calls) == 3


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        (("criteria: {A: not-met}", "criteria: {AA: not-met}"), "PT304",
         "policy demo has no criterion 'AA' (did you mean 'A'?)"),
        (("regimen: R1", "regimen: R3"), "PT305", "policy demo has no regimen 'R3'"),
        (("missing: [stage_four]", "missing: [stage_4]"), "PT307",
         "policy demo has no fact 'stage_4' (did you mean 'stage_four'?)"),
        (("as_of: 2026-06-01\n", ""), "PT302", "no as_of date"),
        (("  - name: a child\n", "  - name: a child\n    base: adult\n"), "PT303",
         "no base 'adult'"),
        (("outcome: approved, regimen", "outcom: approved, regimen"), "PT201",
         "unknown key (did you mean 'outcome'?)"),
    ],
)  # fmt: skip
def test_a_case_file_is_checked_against_its_policy(
    policy: Policy, change: tuple[str, str], code: str, message: str
) -> None:
    assert change[0] in CASES
    found = check_cases_text(CASES.replace(*change), policy).errors
    assert found, "expected an error"
    assert found[0].code == code
    assert message in found[0].message
    assert found[0].line is not None or code == "PT302"


# --- the command ---------------------------------------------------------------------------------


def test_policy_test_runs_the_shipped_cases() -> None:
    result = runner.invoke(app, ["policy", "test", str(POLICIES / "ixempra.yaml")])
    assert result.exit_code == 0, result.output
    assert "PASS approved, metastatic breast cancer" in result.output
    assert "coverage ixempra: 13 of 14 criteria branches (92.9%)" in result.output
    assert "not reached: indication 1 (initial) C not-met" in result.output


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "policies"
    (folder / "tests").mkdir(parents=True)
    (folder / "demo.yaml").write_text(POLICY)
    (folder / "tests" / "demo.cases.yaml").write_text(CASES)
    return folder


def test_policy_test_exit_codes(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    passing = runner.invoke(app, ["policy", "test", str(folder)])
    assert passing.exit_code == 0, passing.output
    assert "3 passed, 0 failed" in passing.output
    below = runner.invoke(app, ["policy", "test", str(folder), "--min-coverage", "90"])
    assert below.exit_code == 1
    assert "coverage 83.3% is below 90%" in below.output
    cases = folder / "tests" / "demo.cases.yaml"
    cases.write_text(CASES.replace("outcome: approved, regimen", "outcome: pended, regimen"))
    failing = runner.invoke(app, ["policy", "test", str(cases)])
    assert failing.exit_code == 1
    assert "FAIL approved" in failing.output
    assert "outcome: expected pended, got approved" in failing.output
    cases.write_text("cases: [\n")
    broken = runner.invoke(app, ["policy", "test", str(folder)])
    assert broken.exit_code == 2
    assert "PT101" in broken.output


def test_a_policy_without_cases_is_reported(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    shutil.rmtree(folder / "tests")
    result = runner.invoke(app, ["policy", "test", str(folder)])
    assert result.exit_code == 2
    assert "no test cases: write them in" in result.output
