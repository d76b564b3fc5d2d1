"""The unit of work: one transaction that rolls back unless the use case commits it.

A writer (`lock_writes`) first locks the keys of what it will change (`lock`: a case, a claim
identifier, an account name), then reads and writes, then appends its audit events, which
holds the chain's head until it commits. The order is enforced: a writer holding the chain
never waits on a key, so writers cannot deadlock on these locks. On SQLite, one writer runs at
a time and the locks cost nothing; on PostgreSQL, writers of different keys run side by side and
queue only for the append and commit.
"""

from __future__ import annotations

import threading
from types import TracebackType

from sqlalchemy.orm import Session

from priorauth.adapters.store import Database

__all__ = [
    "LockOrderError",
    "UnitOfWork",
    "case_key",
    "claim_key",
    "outbox_key",
    "request_key",
    "subscriptions_key",
    "user_key",
]


# What writers lock, by name: each key guards a check that is then acted on (a status read
# before it moves, an identifier looked up before it is taken, a count before it grows).


def case_key(case_id: str) -> str:
    """A case's status, queue, clock and assignment."""
    return f"case:{case_id}"


def request_key(organization: str, request_id: str) -> str:
    """A submitter's request id: new, a repeat, or a conflict."""
    return f"request:{organization}:{request_id}"


def claim_key(organization: str, claim_identifier: str) -> str:
    """A PAS claim identifier: new, a repeat, replaced or cancelled."""
    return f"claim:{organization}:{claim_identifier}"


def user_key(name: str) -> str:
    """An account name and its token."""
    return f"user:{name}"


def subscriptions_key(organization: str) -> str:
    """An organization's count of active subscriptions."""
    return f"subscriptions:{organization}"


def outbox_key(outbox_id: int) -> str:
    """A notification's delivery record."""
    return f"outbox:{outbox_id}"


class LockOrderError(RuntimeError):
    """A use case locked in an order that could deadlock (a programming error)."""


class UnitOfWork:
    """`with UnitOfWork(db) as uow: ...; uow.commit()`; leaving without commit rolls back."""

    session: Session

    def __init__(self, database: Database) -> None:
        self.database = database
        self._held: threading.Lock | None = None
        # Whether this transaction is a writer (it may lock keys and append audit events).
        self.locked = False
        # Whether this transaction holds the audit chain's head (it has appended an event).
        self.chain_held = False
        self._keys: set[str] = set()

    def __enter__(self) -> UnitOfWork:
        self.session = self.database.session()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # close() rolls back whatever was not committed and detaches the rows, keeping what
        # was loaded readable (a rollback would expire it).
        try:
            self.session.close()
        finally:
            self._release()

    def lock_writes(self) -> None:
        """Make this transaction a writer. Call first."""
        self._held = self.database.lock_writes(self.session)
        self.locked = True

    def lock(self, *keys: str) -> None:
        """Serialize with every writer that locks one of `keys` (`case:<case id>`,
        `request:<organization>:<request id>`, ...) until this transaction ends. Call before
        reading what the keys guard, and before appending any audit event."""
        if not self.locked:
            raise LockOrderError("lock_writes comes before lock")
        wanted = set(keys) - self._keys
        if not wanted:
            return
        if self.chain_held:
            raise LockOrderError(
                f"{', '.join(sorted(wanted))} locked after an audit event was appended: "
                "lock keys first"
            )
        self.database.lock_keys(self.session, sorted(wanted))
        self._keys |= wanted

    def hold_chain(self) -> None:
        """Take the audit chain's head until this transaction ends (service.audit does)."""
        if not self.locked:
            raise LockOrderError("an audit event is appended by a writer: lock_writes first")
        if not self.chain_held:
            self.database.lock_chain(self.session)
            self.chain_held = True

    def commit(self) -> None:
        try:
            self.session.commit()
        finally:
            self._release()

    def _release(self) -> None:
        self.locked = False
        self.chain_held = False
        self._keys.clear()
        held, self._held = self._held, None
        if held is not None:
            held.release()

    def rollback(self) -> None:
        """Roll back what was written; the transaction stays a writer, its locks let go."""
        self.session.rollback()
        self.chain_held = False
        self._keys.clear()
