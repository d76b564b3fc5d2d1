"""Self-contained HTML for the batch reports: one file, inline CSS and SVG charts, no script,
nothing fetched. Plain functions that return escaped HTML text."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

__all__ = ["bar_chart", "page", "table"]

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.5rem 0; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.muted { color: #666; font-size: 0.9rem; } details { margin: 0.2rem 0; }
svg text { font: 12px system-ui, sans-serif; }
"""

COLOURS = ("#3b7dd8", "#d8833b", "#4aa564", "#b54a9b", "#8a8a8a", "#c9b32c")


def page(title: str, sections: Iterable[str]) -> str:
    """A whole HTML document."""
    body = "\n".join(sections)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """An HTML table; numbers are right-aligned. Cells are escaped, except those given as
    `Raw` (HTML made here)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for value in row:
            if isinstance(value, Raw):
                cells.append(f"<td>{value.html}</td>")
            elif isinstance(value, int | float) and not isinstance(value, bool):
                cells.append(f"<td class='n'>{value:,}</td>")
            else:
                cells.append(f"<td>{escape('' if value is None else str(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


class Raw:
    """HTML already escaped, to put in a table cell as it is."""

    def __init__(self, html: str) -> None:
        self.html = html


def bar_chart(title: str, bars: Sequence[tuple[str, float]], unit: str = "") -> str:
    """A horizontal bar chart as inline SVG: one labelled bar per (label, value)."""
    if not bars:
        return f"<p class='muted'>{escape(title)}: nothing to show.</p>"
    label_width, bar_width, row = 330, 420, 22
    height = row * len(bars) + 30
    top = max(value for _, value in bars) or 1
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{label_width + bar_width + 90}' "
        f"height='{height}' role='img' aria-label='{escape(title)}'>",
        f"<text x='0' y='14' font-weight='bold'>{escape(title)}</text>",
    ]
    for i, (label, value) in enumerate(bars):
        y = 24 + i * row
        width = max(1.0, bar_width * value / top) if value else 0.0
        shown = label if len(label) <= 48 else label[:47] + "…"
        parts.append(
            f"<text x='{label_width - 6}' y='{y + 14}' text-anchor='end'>"
            f"<title>{escape(label)}</title>{escape(shown)}</text>"
            f"<rect x='{label_width}' y='{y + 3}' width='{width:.1f}' height='{row - 6}' "
            f"fill='{COLOURS[i % len(COLOURS)]}'/>"
            f"<text x='{label_width + width + 6:.1f}' y='{y + 14}'>{value:,g}{escape(unit)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def cases_cell(cases: Sequence[tuple[int, str]], total: int) -> Raw:
    """The cases behind a count, folded: line and request id of each."""
    if not cases:
        return Raw("")
    items = "".join(f"<li>line {line}: {escape(request_id)}</li>" for line, request_id in cases)
    more = f"<li class='muted'>and {total - len(cases):,} more</li>" if total > len(cases) else ""
    return Raw(f"<details><summary>{len(cases)} shown</summary><ul>{items}{more}</ul></details>")
