"""Gold cards in the engine: a request that would pend is approved as exempt when its
prescriber holds an exemption for the service (the policy) on the service date.

The exemption list is data (computed from history by `priorauth goldcard evaluate`, see
priorauth.batch.goldcard); here it is only looked up. A request pended for `safety-review` (a
contraindication or a dose limit) is never approved this way: an exemption waives the review
of medical necessity, not the safety screen, and the pharmacist still sees it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from priorauth.engine.determination import Determination, Exemption
from priorauth.engine.records import record
from priorauth.engine.request import Request

__all__ = ["ExemptionEntry", "ExemptionList", "recorded_exemption"]

# Reasons an exemption never overrides.
NOT_WAIVED = frozenset({"safety-review", "no-policy"})


@record
class ExemptionEntry:
    """One provider's gold card for one service (a policy id), from a date through a date."""

    npi: str
    service: str
    effective_from: dt.date
    effective_through: dt.date


class ExemptionList:
    """Exemptions looked up by (NPI, service)."""

    def __init__(self, entries: Iterable[ExemptionEntry]) -> None:
        self.entries = tuple(entries)
        self._by_key: dict[tuple[str, str], list[ExemptionEntry]] = {}
        for entry in self.entries:
            self._by_key.setdefault((entry.npi, entry.service), []).append(entry)

    def find(self, npi: str, service: str, on: dt.date) -> ExemptionEntry | None:
        """The exemption in effect for this provider and service on a date, if any."""
        for entry in self._by_key.get((npi, service), ()):
            if entry.effective_from <= on <= entry.effective_through:
                return entry
        return None

    def apply(self, request: Request, determination: Determination) -> Determination:
        """The determination, or, when it pends only for reasons an exemption waives and the
        prescriber holds one for its policy on the service date, the same determination
        approved as exempt (no authorization is issued: none is needed)."""
        if determination.outcome != "pended" or determination.policy is None:
            return determination
        if NOT_WAIVED.intersection(determination.reasons):
            return determination
        for _, prescriber in request.practitioner("prescriber"):
            if prescriber.npi is None:
                continue
            entry = self.find(prescriber.npi, determination.policy.id, determination.service_date)
            if entry is None:
                continue
            return dataclasses.replace(
                determination,
                outcome="approved",
                reasons=(),
                route=None,
                summary=(
                    f"Approved as exempt: prescriber NPI {entry.npi} holds a gold card for "
                    f"{entry.service} from {entry.effective_from.isoformat()} through "
                    f"{entry.effective_through.isoformat()} (would have pended for "
                    f"{', '.join(determination.reasons)})"
                ),
                exemption=Exemption(
                    program="gold-card",
                    npi=entry.npi,
                    service=entry.service,
                    effective_from=entry.effective_from,
                    effective_through=entry.effective_through,
                    would_pend_for=determination.reasons,
                ),
            )
        return determination


def recorded_exemption(determination: Mapping[str, Any]) -> ExemptionList | None:
    """The exemption a stored determination (its JSON) was approved under, as a list of one,
    so that replaying it applies the same exemption; None when it has none."""
    exemption = determination.get("exemption")
    if not exemption:
        return None
    return ExemptionList(
        [
            ExemptionEntry(
                exemption["npi"],
                exemption["service"],
                dt.date.fromisoformat(exemption["effective_from"]),
                dt.date.fromisoformat(exemption["effective_through"]),
            )
        ]
    )
