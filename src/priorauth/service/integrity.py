"""`priorauth audit verify`: the whole record checked, and the first broken thing named.

In order:
1. the hash chain (service.audit): every event's hash, its link to the one before, no gap;
2. the signed checkpoints, those in the chain and those of an exported file kept elsewhere:
   each signature holds (by the configured key, when one is given) and the event it signed is
   still there with the same hash, so deleting the last events or rewriting one and recomputing
   every later hash is caught;
3. every stored determination: its request hash recomputed from the request it keeps, its
   outcome, reasons and policy columns against its JSON, and the hash of its JSON against the
   hash its audit event recorded (events written before that was recorded are checked for the
   rest; texts a migration rewrote against the hashes its `request.upgraded` event keeps);
4. every case's state (status, extended) against the state its events lead to.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from priorauth.adapters.store import AuditEventRow, CaseRow, Database, DeterminationRow
from priorauth.engine.compiled import request_hash
from priorauth.service.audit import verify_chain
from priorauth.service.checkpoints import CHECKPOINT_ACTION, Checkpoint
from priorauth.service.uow import UnitOfWork

__all__ = ["STATUS_AFTER", "TrailReport", "determination_digest", "verify_trail"]


def determination_digest(determination_json: str) -> str:
    """The hash an audit event records of a stored determination's JSON."""
    return "sha256:" + hashlib.sha256(determination_json.encode()).hexdigest()


def _outcome_status(detail: Mapping[str, Any]) -> str | None:
    return "approved" if detail.get("outcome") == "approved" else "pended"


_DECIDED = {
    "approve": "approved",
    "approve-modified": "approved-modified",
    "deny": "denied",
    "request-info": "information-requested",
}

# The status a case is in after each event that moves it (events not listed leave it as it was).
STATUS_AFTER: dict[str, Callable[[Mapping[str, Any]], str | None]] = {
    "request.submitted": _outcome_status,
    "request.information-added": _outcome_status,
    "request.replaced": _outcome_status,
    "request.decided": lambda detail: _DECIDED.get(str(detail.get("action"))),
    "request.appealed": lambda detail: "appealed",
    "request.cancelled": lambda detail: "cancelled",
}


@dataclass(frozen=True)
class TrailReport:
    """What was checked, and the first problem found (None: all holds)."""

    events: int
    checkpoints: int
    determinations: int
    cases: int
    problem: str | None


def verify_trail(
    database: Database,
    exported: Iterable[Checkpoint] = (),
    trusted_key: str | None = None,
) -> TrailReport:
    """Check the chain, the checkpoints (stored and `exported`), the determinations and the
    case states. With `trusted_key` (hex), every checkpoint must be signed by that key.

    Rows are streamed; what is kept in memory is per case (its state and the determination
    hashes its events recorded), not per event."""
    exported = list(exported)
    with UnitOfWork(database) as uow:
        session = uow.session
        trail = _Trail()
        events = session.scalars(
            select(AuditEventRow).order_by(AuditEventRow.id).execution_options(yield_per=1000)
        )
        try:
            event_count, chain_break = verify_chain(trail.follow(events))
        finally:
            events.close()
        counts = {"events": event_count, "determinations": 0, "cases": 0}

        def report(checkpoints: int, problem: str | None) -> TrailReport:
            return TrailReport(checkpoints=checkpoints, problem=problem, **counts)

        if chain_break is not None:
            return report(0, f"event {chain_break.event_id}: {chain_break.problem}")
        if trail.problem is not None:
            return report(0, trail.problem)
        every = [("stored", c) for c in trail.checkpoints] + [("exported", c) for c in exported]
        wanted = {c.event_id for _, c in every}
        hashes: dict[int, str] = {
            row.id: row.hash
            for row in session.execute(
                select(AuditEventRow.id, AuditEventRow.hash).where(AuditEventRow.id.in_(wanted))
            )
        }
        last = session.scalar(select(func.max(AuditEventRow.id))) or 0
        for origin, checkpoint in every:
            problem = _checkpoint_problem(checkpoint, hashes, last, trusted_key)
            if problem is not None:
                return report(len(every), f"{origin} checkpoint of {checkpoint.at}: {problem}")
        case_ids: dict[int, str] = {
            row.id: row.case_id for row in session.execute(select(CaseRow.id, CaseRow.case_id))
        }
        determinations = session.scalars(
            select(DeterminationRow).order_by(DeterminationRow.id).execution_options(yield_per=500)
        )
        try:
            problem = _determination_problem(determinations, case_ids, trail, counts)
        finally:
            determinations.close()
        if problem is None:
            cases = session.scalars(
                select(CaseRow).order_by(CaseRow.id).execution_options(yield_per=1000)
            )
            try:
                problem = _case_problem(cases, trail, counts)
            finally:
                cases.close()
    return report(len(every), problem)


class _Trail:
    """What the checks after the chain need from the events, gathered as they stream past."""

    def __init__(self) -> None:
        self.checkpoints: list[Checkpoint] = []
        self.digests: dict[str, list[str]] = defaultdict(list)
        # Determinations a migration rewrote (request.upgraded): id -> text -> hash after.
        self.rewritten: dict[int, dict[str, str]] = {}
        self.status: dict[str, str] = {}
        self.extended: set[str] = set()
        self.problem: str | None = None

    def follow(self, events: Iterable[AuditEventRow]) -> Iterator[AuditEventRow]:
        for event in events:
            self._note(event)
            yield event

    def _note(self, event: AuditEventRow) -> None:
        if event.action == CHECKPOINT_ACTION:
            try:
                self.checkpoints.append(Checkpoint.from_mapping(json.loads(event.detail_json)))
            except ValueError as exc:
                self.problem = self.problem or f"event {event.id}: unreadable checkpoint: {exc}"
            return
        if event.case_id is None:
            return
        if event.action == "request.upgraded":
            self._note_rewrite(event)
            return
        if event.action == "request.extended":
            self.extended.add(event.case_id)
        moved = STATUS_AFTER.get(event.action)
        if moved is None:
            return
        try:
            detail = json.loads(event.detail_json)
        except ValueError:
            self.problem = self.problem or f"event {event.id}: its detail does not read"
            return
        after = moved(detail)
        if after is not None:
            self.status[event.case_id] = after
        digest = detail.get("determination")
        if isinstance(digest, str):
            self.digests[event.case_id].append(digest)

    def _note_rewrite(self, event: AuditEventRow) -> None:
        try:
            rewritten = json.loads(event.detail_json).get("determinations") or {}
            for row_id, texts in rewritten.items():
                self.rewritten[int(row_id)] = {
                    name: str(hashes["after"]) for name, hashes in texts.items()
                }
        except (ValueError, TypeError, AttributeError, KeyError):
            self.problem = self.problem or f"event {event.id}: its detail does not read"


def _checkpoint_problem(
    checkpoint: Checkpoint, hashes: Mapping[int, str], last: int, trusted_key: str | None
) -> str | None:
    if trusted_key is not None and checkpoint.public_key != trusted_key:
        return "signed by another key than the configured one"
    if not checkpoint.signature_holds():
        return "the signature does not hold"
    if checkpoint.event_id == 0:
        return None
    if checkpoint.event_id not in hashes:
        return (
            f"signed event {checkpoint.event_id}, which is missing "
            f"(the trail ends at event {last}: events were deleted)"
        )
    if hashes[checkpoint.event_id] != checkpoint.hash:
        return (
            f"event {checkpoint.event_id} no longer has the hash it was signed with "
            "(the trail was rewritten)"
        )
    return None


def _determination_problem(
    determinations: Iterable[DeterminationRow],
    case_ids: Mapping[int, str],
    trail: _Trail,
    counts: dict[str, int],
) -> str | None:
    recorded = trail.digests
    seen: dict[str, int] = defaultdict(int)
    for row in determinations:
        counts["determinations"] += 1
        where = f"determination {row.id}"
        try:
            document = json.loads(row.determination_json)
            request = json.loads(row.request_json)
        except ValueError:
            return f"{where}: its JSON does not read"
        rewritten = trail.rewritten.get(row.id, {})
        if "request" in rewritten:
            # Converted by a migration: its request_hash is the hash of the body it was made
            # on, which is gone; the migration's event holds the hash of the converted text.
            if determination_digest(row.request_json) != rewritten["request"]:
                return f"{where}: the request it keeps is not the one its migration wrote"
        elif request_hash(request) != row.request_hash:
            return f"{where}: the request it keeps does not match its request hash"
        if "determination" in rewritten and (
            determination_digest(row.determination_json) != rewritten["determination"]
        ):
            return f"{where}: it is not the determination its migration wrote"
        policy = document.get("policy") or {}
        columns = {
            "outcome": (row.outcome, document.get("outcome")),
            "reasons": (row.reasons, ",".join(document.get("reasons") or ())),
            "request_hash": (row.request_hash, document.get("request_hash")),
            "policy_hash": (row.policy_hash, policy.get("content_hash")),
        }
        for name, (column, inside) in columns.items():
            if column != inside:
                return f"{where}: its {name} column does not match its JSON"
        case_id = case_ids.get(row.case_pk)
        if case_id is None:
            return f"{where}: its case is missing"
        anchors = recorded.get(case_id)
        if anchors:
            index = seen[case_id]
            seen[case_id] += 1
            if index >= len(anchors):
                return f"{where}: no audit event records it (case {case_id})"
            if anchors[index] != determination_digest(row.determination_json):
                return f"{where}: it is not the determination its audit event recorded"
    for case_id, anchors in recorded.items():
        if seen[case_id] < len(anchors):
            return f"case {case_id}: an audited determination is missing"
    return None


def _case_problem(cases: Iterable[CaseRow], trail: _Trail, counts: dict[str, int]) -> str | None:
    for case in cases:
        counts["cases"] += 1
        expected = trail.status.get(case.case_id)
        if expected is None:
            return f"case {case.case_id}: no audit event records its submission"
        if case.status != expected:
            return (
                f"case {case.case_id}: its status is {case.status!r}, its events say {expected!r}"
            )
        if case.extended != (case.case_id in trail.extended):
            return f"case {case.case_id}: its extension does not match its events"
    return None
