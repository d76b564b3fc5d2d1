"""Refusals: a submitter naming another organization's case is answered like a case that does
not exist, and the attempt is an audit event; account fields that the store could not hold are
refused before it sees them.

The event names who tried and which case, never what the case holds. It is not attached to the
case (its `case_id` column stays empty), so the case's owner does not see in its history which
organization probed it; the operator sees it in the audit trail.
"""

from __future__ import annotations

import datetime as dt

from priorauth import sizes
from priorauth.errors import FieldProblem
from priorauth.service.audit import append_event
from priorauth.service.people import Actor
from priorauth.service.uow import UnitOfWork

__all__ = ["account_field_problems", "record_refusal"]


def record_refusal(
    uow: UnitOfWork, actor: Actor, identifier: str, at: dt.datetime, kind: str = "case"
) -> None:
    """Commit a `request.refused` event (`fhir.subscription.refused` for a subscription) in
    `uow`, naming the caller and the `kind` and identifier it asked for; the write lock is
    taken when the transaction has not (what it read so far is let go, nothing was written)."""
    if not uow.locked:
        uow.rollback()
        uow.lock_writes()
    action = "request.refused" if kind == "case" else f"fhir.{kind}.refused"
    append_event(
        uow,
        actor.name,
        action,
        None,
        {kind: identifier, "organization": actor.organization, "role": actor.role},
        at,
    )
    uow.commit()


_ACCOUNT_SIZES = {
    "name": sizes.ACCOUNT_NAME,
    "organization": sizes.ORGANIZATION,
    "npi": sizes.NPI,
    "specialty": sizes.SPECIALTY,
}


def account_field_problems(**fields: str | None) -> list[FieldProblem]:
    """A problem for each account field that is empty (the name), too long for its column, or
    holds a NUL character."""
    problems = []
    for field, value in fields.items():
        if value is None:
            continue
        limit = _ACCOUNT_SIZES[field]
        if field == "name" and not value.strip():
            problems.append(FieldProblem(field, "an account needs a name"))
        elif len(value) > limit:
            problems.append(FieldProblem(field, f"at most {limit} characters"))
        elif "\x00" in value:
            problems.append(FieldProblem(field, "a NUL character is not accepted"))
    return problems
