"""The impact report for people: a terminal table (rich) and a self-contained HTML page."""

from __future__ import annotations

from html import escape

from rich.console import Group, RenderableType
from rich.table import Table

from priorauth.batch.impact import ImpactReport
from priorauth.batch.report_html import bar_chart, cases_cell, page, table

__all__ = ["impact_html", "impact_tables"]


def _cases(cases: list[tuple[int, str]], total: int, shown: int = 5) -> str:
    listed = ", ".join(f"{request_id} (line {line})" for line, request_id in cases[:shown])
    return listed + (f", … {total - shown:,} more" if total > shown else "")


def impact_tables(report: ImpactReport) -> RenderableType:
    """The report as rich tables: versions, outcomes old x new, each change, each criterion."""
    versions = Table(title="Policy versions", title_justify="left")
    for column in ("side", "policy", "version", "hash", "requests"):
        versions.add_column(column, justify="right" if column == "requests" else "left")
    for side, policy_id, version, digest, count in report.versions:
        versions.add_row(
            side, policy_id or "(no policy)", version or "", (digest or "")[:19], f"{count:,}"
        )
    outcomes = Table(title="Outcomes, old -> new", title_justify="left")
    for column in ("old", "new", "requests"):
        outcomes.add_column(column, justify="right" if column == "requests" else "left")
    for old, new, count in report.outcomes:
        outcomes.add_row(old, new, f"{count:,}")
    changes = Table(title=f"Changes ({report.changed:,} requests)", title_justify="left")
    for column in ("old", "new", "requests", "cases"):
        changes.add_column(column, justify="right" if column == "requests" else "left")
    for c in report.changes:
        changes.add_row(
            f"{c.old_outcome} {c.old_reasons}".strip(),
            f"{c.new_outcome} {c.new_reasons}".strip(),
            f"{c.requests:,}",
            _cases(c.cases, c.requests),
        )
    criteria = Table(title="Criteria whose status changed", title_justify="left")
    for column in ("criterion", "old", "new", "requests", "cases"):
        criteria.add_column(column, justify="right" if column == "requests" else "left")
    for k in report.criteria:
        criteria.add_row(
            k.criterion, k.old_status, k.new_status, f"{k.requests:,}", _cases(k.cases, k.requests)
        )
    parts: list[RenderableType] = [versions, outcomes, changes, criteria]
    if report.error_count:
        errors = Table(
            title=f"Not decided under the new version ({report.error_count:,})",
            title_justify="left",
        )
        errors.add_column("line", justify="right")
        errors.add_column("error")
        for line, message in report.errors:
            errors.add_row(str(line), message)
        parts.append(errors)
    return Group(*parts)


def impact_html(report: ImpactReport) -> str:
    """The report as one HTML page with inline SVG charts."""
    title = f"Impact of {report.policy_id} version {report.new_version}"
    intro = (
        f"<p>{report.compared:,} requests from {escape(report.history)} decided again under "
        f"{escape(report.policy_id)} version {escape(report.new_version)} "
        f"(<code>{escape(report.new_hash)}</code>), each as of the date it was first decided; "
        f"{report.changed:,} changed. Analytics on {escape(report.engine)}.</p>"
    )
    sections = [
        intro,
        "<h2>Policy versions</h2>",
        table(
            ["side", "policy", "version", "hash", "requests"],
            [(s, p or "(no policy)", v, h, c) for s, p, v, h, c in report.versions],
        ),
        "<h2>Outcomes, old → new</h2>",
        bar_chart(
            "Requests by outcome, old → new",
            [(f"{o} → {n}", c) for o, n, c in report.outcomes],
        ),
        table(["old", "new", "requests"], report.outcomes),
        "<h2>Changes</h2>",
        bar_chart("Requests by change", [(c.label, c.requests) for c in report.changes]),
        table(
            ["old outcome", "old reasons", "new outcome", "new reasons", "requests", "cases"],
            [
                (
                    c.old_outcome,
                    c.old_reasons,
                    c.new_outcome,
                    c.new_reasons,
                    c.requests,
                    cases_cell(c.cases, c.requests),
                )
                for c in report.changes
            ],
        ),
        "<h2>Criteria whose status changed</h2>",
        bar_chart(
            "Requests by criterion and change",
            [
                (f"{k.criterion}: {k.old_status} → {k.new_status}", k.requests)
                for k in report.criteria
            ],
        ),
        table(
            ["criterion", "old status", "new status", "requests", "cases"],
            [
                (
                    k.criterion,
                    k.old_status,
                    k.new_status,
                    k.requests,
                    cases_cell(k.cases, k.requests),
                )
                for k in report.criteria
            ],
        ),
    ]
    if report.error_count:
        sections.append(f"<h2>Not decided under the new version ({report.error_count:,})</h2>")
        sections.append(table(["line", "error"], report.errors))
    return page(title, sections)
