"""The service's state as operators watch it: open cases per queue, overdue cases, and
notifications waiting in the outbox. Counts only, never a case's content."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from priorauth.adapters.store import CaseRow, OutboxRow
from priorauth.service.uow import UnitOfWork
from priorauth.service.workflow import OPEN_STATUSES, PriorAuthService

__all__ = ["Gauges", "read_gauges"]


@dataclass(frozen=True)
class Gauges:
    open_by_queue: dict[str, int]
    overdue: int
    outbox_backlog: int
    outbox_failed: int


def read_gauges(service: PriorAuthService) -> Gauges:
    """The counts as of now (one read transaction)."""
    now = service.clock()
    with UnitOfWork(service.database) as uow:
        session = uow.session
        by_queue = {
            str(queue or "none"): int(count)
            for queue, count in session.execute(
                select(CaseRow.queue, func.count())
                .where(CaseRow.status.in_(OPEN_STATUSES))
                .group_by(CaseRow.queue)
            )
        }
        overdue = session.scalar(
            select(func.count())
            .select_from(CaseRow)
            .where(CaseRow.status.in_(OPEN_STATUSES), CaseRow.due_at < now)
        )
        backlog = session.scalar(
            select(func.count())
            .select_from(OutboxRow)
            .where(OutboxRow.delivered_at.is_(None), OutboxRow.failed_at.is_(None))
        )
        failed = session.scalar(
            select(func.count()).select_from(OutboxRow).where(OutboxRow.failed_at.is_not(None))
        )
    return Gauges(by_queue, int(overdue or 0), int(backlog or 0), int(failed or 0))
