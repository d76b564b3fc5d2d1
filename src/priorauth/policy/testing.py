"""Policy test cases: requests with the determination a policy must give them, run like
`opa test`, with a coverage report of the criteria the cases reached.

A case file sits beside the policy (`policies/tests/<policy>.cases.yaml`) and holds cases, each
a name, a request (the request contract, usually partial: the runner fills in `request_id` and
the policy's product code, and deep-merges the request over a named base), the date to decide
it as of, and what is expected::

    as_of: 2026-11-20
    bases:
      default: {patient: {birth_date: 1960-05-01}, conditions: [C50.912, C78.01], ...}
    cases:
      - name: approved after two regimens for metastatic disease
        request: {answers: {child_pugh_class: none}}
        expect: {outcome: approved, regimen: A, criteria: {C: met, D: met}}

Expectations are checked only where given: `outcome` (or `invalid`, a phrase the refusal of an
invalid request must contain), `reasons`, `indication`, `criteria` (statuses by the policy's
ids), `missing` (question ids, exactly), `dosing` (within / outside / unknown), `regimen` (the
one fitted), `units` and `valid_through` (of the authorization), `conflicts` (facts), `alerts`
(the safety findings, `{code: severity}`, exactly).

Coverage counts, for each criteria tree of the policy (each indication's criteria, its
continuation criteria, the policy's continuation criteria), every node twice: once for `met`
and once for `not-met`. A node is fully covered when some case saw it met and some case saw it
not met; `unknown` is reported but does not count. The figure is branches seen / branches in
the policy. Regimens are reported apart: which some case's requested regimen fitted.

The module is pure: it reads text and determinations, and a caller supplies the engine (a
`decide` function) and the files (priorauth.casefiles).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from priorauth.engine.determination import CriterionResult, Determination, Status
from priorauth.errors import InvalidRequest
from priorauth.policy.loader import criteria_trees
from priorauth.policy.model import CriterionSpec, Policy, ReasonCode
from priorauth.policy.staged import (
    Checked,
    Path,
    Report,
    Stages,
    check_text,
    did_you_mean,
)

__all__ = [
    "BRANCHES",
    "CaseFile",
    "CaseResult",
    "CaseSpec",
    "Coverage",
    "Decide",
    "Expectation",
    "SuiteResult",
    "TreeCoverage",
    "build_request",
    "check_cases_text",
    "run_case",
    "run_cases",
]

# The statuses a node is covered for.
BRANCHES: tuple[Status, ...] = ("met", "not-met")
_FACT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

# How a suite decides one request: the request as a mapping and the as-of date in, the
# determination out (InvalidRequest for a request that does not fit the contract).
Decide = Callable[[Mapping[str, Any], dt.date], Determination]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Expectation(_Strict):
    """What a case's determination must show; only what is given is checked."""

    outcome: Literal["approved", "pended"] | None = None
    invalid: Annotated[str, Field(min_length=1)] | None = None
    reasons: list[ReasonCode] | None = None
    indication: str | None = None
    criteria: dict[str, Status] = {}
    missing: list[str] | None = None
    dosing: Literal["within", "outside", "unknown"] | None = None
    regimen: str | None = None
    units: Annotated[int, Field(ge=0)] | None = None
    valid_through: dt.date | None = None
    conflicts: list[str] | None = None
    # Safety findings by code, with their severity: exactly these (`{}`: none).
    alerts: dict[str, Literal["contraindication", "dose-limit", "review", "warning"]] | None = None

    @model_validator(mode="after")
    def _one(self) -> Expectation:
        if (self.outcome is None) == (self.invalid is None):
            raise ValueError("expect an outcome (approved or pended), or `invalid`")
        return self


class CaseSpec(_Strict):
    """One case: a name, a (partial) request, the as-of date and what is expected."""

    name: Annotated[str, Field(min_length=1)]
    base: str | None = None
    as_of: dt.date | None = None
    request: dict[str, Any] = {}
    expect: Expectation


class CaseFile(_Strict):
    """A policy's test cases, with the request bases they share."""

    policy: str | None = None
    as_of: dt.date | None = None
    bases: dict[str, dict[str, Any]] = {}
    cases: list[CaseSpec] = Field(min_length=1)


def _merged(base: Mapping[str, Any], change: Mapping[str, Any]) -> dict[str, Any]:
    """`change` laid over `base`: mappings merge key by key, anything else replaces, and a
    null removes the key."""
    result = dict(base)
    for key, value in change.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = _merged(result[key], value)
        else:
            result[key] = value
    return result


def _product_code(policy: Policy) -> dict[str, str]:
    """The service code a case gets when it names none: the policy's first product."""
    drug = policy.drugs[0]
    if drug.hcpcs:
        return {"code": drug.hcpcs[0]}
    if drug.rxnorm:
        return {"code": drug.rxnorm[0], "system": "rxnorm"}
    return {"code": f"{drug.ndc_products[0]}-01", "system": "ndc"}


def build_request(cases: CaseFile, index: int, policy: Policy) -> dict[str, Any]:
    """The full request of case `index`: its base, its own request over it, a request id and
    the policy's product code when the case gives none."""
    case = cases.cases[index]
    base_name = case.base if case.base is not None else "default"
    request = _merged(cases.bases.get(base_name, {}), case.request)
    request.setdefault("request_id", f"TEST-{policy.id}-{index + 1}")
    service = request.get("service")
    service = dict(service) if isinstance(service, Mapping) else {}
    if "code" not in service and "codes" not in service:
        service.update(_product_code(policy))
    request["service"] = service
    return request


# --- checking a case file ---------------------------------------------------------------------


def _criterion_ids(policy: Policy) -> set[str]:
    ids: set[str] = set()
    for _, tree in _outcome_trees(policy):
        ids.update(node.id for node in tree.walk())
    return ids


def check_cases_text(text: str, policy: Policy) -> Checked[CaseFile]:
    """Check a case file's YAML against the case model and the policy it tests: criteria,
    regimens, indications and questions it names exist; each case has an as-of date."""
    criterion_ids = _criterion_ids(policy)
    regimen_ids = [r.id for r in policy.dosing.regimens]
    indication_ids = [i.id for i in policy.indications]

    def references(cases: CaseFile, add: Report) -> None:
        if cases.policy is not None and cases.policy != policy.id:
            add("PT301", ("policy",), f"the cases are for {cases.policy!r}, not {policy.id!r}")
        for i, case in enumerate(cases.cases):
            base: Path = ("cases", i)
            if case.as_of is None and cases.as_of is None:
                add("PT302", base, "no as_of date: give one for the case or the file")
            if case.base is not None and case.base not in cases.bases:
                hint = did_you_mean(case.base, cases.bases)
                add("PT303", (*base, "base"), f"no base {case.base!r} under bases{hint}")
            expect = case.expect
            for criterion in expect.criteria:
                if criterion not in criterion_ids:
                    hint = did_you_mean(criterion, criterion_ids)
                    add(
                        "PT304",
                        (*base, "expect", "criteria", criterion),
                        f"policy {policy.id} has no criterion {criterion!r}{hint}",
                    )
            if expect.regimen is not None and expect.regimen not in regimen_ids:
                hint = did_you_mean(expect.regimen, regimen_ids)
                add(
                    "PT305",
                    (*base, "expect", "regimen"),
                    f"policy {policy.id} has no regimen {expect.regimen!r}{hint}",
                )
            if expect.indication is not None and expect.indication not in indication_ids:
                add(
                    "PT306",
                    (*base, "expect", "indication"),
                    f"policy {policy.id} has no indication {expect.indication!r}",
                )
            for name in [*(expect.missing or []), *(expect.conflicts or [])]:
                # Dosing questions (service.dose, body-weight, ...) are the engine's own.
                if _FACT_NAME.match(name) and name not in policy.facts:
                    hint = did_you_mean(name, policy.facts)
                    add(
                        "PT307", (*base, "expect"), f"policy {policy.id} has no fact {name!r}{hint}"
                    )

    def lint(cases: CaseFile, warn: Report) -> None:
        seen: set[str] = set()
        for i, case in enumerate(cases.cases):
            if case.name in seen:
                warn("PT401", ("cases", i, "name"), f"two cases are named {case.name!r}")
            seen.add(case.name)

    stages = Stages(
        prefix="PT",
        model=CaseFile,
        not_a_mapping="a case file is a YAML mapping (as_of:, bases:, cases:)",
        references=references,
        lint=lint,
    )
    return check_text(text, stages)


# --- running ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseResult:
    """One case run: whether it passed and, if not, each difference in words."""

    name: str
    passed: bool
    problems: tuple[str, ...]
    determination: Determination | None


def _statuses(node: CriterionResult) -> Iterator[tuple[str, Status]]:
    yield node.id, node.status
    for child in node.children:
        yield from _statuses(child)


def _differences(expect: Expectation, d: Determination) -> list[str]:
    found: list[str] = []

    def compare(what: str, wanted: object, got: object) -> None:
        if wanted != got:
            found.append(f"{what}: expected {_shown(wanted)}, got {_shown(got)}")

    if expect.outcome is not None:
        compare("outcome", expect.outcome, d.outcome)
    if expect.reasons is not None:
        compare("reasons", sorted(expect.reasons), sorted(d.reasons))
    if expect.indication is not None:
        compare("indication", expect.indication, d.indication.id if d.indication else None)
    if expect.criteria:
        statuses = dict(_statuses(d.criteria)) if d.criteria is not None else {}
        for criterion, wanted in expect.criteria.items():
            got = statuses.get(criterion)
            if got is None:
                found.append(f"criterion {criterion}: not in the tree judged")
            else:
                compare(f"criterion {criterion}", wanted, got)
    if expect.missing is not None:
        compare("missing", sorted(expect.missing), sorted(m.fact for m in d.missing))
    if expect.dosing is not None:
        compare("dosing", expect.dosing, d.dosing.status if d.dosing else None)
    if expect.regimen is not None:
        compare("regimen", expect.regimen, d.dosing.regimen if d.dosing else None)
    authorization = d.authorization
    if expect.units is not None:
        compare("units", expect.units, authorization.units if authorization else None)
    if expect.valid_through is not None:
        through = authorization.valid_through if authorization else None
        compare("valid_through", expect.valid_through, through)
    if expect.conflicts is not None:
        compare("conflicts", sorted(expect.conflicts), sorted(c.fact for c in d.conflicts))
    if expect.alerts is not None:
        got_alerts = {a.code: a.severity for a in d.alerts}
        compare("alerts", _pairs(expect.alerts), _pairs(got_alerts))
    if found and expect.outcome is not None and expect.outcome != d.outcome:
        found.append(f"(the engine says: {d.summary})")
    return found


def _pairs(alerts: Mapping[str, str]) -> list[str]:
    return [f"{code} ({severity})" for code, severity in sorted(alerts.items())]


def _shown(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return "none" if value is None else str(value)


def run_case(cases: CaseFile, index: int, policy: Policy, decide: Decide) -> CaseResult:
    """Run one case of a (checked) case file with `decide`, and compare."""
    case = cases.cases[index]
    as_of = case.as_of or cases.as_of
    assert as_of is not None, "check_cases_text reports a case without an as_of date"
    request = build_request(cases, index, policy)
    try:
        determination = decide(request, as_of)
    except InvalidRequest as exc:
        if case.expect.invalid is not None and case.expect.invalid in str(exc):
            return CaseResult(case.name, True, (), None)
        wanted = case.expect.invalid
        problem = (
            f"invalid request: {exc}"
            if wanted is None
            else f"refused, but without {wanted!r}: {exc}"
        )
        return CaseResult(case.name, False, (problem,), None)
    except Exception as exc:
        problem = f"the engine raised {type(exc).__name__}: {exc} (an engine bug: report it)"
        return CaseResult(case.name, False, (problem,), None)
    if case.expect.invalid is not None:
        problem = (
            f"expected the request to be refused ({case.expect.invalid!r}), got a determination"
        )
        return CaseResult(case.name, False, (problem, determination.summary), determination)
    problems = _differences(case.expect, determination)
    return CaseResult(case.name, not problems, tuple(problems), determination)


# --- coverage ---------------------------------------------------------------------------------


def _outcome_trees(policy: Policy) -> Iterator[tuple[Path, CriterionSpec]]:
    """The criteria trees a determination reports (regimens' `when`/`unless` tests are not
    among them: the dosing result shows only whether each regimen fitted)."""
    for path, tree in criteria_trees(policy):
        if path[0] != "dosing":
            yield path, tree


def _label(policy: Policy, path: Path) -> str:
    if path[0] == "indications":
        indication = policy.indications[int(path[1])]
        which = "continuation" if "continuation" in path else "initial"
        return f"indication {indication.id} ({which})"
    return "continuation (every indication)"


@dataclass
class TreeCoverage:
    """The statuses seen for each node of one criteria tree, in the tree's order."""

    label: str
    path: Path
    seen: dict[str, set[Status]]

    def record(self, node: CriterionResult) -> None:
        """Note the statuses of an evaluated tree's nodes (the ids this tree holds)."""
        for criterion, status in _statuses(node):
            if criterion in self.seen:
                self.seen[criterion].add(status)


@dataclass
class Coverage:
    """What a policy's cases reached: criteria branches (per tree) and regimens."""

    trees: list[TreeCoverage]
    regimens: dict[str, set[Status]]
    fitted: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, policy: Policy) -> Coverage:
        trees = [
            TreeCoverage(_label(policy, path), path, {node.id: set() for node in tree.walk()})
            for path, tree in _outcome_trees(policy)
        ]
        return cls(trees, {r.id: set() for r in policy.dosing.regimens})

    @property
    def branches(self) -> tuple[int, int]:
        """(branches seen, branches in all): each node's met and not-met."""
        seen = total = 0
        for tree in self.trees:
            for statuses in tree.seen.values():
                total += len(BRANCHES)
                seen += sum(1 for b in BRANCHES if b in statuses)
        return seen, total

    @property
    def percent(self) -> float:
        seen, total = self.branches
        return 100.0 * seen / total if total else 100.0

    def not_reached(self) -> list[str]:
        """Each branch no case reached, as `indication 1 (initial) E not-met`."""
        return [
            f"{tree.label} {criterion} {branch}"
            for tree in self.trees
            for criterion, statuses in tree.seen.items()
            for branch in BRANCHES
            if branch not in statuses
        ]


def _tree_for(policy: Policy, coverage: Coverage, d: Determination) -> TreeCoverage | None:
    """The tree a determination's criteria come from (the engine's rule: a continuation uses
    the indication's continuation criteria, else the policy's, else the initial ones)."""
    if d.indication is None or d.criteria is None:
        return None
    index = next((i for i, ind in enumerate(policy.indications) if ind.id == d.indication.id), None)
    if index is None:
        return None
    indication = policy.indications[index]
    path: Path = ("indications", index, "criteria")
    if d.type == "continuation":
        if indication.continuation is not None:
            if indication.continuation.criteria is not None:
                path = ("indications", index, "continuation", "criteria")
        elif policy.continuation is not None and policy.continuation.criteria is not None:
            path = ("continuation", "criteria")
    return next((t for t in coverage.trees if t.path == path), None)


def _cover(policy: Policy, coverage: Coverage, d: Determination) -> None:
    tree = _tree_for(policy, coverage, d)
    if tree is not None and d.criteria is not None:
        tree.record(d.criteria)
    if d.dosing is not None:
        for check in d.dosing.checks:
            coverage.regimens.setdefault(check.id, set()).add(check.status)
        if d.dosing.regimen is not None:
            coverage.fitted.add(d.dosing.regimen)


@dataclass(frozen=True)
class SuiteResult:
    """A policy's cases run: each case's result, and what they covered."""

    policy: str
    cases: tuple[CaseResult, ...]
    coverage: Coverage

    @property
    def failed(self) -> int:
        return sum(1 for c in self.cases if not c.passed)


def run_cases(cases: CaseFile, policy: Policy, decide: Decide) -> SuiteResult:
    """Run every case of a checked case file against `policy` with `decide`."""
    coverage = Coverage.of(policy)
    results: list[CaseResult] = []
    for index in range(len(cases.cases)):
        result = run_case(cases, index, policy, decide)
        results.append(result)
        if result.determination is not None:
            _cover(policy, coverage, result.determination)
    return SuiteResult(policy.id, tuple(results), coverage)
