"""Charts drawn as SVG on the server: plain bars, no script, nothing downloaded.

Each function takes labelled numbers and returns one ``<svg>`` element. Every text that ends
up inside is escaped here; each bar carries a ``<title>`` (a tooltip, and what a screen
reader announces), and the whole chart a ``role="img"`` with its name.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 460
BAR = 24
GAP = 8
LABEL_WIDTH = 120
FONT = 15
COLOURS = ("#1f5fbf", "#d9dee6", "#1e7b34", "#b3261e")


@dataclass(frozen=True)
class Bar:
    label: str
    values: tuple[float, ...]  # stacked segments, drawn left to right
    text: str  # the figure printed after the bar


def _frame(title: str, rows: int, body: str, legend: str = "") -> str:
    legend_height = 24 if legend else 0
    height = rows * (BAR + GAP) + GAP + legend_height
    return (
        f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" font-size="{FONT}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>{legend}{body}</svg>"
    )


def bars(
    title: str, rows: Sequence[Bar], *, scale: float | None = None, legend: Sequence[str] = ()
) -> str:
    """Horizontal (optionally stacked) bars; ``scale`` is the value of a full-width bar."""
    if not rows:
        return ""
    top = scale or max((sum(r.values) for r in rows), default=0.0) or 1.0
    room = WIDTH - LABEL_WIDTH - 64
    offset = 24 if legend else 0
    parts: list[str] = []
    for index, row in enumerate(rows):
        y = offset + GAP + index * (BAR + GAP)
        parts.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{y + BAR * 0.7:.1f}" text-anchor="end">'
            f"{escape(_short(row.label))}</text>"
        )
        x = float(LABEL_WIDTH)
        for segment, value in enumerate(row.values):
            width = max(0.0, value) / top * room
            colour = COLOURS[segment % len(COLOURS)]
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="{BAR}" fill="{colour}">'
                f"<title>{escape(row.label)}: {escape(_fmt(value))}</title></rect>"
            )
            x += width
        parts.append(f'<text x="{x + 6:.1f}" y="{y + BAR * 0.7:.1f}">{escape(row.text)}</text>')
    return _frame(title, len(rows), "".join(parts), _legend(legend))


def _legend(names: Sequence[str]) -> str:
    items = []
    for index, name in enumerate(names):
        x = LABEL_WIDTH + index * 120
        items.append(
            f'<rect x="{x}" y="4" width="14" height="14" fill="{COLOURS[index % len(COLOURS)]}"/>'
            f'<text x="{x + 20}" y="16">{escape(name)}</text>'
        )
    return "".join(items)


def _short(label: str, room: int = 12) -> str:
    """Cut a label to the space before the bars: a CJK character is about two Latin ones wide."""
    used = 0
    for index, char in enumerate(label):
        used += 2 if unicodedata.east_asian_width(char) in "WF" else 1
        if used > room:
            return label[:index] + "…"
    return label


def _fmt(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"
