"""The report's line charts as inline SVG, over steps (loss, scores).

Hand-written: a line chart is a few dozen lines, and a plotting library (matplotlib) would be a large
dependency the trainer process, which writes the report, does not otherwise need.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

BEST_COLOUR = "#f59e0b"  # the best step's marker: the amber of the page's .best highlight


@dataclass(frozen=True)
class Series:
    name: str
    points: list[tuple[float, float]]
    colour: str
    width: float = 1.5
    dashed: bool = False
    dots: bool = False


def line_chart(series: Sequence[Series], *, label: str, marker: float | None = None,
               width: int = 760, height: int = 280) -> str:
    """An SVG line chart of ``series`` over steps, with a dashed line at ``marker`` (the best step)."""
    left, right, top, bottom = 60, 16, 14, 34
    xs = [x for s in series for x, _ in s.points] + ([marker] if marker is not None else [])
    ys = [y for s in series for _, y in s.points if math.isfinite(y)]
    if not xs or not ys:
        return ""
    x_ticks, y_ticks = nice_ticks(min(xs), max(xs)), nice_ticks(min(ys), max(ys))
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def sy(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * (height - top - bottom)

    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">']
    for y in y_ticks:
        parts.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{sy(y):.1f}" y2="{sy(y):.1f}"/>'
                     f'<text class="tick" x="{left - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{_tick(y)}</text>')
    for x in x_ticks:
        parts.append(f'<line class="grid" x1="{sx(x):.1f}" x2="{sx(x):.1f}" y1="{top}" y2="{height - bottom}"/>'
                     f'<text class="tick" x="{sx(x):.1f}" y="{height - bottom + 16}" text-anchor="middle">{_tick(x)}</text>')
    parts.append(f'<text class="tick" x="{width - right}" y="{height - 4}" text-anchor="end">step</text>')
    if marker is not None:
        parts.append(f'<line x1="{sx(marker):.1f}" x2="{sx(marker):.1f}" y1="{top}" y2="{height - bottom}" '
                     f'stroke="{BEST_COLOUR}" stroke-width="2" stroke-dasharray="6 4"/>'
                     f'<text class="tick" x="{sx(marker) + 4:.1f}" y="{top + 10}" fill="{BEST_COLOUR}">best</text>')
    for s in series:
        points = [(x, y) for x, y in s.points if math.isfinite(y)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        parts.append(f'<polyline class="series" data-name="{escape(s.name)}" points="{path}" fill="none" '
                     f'stroke="{s.colour}" stroke-width="{s.width}"{dash}/>')
        if s.dots or len(points) == 1:  # a polyline of one point draws nothing: a run that ended after its first step
            parts += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{s.colour}"/>' for x, y in points]
    parts.append("</svg>")
    legend = "".join(f'<span class="key"><span class="swatch" style="background:{s.colour}"></span>{escape(s.name)}</span>'
                     for s in series)
    return f'<figure class="chart">{"".join(parts)}<figcaption>{legend}</figcaption></figure>'


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values that cover [low, high]: steps of 1, 2 or 5 times a power of ten."""
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks = [first]
    while ticks[-1] < high - 1e-12 * step:
        ticks.append(round(ticks[-1] + step, 12))
    return ticks


def bucket_means(points: list[tuple[int, float]], limit: int) -> list[tuple[float, float]]:
    """At most ``limit`` points, each the mean of a run of neighbours (the curve's shape kept)."""
    points = [(x, y) for x, y in points if math.isfinite(y)]
    if len(points) <= limit:
        return [(float(x), y) for x, y in points]
    size = len(points) / limit
    out = []
    for index in range(limit):
        chunk = points[int(index * size):max(int((index + 1) * size), int(index * size) + 1)]
        out.append((sum(x for x, _ in chunk) / len(chunk), sum(y for _, y in chunk) / len(chunk)))
    return out


def escape(text: str) -> str:
    """``text`` safe inside the page's HTML and SVG, attribute values included."""
    return html.escape(str(text), quote=True)


def _tick(value: float) -> str:
    return f"{value:g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.1e}"
