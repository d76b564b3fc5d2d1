"""Whether the member's coverage is in force on the service date, from the Coverage resources
the hook call carries (prefetch `coverage`, or read from the EHR's FHIR server).

The service knows no organization of its own, so every Coverage in the call counts as one of
this plan's. A Coverage is in force on a day when its status is `active` and its `period` (when
it has one) includes the day; `entered-in-error` ones are not coverages at all. None in the
call: eligibility is unknown, and the answer says nothing about it.

fhir.resources does not check codes, so a status outside FHIR's four is found here: in the
call it is a bad request (`status_problems`, read with the call), read from the EHR it is a
Coverage that could not be read (left out, as the EHR's other unreadable answers are).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from priorauth.adapters.fhir.bundle import Located
from priorauth.adapters.fhir.problems import Problem

__all__ = ["STATUSES", "Eligibility", "eligibility", "status_problems"]

# FHIR R4 Coverage.status (required binding, FinancialResourceStatusCodes).
STATUSES = frozenset({"active", "cancelled", "draft", "entered-in-error"})


@dataclass(frozen=True, slots=True)
class Eligibility:
    """The member's coverage on the service date: in force or not, the Coverage the answer
    refers to (`Coverage/id`, None when it has no id), and why it is not in force."""

    in_force: bool
    coverage: str | None
    reason: str | None = None


def eligibility(coverages: Iterable[Located], on: dt.date) -> Eligibility | None:
    """The coverage on `on`: the first Coverage in force, else the first one that is not (with
    the reason); None when there is no Coverage to read."""
    lapsed: list[tuple[Located, str]] = []
    for found in coverages:
        raw = found.raw
        status = raw.get("status")
        if status == "entered-in-error" or status not in STATUSES:
            continue
        reference = f"Coverage/{found.resource.id}" if found.resource.id else None
        name = reference or "the member's Coverage"
        found_period = raw.get("period")
        period: dict[str, object] = found_period if isinstance(found_period, dict) else {}
        if status != "active":
            lapsed.append((found, f"{name} is {status}, not active"))
        elif not _within(period, on):
            start, end = period.get("start"), period.get("end")
            span = f"{str(start)[:10] if start else '…'} to {str(end)[:10] if end else '…'}"
            lapsed.append((found, f"{name} covers {span}, not the service date {on.isoformat()}"))
        else:
            return Eligibility(True, reference)
    if not lapsed:
        return None
    found, why = lapsed[0]
    reference = f"Coverage/{found.resource.id}" if found.resource.id else None
    return Eligibility(False, reference, f"No coverage in force on the service date: {why}")


def _within(period: dict[str, object], on: dt.date) -> bool:
    """Whether a FHIR Period includes the day. Its bounds are dateTimes, possibly partial
    (`2026`, `2026-03`): a day is within when its prefix of the bound's precision is."""
    day = on.isoformat()
    start, end = period.get("start"), period.get("end")
    if isinstance(start, str) and start:
        bound = start[:10]
        if day[: len(bound)] < bound:
            return False
    if isinstance(end, str) and end:
        bound = end[:10]
        if day[: len(bound)] > bound:
            return False
    return True


def status_problems(coverages: Iterable[Located]) -> list[Problem]:
    """A problem for each Coverage whose status is not a FHIR Coverage status."""
    return [
        Problem(
            f"{found.path}.status",
            "error",
            f"a Coverage status is one of {', '.join(sorted(STATUSES))}",
            "value",
        )
        for found in coverages
        if found.raw.get("status") not in STATUSES
    ]
