"""The unit of work: one transaction that rolls back unless the use case commits it."""

from __future__ import annotations

import threading
from types import TracebackType

from sqlalchemy.orm import Session

from priorauth.adapters.store import Database

__all__ = ["UnitOfWork"]


class UnitOfWork:
    """`with UnitOfWork(db) as uow: ...; uow.commit()`; leaving without commit rolls back."""

    session: Session

    def __init__(self, database: Database) -> None:
        self.database = database
        self._held: threading.Lock | None = None
        # Whether this transaction holds the write lock (it may append audit events).
        self.locked = False

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
        """Serialize with every other writer (the audit chain needs one order). Call first."""
        self._held = self.database.lock_writes(self.session)
        self.locked = True

    def commit(self) -> None:
        try:
            self.session.commit()
        finally:
            self._release()

    def _release(self) -> None:
        self.locked = False
        held, self._held = self._held, None
        if held is not None:
            held.release()

    def rollback(self) -> None:
        self.session.rollback()
