"""The CMS-0057-F yearly public report: the items that need prior authorization and the
eight figures, as CSV and as one HTML page.

The figures, over the requests first decided in the calendar year (service.metrics counts
them from the store; a modified approval counts as approved):

1. standard requests approved (%)
2. standard requests denied (%)
3. requests approved after an appeal (% of those decided)
4. requests whose timeframe was extended and that were then approved (% of those decided)
5. expedited requests approved (%)
6. expedited requests denied (%)
7. average and median time from submission to decision, standard requests (hours)
8. average and median time from submission to decision, expedited requests (hours)

Drugs are outside CMS-0057-F's scope as published; a plan may still publish the same figures
for its drug policies, which is what this report does.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from priorauth.batch.report_html import bar_chart, page, table
from priorauth.policy.model import Policy

__all__ = ["Figure", "PaItem", "YearlyReport", "figures_csv", "items_csv", "yearly_html"]


@dataclass(frozen=True)
class PaItem:
    """One drug that needs prior authorization, with the policy that governs it."""

    name: str
    generic_name: str
    hcpcs: str
    ndc_products: str
    rxnorm: str
    policy_id: str
    policy_version: str
    effective_date: str


@dataclass(frozen=True)
class Figure:
    number: int
    name: str
    value: float | None
    unit: str
    numerator: int | None
    denominator: int | None


@dataclass(frozen=True)
class YearlyReport:
    year: int
    items: list[PaItem]
    figures: list[Figure]

    @classmethod
    def build(
        cls, year: int, policies: Iterable[Policy], metrics: Mapping[str, Any]
    ) -> YearlyReport:
        """The report from the loaded policies and the service's metrics for the year."""
        items = [
            PaItem(
                name=drug.name,
                generic_name=drug.generic_name,
                hcpcs=" ".join(drug.hcpcs),
                ndc_products=" ".join(drug.ndc_products),
                rxnorm=" ".join(drug.rxnorm),
                policy_id=policy.id,
                policy_version=policy.version,
                effective_date=policy.effective_date.isoformat(),
            )
            for policy in sorted(policies, key=lambda p: p.id)
            for drug in policy.drugs
        ]
        standard, expedited = metrics["standard"], metrics["expedited"]
        appeals, extensions = metrics["appeals"], metrics["extensions"]
        decided = metrics["automatic_approval"]["decided"]
        figures = [
            Figure(
                1,
                "Standard requests approved",
                standard["approved_percent"],
                "%",
                standard["approved"],
                standard["decided"],
            ),
            Figure(
                2,
                "Standard requests denied",
                standard["denied_percent"],
                "%",
                standard["denied"],
                standard["decided"],
            ),
            Figure(
                3,
                "Requests approved after appeal",
                appeals["approved_after_appeal_percent_of_decided"],
                "%",
                appeals["approved_after_appeal"],
                decided,
            ),
            Figure(
                4,
                "Requests with the timeframe extended, then approved",
                extensions["approved_after_extension_percent_of_decided"],
                "%",
                extensions["approved_after_extension"],
                decided,
            ),
            Figure(
                5,
                "Expedited requests approved",
                expedited["approved_percent"],
                "%",
                expedited["approved"],
                expedited["decided"],
            ),
            Figure(
                6,
                "Expedited requests denied",
                expedited["denied_percent"],
                "%",
                expedited["denied"],
                expedited["decided"],
            ),
            Figure(
                7,
                "Standard requests: average time to decision",
                standard["average_hours_to_decision"],
                "hours",
                None,
                standard["decided"],
            ),
            Figure(
                7,
                "Standard requests: median time to decision",
                standard["median_hours_to_decision"],
                "hours",
                None,
                standard["decided"],
            ),
            Figure(
                8,
                "Expedited requests: average time to decision",
                expedited["average_hours_to_decision"],
                "hours",
                None,
                expedited["decided"],
            ),
            Figure(
                8,
                "Expedited requests: median time to decision",
                expedited["median_hours_to_decision"],
                "hours",
                None,
                expedited["decided"],
            ),
        ]
        return cls(year, items, figures)


def _csv(header: list[str], rows: Iterable[Iterable[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return buffer.getvalue()


def items_csv(report: YearlyReport) -> str:
    """The items that need prior authorization, one drug a row."""
    return _csv(
        [
            "name",
            "generic_name",
            "hcpcs",
            "ndc_products",
            "rxnorm",
            "policy_id",
            "policy_version",
            "effective_date",
        ],
        (
            (
                i.name,
                i.generic_name,
                i.hcpcs,
                i.ndc_products,
                i.rxnorm,
                i.policy_id,
                i.policy_version,
                i.effective_date,
            )
            for i in report.items
        ),
    )


def figures_csv(report: YearlyReport) -> str:
    """The figures, one a row: number, name, value, unit, numerator, denominator (an empty
    value: no request to count)."""
    return _csv(
        ["year", "figure", "name", "value", "unit", "numerator", "denominator"],
        (
            (report.year, f.number, f.name, f.value, f.unit, f.numerator, f.denominator)
            for f in report.figures
        ),
    )


def yearly_html(report: YearlyReport) -> str:
    """The report as one self-contained HTML page with an inline SVG chart."""
    percent = [(f.name, f.value) for f in report.figures if f.unit == "%" and f.value is not None]
    return page(
        f"Prior authorization in {report.year}: items and figures",
        [
            "<p>Published yearly as the CMS Interoperability and Prior Authorization rule "
            "(CMS-0057-F) asks. Requests are counted in the year of their first decision; a "
            "modified approval counts as approved; an empty figure means no request to count.</p>",
            "<h2>Items that need prior authorization</h2>",
            table(
                [
                    "drug",
                    "generic name",
                    "HCPCS",
                    "NDC products",
                    "RxNorm",
                    "policy",
                    "version",
                    "effective",
                ],
                (
                    (
                        i.name,
                        i.generic_name,
                        i.hcpcs,
                        i.ndc_products,
                        i.rxnorm,
                        i.policy_id,
                        i.policy_version,
                        i.effective_date,
                    )
                    for i in report.items
                ),
            ),
            "<h2>Figures</h2>",
            bar_chart("Percent of requests", percent, "%"),
            table(
                ["figure", "name", "value", "unit", "numerator", "denominator"],
                (
                    (
                        f.number,
                        f.name,
                        "" if f.value is None else f.value,
                        f.unit,
                        f.numerator,
                        f.denominator,
                    )
                    for f in report.figures
                ),
            ),
        ],
    )
