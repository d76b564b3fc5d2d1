"""Policy test cases read from files: where they sit beside the policies, and running them with
the engine (policy.testing holds the logic; `priorauth policy test` prints the results).

A policy `policies/<name>.yaml` has its cases in `policies/tests/<name>.cases.yaml`. They live in
a folder of their own so that nothing reading the policy folder (PolicySet.from_directory, a
`policies/*.yaml` glob) mistakes them for policies.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from priorauth.catalog import PolicySet, load_policy, load_safety
from priorauth.engine.determination import Determination
from priorauth.errors import PolicyError, PolicyIssue
from priorauth.policy.model import Policy
from priorauth.policy.testing import SuiteResult, check_cases_text, run_cases

__all__ = [
    "CASES_FOLDER",
    "CASES_SUFFIX",
    "SuiteRun",
    "case_file_for",
    "check_case_file",
    "find_suites",
    "is_case_file",
    "policy_file_for",
    "run_suite",
]

CASES_FOLDER = "tests"
CASES_SUFFIX = ".cases.yaml"


def is_case_file(path: Path) -> bool:
    return path.name.endswith(CASES_SUFFIX)


def case_file_for(policy_file: Path) -> Path:
    """`policies/NAME.yaml` -> `policies/tests/NAME.cases.yaml`."""
    return policy_file.parent / CASES_FOLDER / f"{policy_file.stem}{CASES_SUFFIX}"


def policy_file_for(case_file: Path) -> Path:
    """`policies/tests/NAME.cases.yaml` -> `policies/NAME.yaml`."""
    name = case_file.name.removesuffix(CASES_SUFFIX)
    return case_file.parent.parent / f"{name}.yaml"


def _policy_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.yaml") if not p.name.endswith(".data.yaml"))


def find_suites(paths: Iterable[Path]) -> list[tuple[Path, Path]]:
    """(policy file, case file) for each path: a folder of policies, a policy file or a case
    file. A policy's case file may not exist; run_suite says so."""
    found: list[tuple[Path, Path]] = []
    for path in paths:
        if path.is_dir():
            pairs = [(p, case_file_for(p)) for p in _policy_files(path)]
        elif is_case_file(path):
            pairs = [(policy_file_for(path), path)]
        else:
            pairs = [(path, case_file_for(path))]
        found.extend(pair for pair in pairs if pair not in found)
    return found


@dataclass(frozen=True)
class SuiteRun:
    """One policy's cases: the files, the result when they ran, and why they could not."""

    policy_file: Path
    case_file: Path
    result: SuiteResult | None
    problems: tuple[tuple[Path, PolicyIssue], ...]


def _issue(code: str, message: str) -> PolicyIssue:
    return PolicyIssue(code, "read", "", None, "error", message)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(str(path), [_issue("PT100", f"cannot read: {exc.strerror}")]) from exc
    except UnicodeDecodeError as exc:
        raise PolicyError(str(path), [_issue("PT100", "not UTF-8 text")]) from exc


def check_case_file(case_file: Path, policy: Policy) -> list[PolicyIssue]:
    """Every finding about a case file (errors and warnings), checked against its policy."""
    try:
        text = _read(case_file)
    except PolicyError as exc:
        return exc.issues
    return check_cases_text(text, policy).issues


def run_suite(policy_file: Path, case_file: Path) -> SuiteRun:
    """Load a policy (and its safety data) and run its cases with the engine."""
    try:
        policy = load_policy(policy_file)
        safety = load_safety(policy_file.parent / policy.safety) if policy.safety else None
    except PolicyError as exc:
        return SuiteRun(
            policy_file, case_file, None, tuple((Path(exc.source), i) for i in exc.issues)
        )
    if not case_file.exists():
        problem = _issue("PT100", f"no test cases: write them in {case_file}")
        return SuiteRun(policy_file, case_file, None, ((case_file, problem),))
    try:
        checked = check_cases_text(_read(case_file), policy)
    except PolicyError as exc:
        return SuiteRun(policy_file, case_file, None, tuple((case_file, i) for i in exc.issues))
    if checked.value is None:
        return SuiteRun(policy_file, case_file, None, tuple((case_file, i) for i in checked.issues))
    policies = PolicySet([policy], {policy.id: safety} if safety is not None else None)

    def decide(request: Mapping[str, Any], as_of: dt.date) -> Determination:
        return policies.evaluate(request, as_of)

    warnings = tuple((case_file, i) for i in checked.issues)
    return SuiteRun(policy_file, case_file, run_cases(checked.value, policy, decide), warnings)
