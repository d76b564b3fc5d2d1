"""The audit trail: append-only events chained by SHA-256, and a check of the chain.

Each event's hash covers its own content and the previous event's hash, so changing, removing or
reordering any event breaks every hash after it. Details never carry clinical content: only
identifiers, outcomes and reason codes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, insert, select

from priorauth.adapters.store import AuditEventRow, execute
from priorauth.service.uow import UnitOfWork

__all__ = ["GENESIS", "ChainBreak", "append_event", "event_hash", "verify_chain"]

GENESIS = "0" * 64
# Built once: statements are reused on the hot path (every submission appends an event).
_EVENTS = cast(Table, AuditEventRow.__table__)
_LAST_EVENT = select(_EVENTS.c.id, _EVENTS.c.hash).order_by(_EVENTS.c.id.desc()).limit(1)
_INSERT_EVENT = insert(_EVENTS)


def event_hash(
    event_id: int,
    at: dt.datetime,
    actor: str,
    action: str,
    case_id: str | None,
    detail_json: str,
    prev_hash: str,
) -> str:
    """The hash of one event: SHA-256 over its fields and the previous hash, as canonical JSON."""
    body = json.dumps(
        [
            event_id,
            at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
            actor,
            action,
            case_id,
            detail_json,
            prev_hash,
        ],
        separators=(",", ":"),
    )
    return hashlib.sha256(body.encode()).hexdigest()


def append_event(
    uow: UnitOfWork,
    actor: str,
    action: str,
    case_id: str | None,
    detail: Mapping[str, Any],
    at: dt.datetime,
) -> str:
    """Append an event after the last one and return its hash. The caller is a writer
    (UnitOfWork.lock_writes); from here until it commits, it holds the chain's head."""
    uow.hold_chain()
    session = uow.session
    last = execute(session, _LAST_EVENT).first()
    event_id = 1 if last is None else last.id + 1
    prev = GENESIS if last is None else last.hash
    detail_json = json.dumps(detail, sort_keys=True, separators=(",", ":"), default=str)
    digest = event_hash(event_id, at, actor, action, case_id, detail_json, prev)
    # A plain INSERT: events are appended, never updated.
    execute(
        session,
        _INSERT_EVENT,
        {
            "id": event_id,
            "at": at,
            "actor": actor,
            "action": action,
            "case_id": case_id,
            "detail_json": detail_json,
            "prev_hash": prev,
            "hash": digest,
        },
    )
    return digest


@dataclass(frozen=True)
class ChainBreak:
    """The first event where the chain does not hold, and why."""

    event_id: int
    problem: str


def verify_chain(events: Iterable[AuditEventRow]) -> tuple[int, ChainBreak | None]:
    """Check events in id order: (how many were checked, the first break or None)."""
    prev = GENESIS
    expected_id = 1
    count = 0
    for event in events:
        count += 1
        if event.id != expected_id:
            return count, ChainBreak(event.id, f"expected event {expected_id} here (a gap)")
        if event.prev_hash != prev:
            return count, ChainBreak(event.id, "prev_hash does not match the previous event")
        actual = event_hash(
            event.id,
            event.at,
            event.actor,
            event.action,
            event.case_id,
            event.detail_json,
            event.prev_hash,
        )
        if actual != event.hash:
            return count, ChainBreak(event.id, "the event's content does not match its hash")
        prev = event.hash
        expected_id += 1
    return count, None
