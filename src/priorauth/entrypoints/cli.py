"""The `priorauth` command: evaluate requests, check policies, print schemas.

Exit codes: 0 when every request got a determination (approved or pended alike), 1 when a policy
check found errors, 2 for input that cannot be used (bad JSON, a field that does not fit).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from priorauth.catalog import PolicySet, load_policy
from priorauth.engine.compiled import policy_hash
from priorauth.engine.determination import Determination
from priorauth.engine.request import Request
from priorauth.entrypoints.cli_service import register as register_service_commands
from priorauth.entrypoints.render import determination_panel, policy_tree
from priorauth.errors import InvalidRequest, PolicyError
from priorauth.policy.loader import check_policy_text
from priorauth.policy.model import Policy
from priorauth.policy.safety_loader import check_safety_text
from priorauth.policy.safety_model import SafetyData

__all__ = ["app", "main"]

app = typer.Typer(
    help="priorauth: decide prior-authorization requests against drug policies, and explain why.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
policy_app = typer.Typer(help="Show or check a policy file.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")

out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False)


class Format(StrEnum):
    table = "table"
    json = "json"
    line = "line"


class SchemaName(StrEnum):
    request = "request"
    determination = "determination"
    policy = "policy"
    safety = "safety"


def _fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", markup=True)
    raise typer.Exit(code)


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


def _policies(directory: Path | None) -> PolicySet:
    try:
        return PolicySet.from_directory(directory)
    except PolicyError as exc:
        for issue in exc.issues:
            err.print(f"{exc.source}: {issue}")
        _fail(f"cannot load the policies: {exc}")


@app.command()
def evaluate(
    files: Annotated[list[str], typer.Argument(help="Request JSON files; - reads stdin.")],
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
    the output is JSON Lines, one determination a line.
    """
    when: dt.date | None = None
    if as_of is not None:
        try:
            when = dt.date.fromisoformat(as_of)
        except ValueError:
            _fail(f"--as-of: {as_of!r} is not a date (YYYY-MM-DD)")
    catalog = _policies(policies)
    failed = False
    for path in files:
        try:
            determination = catalog.evaluate(_read_request(path), as_of=when)
        except ValueError as exc:
            err.print(f"[bold red]error:[/] {exc}", markup=True)
            failed = True
            continue
        except InvalidRequest as exc:
            err.print(f"[bold red]error:[/] {path}: invalid request: {exc}", markup=True)
            failed = True
            continue
        _print(determination, format, path, single=len(files) == 1, explain=explain)
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


def _load_for_show(file: Path) -> Policy:
    try:
        return load_policy(file)
    except PolicyError as exc:
        for issue in exc.issues:
            err.print(f"{file}:{issue}", markup=False)
        _fail(f"{file}: {len(exc.issues)} problem(s); run `priorauth policy validate {file}`", 1)


@policy_app.command("show")
def policy_show(
    file: Annotated[Path, typer.Argument(help="A policy YAML file, e.g. policies/ixempra.yaml.")],
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
) -> None:
    """Print a policy: identity, drugs, the criteria tree, dosing and facts."""
    policy = _load_for_show(file)
    if format is Format.json:
        typer.echo(policy.model_dump_json(indent=2, by_alias=True, exclude_none=True))
        return
    out.print(policy_tree(policy, policy_hash(policy)))


@policy_app.command("validate")
def policy_validate(
    files: Annotated[list[Path], typer.Argument(help="Policy YAML files to check.")],
) -> None:
    """Check policy files through every stage (parse, schema, references, lint).

    A file ending in .data.yaml is checked as a policy's safety data, and a policy that names
    safety data has that file checked too. Prints each finding as FILE:LINE with a stable code;
    exits 1 if any file has an error.
    """
    errors = 0
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            err.print(f"{file}: cannot read: {exc.strerror}", markup=False)
            errors += 1
            continue
        if file.name.endswith(".data.yaml"):
            errors += _validate_safety(file, text)
            continue
        result = check_policy_text(text)
        for issue in result.issues:
            line = issue.line if issue.line is not None else "?"
            at = f" at {issue.path}" if issue.path else ""
            style = "red" if issue.severity == "error" else "yellow"
            out.print(
                f"{file}:{line}: [{style}]{issue.severity}[/] {issue.code}{at}: {issue.message}"
            )
        if result.value is not None:
            out.print(
                f"{file}: [green]ok[/] ({result.value.id} version {result.value.version}, "
                f"{policy_hash(result.value)[:19]})"
            )
            if result.value.safety is not None and file.parent / result.value.safety not in files:
                errors += _validate_safety(file.parent / result.value.safety)
        else:
            errors += 1
    if errors:
        raise typer.Exit(1)


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
        line = issue.line if issue.line is not None else "?"
        at = f" at {issue.path}" if issue.path else ""
        style = "red" if issue.severity == "error" else "yellow"
        out.print(f"{file}:{line}: [{style}]{issue.severity}[/] {issue.code}{at}: {issue.message}")
    if result.value is None:
        return 1
    out.print(
        f"{file}: [green]ok[/] ({result.value.id} version {result.value.version}, "
        f"{len(result.value.screens)} screens)"
    )
    return 0


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


def main() -> None:
    """The console script."""
    app()
