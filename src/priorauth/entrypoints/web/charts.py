"""Server-rendered SVG charts: horizontal bars with their numbers written beside them, so the
figure reads without the chart (and a screen reader gets the title and a table of values)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

__all__ = ["bars"]


def bars(title: str, rows: Sequence[tuple[str, float]], unit: str = "") -> str:
    """An SVG bar chart of (label, value) rows, largest scale = the largest value."""
    row_height, label_width, bar_width = 26, 190, 260
    height = max(1, len(rows)) * row_height + 34
    width = label_width + bar_width + 70
    top = max((value for _, value in rows), default=0) or 1
    slug = "".join(c if c.isalnum() else "-" for c in title.lower())
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-labelledby="t-{slug}" class="chart">',
        f'<title id="t-{slug}">{escape(title)}</title>',
        f'<text x="0" y="16" class="chart-title">{escape(title)}</text>',
    ]
    if not rows:
        parts.append('<text x="0" y="44" class="chart-label">none</text>')
    for index, (label, value) in enumerate(rows):
        y = 30 + index * row_height
        length = bar_width * value / top
        shown = f"{value:g}{unit}"
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 15}" text-anchor="end" '
            f'class="chart-label">{escape(label)}</text>'
        )
        parts.append(
            f'<rect x="{label_width}" y="{y + 3}" width="{length:.1f}" height="{row_height - 8}" '
            f'class="chart-bar"><title>{escape(label)}: {escape(shown)}</title></rect>'
        )
        parts.append(
            f'<text x="{label_width + length + 6:.1f}" y="{y + 15}" '
            f'class="chart-value">{escape(shown)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
