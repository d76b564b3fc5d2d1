"""Prior-authorization figures in the style of CMS-0057-F, for any period, as JSON or CSV.

Counted over requests whose first decision fell in the period: percent approved and denied
(standard and expedited), percent approved after an appeal, percent approved after a timeframe
extension, average and median hours to the first decision, and the automatic-approval rate.
A modified approval counts as approved and is also shown on its own.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import statistics
from collections.abc import Iterable, Mapping
from typing import Any

from priorauth.adapters.store import CaseRow

__all__ = ["compute_metrics", "metrics_csv"]


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 2) if whole else None


def _first_outcome(case: CaseRow, first_review: str | None) -> str:
    if case.decided_by == "automatic":
        return "approved"
    return {"approve": "approved", "approve-modified": "approved-modified", "deny": "denied"}.get(
        first_review or "", "denied"
    )


def compute_metrics(
    cases: Iterable[CaseRow],
    appeals: Mapping[int, str | None],
    first_reviews: Mapping[int, str],
    start: dt.datetime,
    end: dt.datetime,
) -> dict[str, Any]:
    """The figures for the cases first decided in [start, end)."""
    by_urgency: dict[str, list[tuple[CaseRow, str]]] = {"standard": [], "expedited": []}
    for case in cases:
        by_urgency.setdefault(case.urgency, []).append(
            (case, _first_outcome(case, first_reviews.get(case.id)))
        )
    report: dict[str, Any] = {
        "period": {"from": start.isoformat(), "to": end.isoformat()},
    }
    everything: list[tuple[CaseRow, str]] = []
    for urgency, decided in by_urgency.items():
        everything.extend(decided)
        hours = [
            (c.decided_at - c.received_at).total_seconds() / 3600
            for c, _ in decided
            if c.decided_at is not None
        ]
        approved = sum(1 for _, o in decided if o in ("approved", "approved-modified"))
        report[urgency] = {
            "decided": len(decided),
            "approved": approved,
            "approved_percent": _percent(approved, len(decided)),
            "approved_modified": sum(1 for _, o in decided if o == "approved-modified"),
            "denied": sum(1 for _, o in decided if o == "denied"),
            "denied_percent": _percent(sum(1 for _, o in decided if o == "denied"), len(decided)),
            "average_hours_to_decision": round(statistics.fmean(hours), 3) if hours else None,
            "median_hours_to_decision": round(statistics.median(hours), 3) if hours else None,
        }
    appealed = [c for c, _ in everything if c.id in appeals]
    won = [c for c in appealed if appeals[c.id] in ("approved", "approved-modified")]
    extended = [c for c, _ in everything if c.extended]
    extended_approved = [c for c, o in everything if c.extended and o != "denied"]
    automatic = [c for c, _ in everything if c.decided_by == "automatic"]
    report["appeals"] = {
        "appealed": len(appealed),
        "approved_after_appeal": len(won),
        "approved_after_appeal_percent_of_decided": _percent(len(won), len(everything)),
        "approved_after_appeal_percent_of_appealed": _percent(len(won), len(appealed)),
    }
    report["extensions"] = {
        "extended": len(extended),
        "approved_after_extension": len(extended_approved),
        "approved_after_extension_percent_of_decided": _percent(
            len(extended_approved), len(everything)
        ),
    }
    report["automatic_approval"] = {
        "decided": len(everything),
        "automatic": len(automatic),
        "automatic_percent": _percent(len(automatic), len(everything)),
    }
    return report


def metrics_csv(report: Mapping[str, Any]) -> str:
    """The figures as CSV rows: section, figure, value."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", "figure", "value"])
    for section, figures in report.items():
        for name, value in figures.items():
            writer.writerow([section, name, "" if value is None else value])
    return out.getvalue()
