"""The operator's commands: `db upgrade`, and the audit trail's `verify`, `keygen`,
`checkpoint` and `checkpoints --export`.

Each ends with one line and exit 2 for what cannot be used (a database that is missing or does
not answer, a key or checkpoint file that does not read), never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from priorauth.entrypoints.cli_service import (
    DatabaseOption,
    _service,
    _settings,
    _stop,
    err,
    out,
)

__all__ = ["register"]

db_app = typer.Typer(help="Create or migrate the database.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseOption = None) -> None:
    """Create the database (a SQLite file, with its folder) or migrate it to the newest
    schema. Safe to run again: a database already at the newest schema is left as it is."""
    from priorauth.adapters.store import Database, DatabaseNotReady
    from priorauth.adapters.store.readiness import upgrade

    settings = _settings(database_url)
    try:
        database = Database(settings.database_url, create=True)
        try:
            before, after = upgrade(database)
        finally:
            database.dispose()
    except DatabaseNotReady as exc:
        _stop(str(exc))
    if before == after:
        out.print(f"database already at the newest schema ({after})")
    elif before is None:
        out.print(f"database created at schema {after}")
    else:
        out.print(f"database migrated from schema {before} to {after}")


def _audit_key_hex(path: Path | None) -> str | None:
    from priorauth.service.checkpoints import CheckpointError, load_key, public_key_hex

    if path is None:
        return None
    try:
        return public_key_hex(load_key(path))
    except CheckpointError as exc:
        _stop(str(exc))


def audit_verify(
    checkpoints: Annotated[
        Path | None,
        typer.Option(
            "--checkpoints",
            help="An exported checkpoint file kept elsewhere (audit checkpoints --export): "
            "catches deleted or rewritten events even when the checkpoints in the database "
            "went with them.",
        ),
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Check the audit trail: the hash chain, the signed checkpoints, every stored
    determination and every case's state against its events; name the first broken thing
    (exit 1)."""
    from priorauth.service.checkpoints import CheckpointError, read_checkpoints
    from priorauth.service.integrity import verify_trail

    settings = _settings(database_url)
    trusted = _audit_key_hex(settings.audit_key_file)
    try:
        exported = read_checkpoints(checkpoints) if checkpoints is not None else []
    except CheckpointError as exc:
        _stop(str(exc))
    with _service(database_url) as service:
        report = verify_trail(service.database, exported, trusted)
    if report.problem is not None:
        err.print(f"audit trail BROKEN: {report.problem}", markup=False)
        raise typer.Exit(1)
    out.print(
        f"audit trail intact: {report.events} event(s), {report.checkpoints} checkpoint(s), "
        f"{report.determinations} determination(s), {report.cases} case(s)"
    )


def audit_keygen(
    path: Annotated[Path, typer.Argument(help="Where to write the new private key (PEM).")],
) -> None:
    """Make an Ed25519 key for signing audit checkpoints (set PRIORAUTH_AUDIT_KEY_FILE to it;
    keep a copy of its public key, printed here, with the exported checkpoints)."""
    from priorauth.service.checkpoints import CheckpointError, new_key

    try:
        public = new_key(path)
    except CheckpointError as exc:
        _stop(str(exc))
    out.print(f"key written to {path}; public key {public}")


def audit_checkpoint(database_url: DatabaseOption = None) -> None:
    """Sign the audit chain's head now (PRIORAUTH_AUDIT_KEY_FILE) and record the checkpoint."""
    from priorauth.service.checkpoints import CheckpointError, load_key, make_checkpoint

    settings = _settings(database_url)
    if settings.audit_key_file is None:
        _stop("no audit key: set PRIORAUTH_AUDIT_KEY_FILE (priorauth audit keygen FILE makes one)")
    try:
        key = load_key(settings.audit_key_file)
    except CheckpointError as exc:
        _stop(str(exc))
    with _service(database_url) as service:
        checkpoint = make_checkpoint(service.database, key, service.clock())
    out.print(f"checkpoint: event {checkpoint.event_id} hash {checkpoint.hash} at {checkpoint.at}")


def audit_checkpoints(
    export: Annotated[
        Path | None,
        typer.Option("--export", help="Write them to this file (JSON lines) to keep elsewhere."),
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """List the signed checkpoints, or export them for safekeeping outside the database."""
    from priorauth.service.checkpoints import (
        CheckpointError,
        export_checkpoints,
        stored_checkpoints,
    )

    with _service(database_url) as service:
        found = stored_checkpoints(service.database)
    if export is not None:
        try:
            export_checkpoints(found, export)
        except CheckpointError as exc:
            _stop(str(exc))
        out.print(f"{len(found)} checkpoint(s) written to {export}")
        return
    for checkpoint in found:
        out.print(f"{checkpoint.at}  event {checkpoint.event_id}  {checkpoint.hash}")
    if not found:
        out.print("no checkpoints yet (priorauth audit checkpoint makes one)")


def register(app: typer.Typer, audit_app: typer.Typer) -> None:
    """Add `db` and the audit commands."""
    app.add_typer(db_app, name="db")
    audit_app.command("verify")(audit_verify)
    audit_app.command("keygen")(audit_keygen)
    audit_app.command("checkpoint")(audit_checkpoint)
    audit_app.command("checkpoints")(audit_checkpoints)
