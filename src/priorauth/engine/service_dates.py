"""The service-date rule: how far before or after the day a request is received its service may
start and still be decided by software.

A start further back than the policy's `service_dates.retro_days` is a retro request, and one
further ahead than `ahead_days` is too early to decide: both are pended `service-date` (routed to
intake unless the policy says otherwise) with a sentence naming `service.start_date`. An approval
whose period would end before the request was received is never given, whatever the window.
"""

from __future__ import annotations

import datetime as dt

from priorauth.clinical.dates import period_end
from priorauth.engine.facts import ServiceDate
from priorauth.engine.request import Request
from priorauth.policy.model import Approval, ServiceDates

__all__ = ["DEFAULT_ROUTE", "DEFAULT_RULE", "received_on", "service_date_problem"]

# What a policy without `service_dates` gets (docs/policies.md explains the numbers).
DEFAULT_RULE = ServiceDates()
# Who sees a request pended for its service date when the policy's routing does not say: a
# person at intake decides whether a retro request is taken at all, before any clinical review.
DEFAULT_ROUTE = "intake"


def received_on(request: Request, as_of: dt.date) -> dt.date:
    """The day the request was received (`received_at`), else the day it is decided on."""
    return request.received_at.date() if request.received_at is not None else as_of


def _days(count: int) -> str:
    return f"{count:,} day" + ("" if count == 1 else "s")


def service_date_problem(
    rule: ServiceDates,
    request: Request,
    service: ServiceDate,
    as_of: dt.date,
    approval: Approval,
) -> str | None:
    """Why software may not decide this request's service dates, in a sentence naming the
    field, or None when the start lies inside the policy's window and the approval would not
    be over already.

    `service` is the date the policy is applied on. Only a start date the requester gave can
    lie outside the window (without one the service starts on the day received); but any
    period that would end before the day received, or before the day decided (`as_of`, later
    when an old request is decided again), is never approved.
    """
    start, received = service.date, received_on(request, as_of)
    if service.field == "service.start_date":
        back, ahead = (received - start).days, (start - received).days
        if back > rule.retro_days:
            return (
                f"{_field(service)} is {_days(back)} before {_received(received)}; this policy "
                f"decides a start at most {_days(rule.retro_days)} back, so a person decides "
                "this retro request"
            )
        if ahead > rule.ahead_days:
            return (
                f"{_field(service)} is {_days(ahead)} after {_received(received)}; this policy "
                f"decides a start at most {_days(rule.ahead_days)} ahead: confirm the start "
                "date, or request nearer to it"
            )
    if start >= received and start >= as_of:
        return None  # a period from then on cannot be over (and its end need not be worked out)
    through = period_end(start, approval.years, approval.months, approval.days)
    if through < received:
        return (
            f"{_field(service)}: an approval would end on {through.isoformat()}, before "
            f"{_received(received)}; a period wholly in the past is never approved by software"
        )
    if through < as_of:
        return (
            f"{_field(service)}: an approval would end on {through.isoformat()}, before the day "
            f"the request is decided ({as_of.isoformat()}); a period wholly in the past is never "
            "approved by software"
        )
    return None


def _field(service: ServiceDate) -> str:
    return f"{service.field} {service.date.isoformat()}"


def _received(day: dt.date) -> str:
    return f"the day the request was received ({day.isoformat()})"
