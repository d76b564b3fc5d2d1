"""The service commands of `priorauth`: serve, users add/list/deactivate/rotate, audit verify,
replay, metrics.

Each command builds the service from the environment (PRIORAUTH_DATABASE_URL, default a SQLite
file under var/) and calls one use case; none opens a database session itself.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from priorauth.service.config import Settings, reference_text
from priorauth.service.errors import ServiceError
from priorauth.service.people import ROLES, Actor

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from priorauth.service.checkpoints import CheckpointWorker
    from priorauth.service.workflow import PriorAuthService

# The modules behind the service (the store, SQLAlchemy, Alembic, the HTTP app) are imported
# by the commands that use them: `priorauth evaluate` and `priorauth policy` start without
# them, about half a second sooner.

__all__ = ["register"]

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="SQLAlchemy URL (default: $PRIORAUTH_DATABASE_URL, else sqlite:///var/priorauth.db).",
    ),
]

users_app = typer.Typer(help="Manage accounts and their bearer tokens.", no_args_is_help=True)
audit_app = typer.Typer(help="Check the audit trail.", no_args_is_help=True)


def _settings(database_url: str | None) -> Settings:
    """The settings from the PRIORAUTH_* variables, with --database-url over them; a variable
    that cannot be read ends the command with a one-line error (exit 2)."""
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        err.print(f"error: {exc}")
        raise typer.Exit(2) from exc
    return replace(settings, database_url=database_url) if database_url else settings


def _open(settings: Settings) -> PriorAuthService:
    """The service on a database that exists at the newest schema, with the policies loaded. A
    database that is missing, unreachable or not migrated, or a policy file that does not load,
    ends the command with one line and exit 2."""
    from priorauth.adapters.store import DatabaseNotReady
    from priorauth.errors import PolicyError
    from priorauth.service.runtime import open_service

    try:
        return open_service(settings, upgrade=False)
    except DatabaseNotReady as exc:
        _stop(str(exc))
    except PolicyError as exc:
        _stop(f"policy file {one_line(str(exc))} (--skip-bad-policies starts without it)")


def one_line(text: str) -> str:
    return " ".join(text.split())


def _stop(message: str) -> NoReturn:
    err.print(f"error: {message}", markup=False)
    raise typer.Exit(2)


@contextmanager
def _service(database_url: str | None) -> Iterator[PriorAuthService]:
    """The service for one command. A refusal (unknown account, no such request, ...) ends the
    command with one line and exit 2."""
    # The accounts, audit and replay commands work whatever the policy folder holds: a file
    # that does not load is named and left out (only `serve` refuses to start without it).
    service = _open(replace(_settings(database_url), skip_bad_policies=True))
    for problem in service.skipped_policies:
        err.print(f"warning: left out policy file {one_line(str(problem))}", markup=False)
    try:
        yield service
    except ServiceError as exc:
        err.print(f"error: {exc}")
        raise typer.Exit(2) from exc
    finally:
        service.close()


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    database_url: DatabaseOption = None,
    demo: Annotated[
        bool, typer.Option(help="Add demo accounts and submit the example requests first.")
    ] = False,
    examples: Annotated[Path, typer.Option(help="The example requests --demo submits.")] = Path(
        "examples"
    ),
    skip_bad_policies: Annotated[
        bool,
        typer.Option(
            help="Start with the policy files that load, naming each one that does not "
            "(without it, one bad file stops the start)."
        ),
    ] = False,
    log_format: Annotated[
        str | None,
        typer.Option(help="text or json (default: $PRIORAUTH_LOG_FORMAT, else text)."),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Server processes answering HTTP on the one port (about one per core). With "
            "more than one, this process checks and prepares, then supervises them, and runs "
            "the notification delivery and the checkpoints itself. Rate limits count per "
            "process.",
        ),
    ] = 1,
) -> None:
    """Run the HTTP API, the delivery of subscription notifications and the audit checkpoints.

    The database must exist at the newest schema: create or migrate it with `priorauth db
    upgrade` first. Settings come from these environment variables:
    """
    import uvicorn

    from priorauth.entrypoints.api import create_app
    from priorauth.entrypoints.logs import configure_logging
    from priorauth.service.outbox import OutboxWorker
    from priorauth.service.runtime import load_demo

    settings = _settings(database_url)
    if skip_bad_policies:
        settings = replace(settings, skip_bad_policies=True)
    if log_format is not None:
        if log_format not in ("text", "json"):
            _stop(f"--log-format is text or json, not {log_format!r}")
        settings = replace(settings, log_format=log_format)
    busy = port_in_use(host, port)
    if busy is not None:
        _stop(busy)
    checkpoint_key = _checkpoint_key(settings)
    service = _open(settings)
    # Once the start can no longer fail with a one-line error: the log is the server's.
    configure_logging(settings.log_format)
    for problem in service.skipped_policies:
        err.print(f"warning: left out policy file {one_line(str(problem))}", markup=False)
    if demo:
        created = load_demo(service, examples)
        err.print(
            f"demo: accounts ready, {created} example request(s) submitted "
            "(tokens: demo-submitter-token, demo-pharmacist-token, demo-md1-token, "
            "demo-md2-token, demo-admin-token)"
        )
    # Subscription notifications are delivered from the outbox while the server runs.
    worker = OutboxWorker(service.database, allowed_hosts=settings.subscription_hosts)
    worker.start()
    checkpoints = _checkpoint_worker(service, settings, checkpoint_key)
    try:
        if workers > 1:
            _prepare_workers(settings)
            # Each process builds its app from the environment (api.served); log_config=None:
            # uvicorn's own lines go through the logging configured above.
            uvicorn.run(
                "priorauth.entrypoints.api.served:worker_app",
                factory=True,
                workers=workers,
                host=host,
                port=port,
                access_log=False,
                log_config=None,
            )
        else:
            app = create_app(service)
            # What startup built (modules, policies, the app) lives as long as the server:
            # moved out of the collector's sight, so full collections scan only what requests
            # allocate (shorter pauses in the tail latency).
            gc.collect()
            gc.freeze()
            uvicorn.run(app, host=host, port=port, access_log=False, log_config=None)
    finally:
        if checkpoints is not None:
            checkpoints.stop()
        worker.stop()
        service.close()


def _prepare_workers(settings: Settings) -> None:
    """Write the settings this command was given into the environment the worker processes
    start from, and one session secret for all of them when none is configured (a workbench
    session made by one process is then good on every other)."""
    os.environ["PRIORAUTH_DATABASE_URL"] = settings.database_url
    os.environ["PRIORAUTH_LOG_FORMAT"] = settings.log_format
    os.environ["PRIORAUTH_SKIP_BAD_POLICIES"] = "yes" if settings.skip_bad_policies else "no"
    if not os.environ.get("PRIORAUTH_SESSION_SECRET"):
        os.environ["PRIORAUTH_SESSION_SECRET"] = secrets.token_urlsafe(32)


def port_in_use(host: str, port: int) -> str | None:
    """None when `host:port` can be listened on now; else one line saying why not."""
    import errno
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (
                    f"port {port} on {host} is in use by another program; choose another "
                    f"with --port (make run PORT={port + 1})"
                )
            return f"cannot listen on {host}:{port}: {exc.strerror}"
    return None


def _checkpoint_key(settings: Settings) -> Ed25519PrivateKey | None:
    """The audit key, when configured (one line and exit 2 when it cannot be read)."""
    if settings.audit_key_file is None:
        return None
    from priorauth.service.checkpoints import CheckpointError, load_key

    try:
        return load_key(settings.audit_key_file)
    except CheckpointError as exc:
        _stop(str(exc))


def _checkpoint_worker(
    service: PriorAuthService, settings: Settings, key: Ed25519PrivateKey | None
) -> CheckpointWorker | None:
    if key is None or settings.checkpoint_minutes <= 0:
        return None
    from priorauth.service.checkpoints import CheckpointWorker

    log = logging.getLogger("priorauth.audit")
    worker = CheckpointWorker(
        service.database,
        key,
        settings.checkpoint_minutes,
        service.clock,
        lambda exc: log.error("audit checkpoint failed: %s", type(exc).__name__),
    )
    worker.start()
    return worker


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="A unique account name.")],
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")],
    organization: Annotated[
        str | None, typer.Option(help="The provider organization (submitters).")
    ] = None,
    npi: Annotated[str | None, typer.Option(help="The reviewer's NPI (reviewers).")] = None,
    specialty: Annotated[
        str | None, typer.Option(help="The reviewer's specialty (reviewers).")
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Create an account and print its bearer token (shown once; only its hash is stored)."""
    with _service(database_url) as service:
        token = service.add_user(name, role, organization, npi, specialty)
    out.print(token)


@users_app.command("list")
def users_list(database_url: DatabaseOption = None) -> None:
    """List the accounts: name, role, organization, active or not (tokens are never shown)."""
    with _service(database_url) as service:
        accounts = service.users()
    table = Table("name", "role", "organization", "active", "created")
    for account in accounts:
        table.add_row(
            account["name"],
            account["role"],
            account["organization"] or "-",
            "yes" if account["active"] else "[red]no[/]",
            account["created_at"][:19],
        )
    out.print(table)


@users_app.command("deactivate")
def users_deactivate(
    name: Annotated[str, typer.Argument(help="The account to stop.")],
    database_url: DatabaseOption = None,
) -> None:
    """Stop an account: its token is refused from now on (its history is kept)."""
    with _service(database_url) as service:
        service.deactivate_user(name)
    out.print(f"{name}: deactivated")


@users_app.command("rotate")
def users_rotate(
    name: Annotated[str, typer.Argument(help="The account that gets a new token.")],
    database_url: DatabaseOption = None,
) -> None:
    """Print a new bearer token for an account (shown once) and refuse its old one. An
    inactive account is active again with the new token."""
    with _service(database_url) as service:
        token = service.rotate_token(name)
    out.print(token)


def replay(
    request_id: Annotated[str, typer.Argument(help="A case id or a request_id.")],
    database_url: DatabaseOption = None,
) -> None:
    """Re-evaluate a stored request under its recorded policy version; exit 1 on a difference."""
    with _service(database_url) as service:
        results = service.replay(request_id)
    differ = False
    for result in results:
        if result.same:
            out.print(f"determination {result.determination_id}: same ({result.policy})")
        elif result.problem is not None:
            differ = True
            out.print(
                f"determination {result.determination_id}: NOT REPLAYED: {result.problem} "
                f"({result.policy})",
                markup=False,
            )
        else:
            differ = True
            out.print(
                f"determination {result.determination_id}: DIFFERS in "
                f"{', '.join(result.differences)} ({result.policy})"
            )
    if differ:
        raise typer.Exit(1)


def metrics(
    start: Annotated[
        str | None, typer.Option("--from", help="First day (YYYY-MM-DD); default 1 January.")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Last day (YYYY-MM-DD); default today.")
    ] = None,
    csv: Annotated[bool, typer.Option("--csv", help="CSV instead of JSON.")] = False,
    database_url: DatabaseOption = None,
) -> None:
    """Print the CMS-0057-F style figures for a period."""
    try:
        last = dt.date.fromisoformat(end) if end else dt.datetime.now(dt.UTC).date()
        first = dt.date.fromisoformat(start) if start else last.replace(month=1, day=1)
    except ValueError as exc:
        err.print(f"error: {exc}")
        raise typer.Exit(2) from exc
    from priorauth.service.metrics import metrics_csv

    operator = Actor(0, "cli", "admin", None, None, None)
    with _service(database_url) as service:
        report = service.metrics(
            operator,
            dt.datetime.combine(first, dt.time(), dt.UTC),
            dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), dt.UTC),
        )
    out.print(metrics_csv(report) if csv else json.dumps(report, indent=2), markup=False)


def register(app: typer.Typer) -> None:
    """Add the service commands to the `priorauth` command."""
    app.command(epilog=reference_text() + "\n\nMore in docs/configuration.md.")(serve)
    app.command()(replay)
    app.command()(metrics)
    app.add_typer(users_app, name="users")
    app.add_typer(audit_app, name="audit")
    # db upgrade and the audit checkpoints (entrypoints.cli_ops).
    from priorauth.entrypoints.cli_ops import register as register_operations

    register_operations(app, audit_app)
