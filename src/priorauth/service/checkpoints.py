"""Signed checkpoints of the audit chain: the anchor that a copy kept elsewhere checks against.

The hash chain alone catches an edit, but not someone who deletes the last events or rewrites
one and recomputes every later hash. A checkpoint is the chain head (the last event's id and
hash) signed with an Ed25519 key from configuration (PRIORAUTH_AUDIT_KEY_FILE). Each one is also
appended to the chain as an `audit.checkpoint` event, and `priorauth audit checkpoints --export
FILE` writes them all out; `priorauth audit verify --checkpoints FILE` then finds any signed
head missing (truncation) or changed (a rewrite) in the database. The checkpoint signs whatever
the chain head is, so a later change in how events are sealed keeps it valid.

A checkpoint file is JSON lines, one checkpoint each::

    {"at": "...", "event_id": 42, "hash": "...", "public_key": "<hex>", "signature": "<hex>"}
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from sqlalchemy import Table, select

from priorauth.adapters.store import AuditEventRow, Database
from priorauth.service.audit import GENESIS, append_event
from priorauth.service.uow import UnitOfWork

__all__ = [
    "CHECKPOINT_ACTION",
    "Checkpoint",
    "CheckpointError",
    "CheckpointWorker",
    "export_checkpoints",
    "load_key",
    "make_checkpoint",
    "new_key",
    "public_key_hex",
    "read_checkpoints",
    "stored_checkpoints",
]

CHECKPOINT_ACTION = "audit.checkpoint"
_EVENTS = cast(Table, AuditEventRow.__table__)


class CheckpointError(Exception):
    """A key or checkpoint file that cannot be used; the message is one line."""


@dataclass(frozen=True)
class Checkpoint:
    """The chain head at a moment, signed: event `event_id` had hash `hash`."""

    event_id: int
    hash: str
    at: str
    public_key: str
    signature: str

    def statement(self) -> bytes:
        """The bytes signed: the head, the time and the key, as canonical JSON."""
        body = {"at": self.at, "event_id": self.event_id, "hash": self.hash, "key": self.public_key}
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    def signature_holds(self) -> bool:
        try:
            key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(self.public_key))
            key.verify(bytes.fromhex(self.signature), self.statement())
        except (InvalidSignature, ValueError):
            return False
        return True

    @classmethod
    def from_mapping(cls, data: Any) -> Checkpoint:
        if not isinstance(data, dict):
            raise ValueError("a checkpoint is a JSON object")
        try:
            return cls(
                event_id=int(data["event_id"]),
                hash=str(data["hash"]),
                at=str(data["at"]),
                public_key=str(data["public_key"]),
                signature=str(data["signature"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"a checkpoint needs event_id, hash, at, public_key, signature ({exc})"
            ) from exc


def new_key(path: Path) -> str:
    """Write a new Ed25519 private key (PEM, readable by its owner only) to `path`, which must
    not exist; returns the public key in hex."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise CheckpointError(f"{path} exists; a key is never overwritten") from exc
    except OSError as exc:
        raise CheckpointError(f"cannot write {path}: {exc.strerror}") from exc
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)
    return public_key_hex(key)


def load_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in a PEM file; CheckpointError saying what is wrong otherwise."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read the audit key {path}: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path} is not an unencrypted PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(f"{path} is not an Ed25519 key")
    return key


def public_key_hex(key: Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        .hex()
    )


def make_checkpoint(database: Database, key: Ed25519PrivateKey, at: dt.datetime) -> Checkpoint:
    """Sign the chain head as it is now and append the checkpoint to the chain."""
    with UnitOfWork(database) as uow:
        uow.lock_writes()
        # The head it signs stays the head until the checkpoint event follows it.
        uow.hold_chain()
        last = uow.session.execute(
            select(_EVENTS.c.id, _EVENTS.c.hash).order_by(_EVENTS.c.id.desc()).limit(1)
        ).first()
        event_id, head = (0, GENESIS) if last is None else (int(last.id), str(last.hash))
        unsigned = Checkpoint(
            event_id, head, at.astimezone(dt.UTC).isoformat(), public_key_hex(key), ""
        )
        checkpoint = Checkpoint(
            unsigned.event_id,
            unsigned.hash,
            unsigned.at,
            unsigned.public_key,
            key.sign(unsigned.statement()).hex(),
        )
        append_event(uow, "system", CHECKPOINT_ACTION, None, asdict(checkpoint), at)
        uow.commit()
    return checkpoint


def stored_checkpoints(database: Database) -> list[Checkpoint]:
    """The checkpoints recorded in the chain, oldest first (unreadable ones are left to
    `verify` to report)."""
    found = []
    with UnitOfWork(database) as uow:
        rows = uow.session.execute(
            select(_EVENTS.c.detail_json)
            .where(_EVENTS.c.action == CHECKPOINT_ACTION)
            .order_by(_EVENTS.c.id)
        )
        for row in rows:
            try:
                found.append(Checkpoint.from_mapping(json.loads(row.detail_json)))
            except ValueError:
                continue
    return found


def export_checkpoints(checkpoints: list[Checkpoint], path: Path) -> None:
    """Write the checkpoints as JSON lines (the file is replaced whole)."""
    lines = [json.dumps(asdict(c), sort_keys=True) for c in checkpoints]
    temporary = path.with_name(path.name + ".tmp")
    try:
        temporary.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        temporary.replace(path)
    except OSError as exc:
        raise CheckpointError(f"cannot write {path}: {exc.strerror}") from exc


def read_checkpoints(path: Path) -> list[Checkpoint]:
    """The checkpoints in an exported file; CheckpointError naming the line otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise CheckpointError(f"{path} is not UTF-8 text") from exc
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            found.append(Checkpoint.from_mapping(json.loads(line)))
        except ValueError as exc:
            raise CheckpointError(f"{path} line {number}: {exc}") from exc
    return found


class CheckpointWorker:
    """Makes a checkpoint every `minutes` in a background thread while the server runs."""

    def __init__(
        self,
        database: Database,
        key: Ed25519PrivateKey,
        minutes: float,
        clock: Callable[[], dt.datetime],
        on_error: Callable[[Exception], None],
    ) -> None:
        self.database = database
        self.key = key
        self.seconds = minutes * 60
        self.clock = clock
        self.on_error = on_error
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-checkpoints", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                make_checkpoint(self.database, self.key, self.clock())
            except Exception as exc:  # the server goes on; the next interval tries again
                self.on_error(exc)
