"""The `priorauth` command: evaluate requests, check policies, print schemas.

Exit codes: 0 when every request got a determination (approved or pended alike), 1 when a policy
check found errors or a policy test case failed, 2 for input that cannot be used (bad JSON, a
field that does not fit, a case file that does not load).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from priorauth._version import __version__
from priorauth.casefiles import (
    CASES_FOLDER,
    CASES_SUFFIX,
    case_file_for,
    check_case_file,
    find_suites,
    is_case_file,
    policy_file_for,
    run_suite,
)
from priorauth.catalog import PolicySet, default_policy_dir, default_vocabulary, load_policy
from priorauth.clinical.drugs import Vocabulary, load_vocabulary, shipped_vocabulary
from priorauth.engine.compiled import policy_hash
from priorauth.engine.determination import Determination
from priorauth.engine.request import Request
from priorauth.engine.safety import check_classes
from priorauth.entrypoints.cli_batch import register as register_batch_commands
from priorauth.entrypoints.cli_common import err, fail, policy_or_fail
from priorauth.entrypoints.cli_dtr import dtr_app
from priorauth.entrypoints.cli_service import register as register_service_commands
from priorauth.entrypoints.render import determination_panel, policy_tree
from priorauth.errors import InvalidRequest, PolicyError, PolicyIssue
from priorauth.policy.loader import check_policy_text
from priorauth.policy.model import Policy
from priorauth.policy.safety_loader import check_safety_text
from priorauth.policy.safety_model import SafetyData
from priorauth.policy.testing import Coverage

__all__ = ["app", "main"]

# The drug vocabulary lives in this folder of a policy folder (clinical.drugs).
VOCABULARY_FOLDER = "vocabulary"

app = typer.Typer(
    help="priorauth: decide prior-authorization requests against drug policies, and explain why.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"priorauth {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """priorauth: decide prior-authorization requests against drug policies, and explain why."""


policy_app = typer.Typer(help="Show, check or test policy files.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")
app.add_typer(dtr_app, name="dtr")

out = Console(highlight=False, soft_wrap=False)


class Format(StrEnum):
    table = "table"
    json = "json"
    line = "line"


class SchemaName(StrEnum):
    request = "request"
    determination = "determination"
    policy = "policy"
    safety = "safety"


def _read_request(path: str) -> Any:
    """The JSON in a file (or stdin for `-`); InvalidInput-style one-line errors otherwise."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc


def _requests(path: str, data: Any, policies: PolicySet) -> list[Any]:
    """The requests a document holds: itself, or one per Claim item of a PAS bundle."""
    if not (isinstance(data, dict) and data.get("resourceType") == "Bundle"):
        return [data]
    # The FHIR adapter (fhir.resources) is loaded only when a bundle is read.
    from priorauth.adapters.fhir.mapping import InvalidBundle, bundle_requests

    try:
        return bundle_requests(data, policies)
    except InvalidBundle as exc:
        raise ValueError(f"{path}: not a usable PAS request bundle: {exc}") from exc


def _policies(directory: Path | None) -> PolicySet:
    try:
        return PolicySet.from_directory(directory)
    except PolicyError as exc:
        for issue in exc.issues:
            err.print(f"{exc.source}: {issue}", markup=False)
        fail(f"cannot load the policies: {exc}")


@app.command()
def evaluate(
    files: Annotated[
        list[str],
        typer.Argument(help="Request JSON files or PAS request bundles; - reads stdin."),
    ],
    format: Annotated[
        Format,
        typer.Option(
            "--format", "-f", help="table for people, line for one line each, json for programs."
        ),
    ] = Format.table,
    policies: Annotated[
        Path | None,
        typer.Option(help="A folder of policy YAML files (default: the shipped policies)."),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(help="Evaluate as of this date (YYYY-MM-DD); default: the received date."),
    ] = None,
    explain: Annotated[
        bool, typer.Option(help="With --format table, also print the reasoning line by line.")
    ] = False,
) -> None:
    """Decide each request and print its determination.

    A request is approved when the policy's criteria and dosing are met, and otherwise pended to
    a person with the reasons (the software never denies). With several files and --format json
    the output is JSON Lines, one determination a line. A Da Vinci PAS request bundle is read
    as one request per Claim item.
    """
    when: dt.date | None = None
    if as_of is not None:
        try:
            when = dt.date.fromisoformat(as_of)
        except ValueError:
            fail(f"--as-of: {as_of!r} is not a date (YYYY-MM-DD)")
    catalog = _policies(policies)
    failed = False
    for path in files:
        try:
            requests = _requests(path, _read_request(path), catalog)
            determinations = [catalog.evaluate(request, as_of=when) for request in requests]
        except ValueError as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True)
            failed = True
            continue
        except InvalidRequest as exc:
            err.print(
                f"[bold red]error:[/] {escape(path)}: invalid request: {escape(str(exc))}",
                markup=True,
            )
            failed = True
            continue
        single = len(files) == 1 and len(determinations) == 1
        for determination in determinations:
            _print(determination, format, path, single=single, explain=explain)
    if failed:
        raise typer.Exit(2)


def _print(d: Determination, format: Format, source: str, single: bool, explain: bool) -> None:
    if format is Format.json:
        typer.echo(d.model_dump_json(indent=2 if single else None))
        return
    if format is Format.line:
        colour = "green" if d.outcome == "approved" else "yellow"
        out.print(
            f"{d.request_id:<16} [{colour}]{d.outcome:<9}[/] {d.summary}",
            markup=True,
            soft_wrap=True,
        )
        return
    out.print(determination_panel(d, source))
    if explain:
        for line in d.explain():
            out.print(f"  {line}", markup=False)


@policy_app.command("show")
def policy_show(
    file: Annotated[Path, typer.Argument(help="A policy YAML file, e.g. policies/NAME.yaml.")],
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
) -> None:
    """Print a policy: identity, drugs, the criteria tree, dosing and facts."""
    policy = policy_or_fail(file)
    if format is Format.json:
        typer.echo(policy.model_dump_json(indent=2, by_alias=True, exclude_none=True))
        return
    out.print(policy_tree(policy, policy_hash(policy)))


def _shown(file: Path) -> str:
    """A path as people type it: relative to the working folder when it is inside it."""
    try:
        return str(file.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(file)


def _print_issue(file: Path, issue: PolicyIssue) -> None:
    """One finding as `FILE:LINE: severity CODE at PATH: message` (never wrapped)."""
    line = issue.line if issue.line is not None else "?"
    at = f" at {issue.path}" if issue.path else ""
    style = "red" if issue.severity == "error" else "yellow"
    out.print(
        f"{escape(_shown(file))}:{line}: [{style}]{issue.severity}[/] {issue.code}{escape(at)}: "
        f"{escape(issue.message)}",
        soft_wrap=True,
    )


def _ok(file: Path, what: str) -> None:
    out.print(f"{escape(_shown(file))}: [green]ok[/] ({escape(what)})", soft_wrap=True)


def _validation_targets(paths: list[Path]) -> list[Path]:
    """The files to check: each file given, and for a folder its policies, their data files
    and their test cases."""
    targets: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = (
                sorted(path.glob("*.yaml"))
                + sorted((path / VOCABULARY_FOLDER).glob("drugs.yaml"))
                + sorted((path / CASES_FOLDER).glob(f"*{CASES_SUFFIX}"))
            )
        else:
            found = [path]
        targets.extend(f for f in found if f not in targets)
    return targets


@policy_app.command("validate")
def policy_validate(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Policy files, data files, case files or folders (default: the policy folder)."
        ),
    ] = None,
) -> None:
    """Check policy files through every stage (parse, schema, references, lint).

    A file ending in .data.yaml is checked as a policy's safety data (and the drug classes its
    screens name against the drug vocabulary), one ending in .cases.yaml as a policy's test
    cases (against its policy), vocabulary/drugs.yaml as the drug vocabulary, and a policy that
    names safety data or has test cases has those checked too. Prints each finding as
    FILE:LINE with a stable code and, for a misspelt name, the nearest one allowed; exits 1 if
    any file has an error.
    """
    targets = _validation_targets(paths or [default_policy_dir()])
    checked: set[Path] = set()
    errors = 0
    for file in targets:
        if file in checked:
            continue
        checked.add(file)
        if is_case_file(file):
            errors += _validate_cases(file)
            continue
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            err.print(f"{file}: cannot read: {reason}", markup=False)
            errors += 1
            continue
        if file.name.endswith(".data.yaml"):
            errors += _validate_safety(file, text)
            continue
        if file.parent.name == VOCABULARY_FOLDER and file.name == "drugs.yaml":
            errors += _validate_vocabulary(file)
            continue
        result = check_policy_text(text)
        for issue in result.issues:
            _print_issue(file, issue)
        if result.value is None:
            errors += 1
            continue
        policy = result.value
        _ok(file, f"{policy.id} version {policy.version}, {policy_hash(policy)[:19]}")
        beside = [case_file_for(file)]
        if policy.safety is not None:
            beside.insert(0, file.parent / policy.safety)
        for extra in beside:
            if extra in checked or extra in targets or not extra.exists():
                continue
            checked.add(extra)
            errors += _validate_cases(extra) if is_case_file(extra) else _validate_safety(extra)
    if errors:
        raise typer.Exit(1)


def _validate_cases(file: Path) -> int:
    """Check a policy's test case file against its policy; 1 when it has an error."""
    policy_file = policy_file_for(file)
    try:
        policy = load_policy(policy_file)
    except PolicyError as exc:
        err.print(
            f"{file}: cannot check the cases: their policy {policy_file} does not load "
            f"({len(exc.issues)} problem(s); run `priorauth policy validate {policy_file}`)",
            markup=False,
        )
        return 1
    issues = check_case_file(file, policy)
    for issue in issues:
        _print_issue(file, issue)
    if any(i.severity == "error" for i in issues):
        return 1
    _ok(file, f"test cases for {policy.id}")
    return 0


def _validate_safety(file: Path, text: str | None = None) -> int:
    """Check one safety data file and print its findings; 1 when it has an error."""
    if text is None:
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            err.print(f"{file}: cannot read: {exc.strerror}", markup=False)
            return 1
    result = check_safety_text(text)
    for issue in result.issues:
        _print_issue(file, issue)
    if result.value is None:
        return 1
    try:
        check_classes(result.value, _vocabulary_beside(file), str(file))
    except PolicyError as exc:
        for issue in exc.issues:
            _print_issue(file, issue)
        return 1
    _ok(
        file,
        f"{result.value.id} version {result.value.version}, {len(result.value.screens)} screens",
    )
    return 0


def _vocabulary_beside(file: Path) -> Vocabulary:
    """The drug vocabulary of a policy folder: its own vocabulary/, else the shipped one."""
    if (file.parent / VOCABULARY_FOLDER).is_dir():
        return shipped_vocabulary(str(file.parent))
    return default_vocabulary()


def _validate_vocabulary(file: Path) -> int:
    """Check the drug vocabulary (drugs.yaml and the name list beside it); 1 on an error."""
    try:
        vocabulary = load_vocabulary(file.parent)
    except PolicyError as exc:
        for issue in exc.issues:
            _print_issue(file, issue)
        return 1
    _ok(file, f"{vocabulary.version}, {len(vocabulary.classes())} drug classes")
    return 0


@policy_app.command("test")
def policy_test(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Policy files, case files or folders of policies (default: the policy folder)."
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also print every node's coverage.")
    ] = False,
    min_coverage: Annotated[
        float,
        typer.Option(help="Fail when a policy's criteria coverage is below this percentage."),
    ] = 0.0,
) -> None:
    """Run each policy's test cases (policies/tests/NAME.cases.yaml) and report coverage.

    One line per case (PASS, or FAIL with each difference), a summary, and for each policy the
    criteria branches its cases reached: every node of every criteria tree counts twice, met
    and not met, and the branches no case reached are listed. Exits 1 when a case fails (or
    coverage is below --min-coverage), 2 when a policy or case file cannot be used.
    """
    suites = find_suites(paths or [default_policy_dir()])
    passed = failed = 0
    unusable = low = False
    for policy_file, case_file in suites:
        run = run_suite(policy_file, case_file)
        for source, issue in run.problems:
            _print_issue(source, issue)
        if run.result is None:
            unusable = True
            continue
        result = run.result
        out.print(
            f"[bold]{escape(_shown(case_file))}[/] ({result.policy}, {len(result.cases)} cases)",
            soft_wrap=True,
        )
        for case in result.cases:
            if case.passed:
                out.print(f"  [green]PASS[/] {escape(case.name)}", soft_wrap=True)
                passed += 1
                continue
            failed += 1
            out.print(f"  [red]FAIL[/] {escape(case.name)}", soft_wrap=True)
            for problem in case.problems:
                out.print(f"         {escape(problem)}", soft_wrap=True)
        _print_coverage(result.coverage, result.policy, verbose)
        if result.coverage.percent < min_coverage:
            low = True
            out.print(
                f"  [red]coverage {result.coverage.percent:.1f}% is below {min_coverage:g}%[/]"
            )
    colour = "red" if failed else "green"
    out.print(f"[{colour}]{passed} passed, {failed} failed[/]")
    if unusable:
        raise typer.Exit(2)
    if failed or low:
        raise typer.Exit(1)


def _print_coverage(coverage: Coverage, policy_id: str, verbose: bool) -> None:
    seen, total = coverage.branches
    fitted = [r for r in coverage.regimens if r in coverage.fitted]
    out.print(
        f"  coverage {escape(policy_id)}: {seen} of {total} criteria branches "
        f"({coverage.percent:.1f}%); regimens fitted: {len(fitted)} of "
        f"{len(coverage.regimens)} ({escape(', '.join(fitted) or 'none')})",
        soft_wrap=True,
    )
    missed = coverage.not_reached()
    if missed:
        out.print(f"  not reached: {escape('; '.join(missed))}", soft_wrap=True)
    never = [r for r in coverage.regimens if r not in coverage.fitted]
    if never:
        out.print(f"  regimens never fitted: {escape(', '.join(never))}", soft_wrap=True)
    if not verbose:
        return
    for tree in coverage.trees:
        out.print(f"  {escape(tree.label)}", soft_wrap=True)
        for criterion, statuses in tree.seen.items():
            marks = " ".join(
                s if s in statuses else "-" * len(s) for s in ("met", "not-met", "unknown")
            )
            out.print(f"    {escape(criterion):<32} {marks}", soft_wrap=True)
    for regimen, statuses in coverage.regimens.items():
        shown = ", ".join(sorted(statuses)) or "never checked"
        out.print(f"  regimen {escape(regimen):<24} {shown}", soft_wrap=True)


@app.command()
def schema(
    name: Annotated[SchemaName, typer.Argument(help="request, determination, policy or safety.")],
) -> None:
    """Print the JSON Schema of the request, the determination, the policy file or a policy's
    safety data file."""
    schemas: dict[SchemaName, Any] = {
        SchemaName.request: lambda: Request.model_json_schema(by_alias=True),
        SchemaName.determination: Determination.model_json_schema,
        SchemaName.policy: lambda: Policy.model_json_schema(by_alias=True),
        SchemaName.safety: lambda: SafetyData.model_json_schema(by_alias=True),
    }
    typer.echo(json.dumps(schemas[name](), indent=2))


# The service commands (serve, users, audit, replay, metrics) live in their own module.
register_service_commands(app)
register_batch_commands(app)


def main() -> None:
    """The console script."""
    app()
