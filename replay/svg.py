"""Tiny inline-SVG charts for ``report.html``: no JavaScript, no CDN, nothing to install.

A report is read by risk staff on machines that may not reach the internet, and must still open
in ten years; plain SVG in the page does both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

WIDTH, HEIGHT = 860, 220
LEFT, RIGHT, TOP, BOTTOM = 84, 12, 12, 28
COLOURS = ("#1f5fa8", "#c0392b", "#2e8b57", "#8e44ad", "#d68910", "#555555")


def _fmt(value: float) -> str:
    if value == 0 or 1e-3 <= abs(value) < 1e6:
        return f"{value:.4g}"
    return f"{value:.2e}"


def _time_label(ts_ns: int, span_ns: int) -> str:
    if span_ns < 3600 * 10**9:
        pattern = "%H:%M:%S"
    elif span_ns < 4 * 86_400 * 10**9:
        pattern = "%m-%d %H:%M"
    else:
        pattern = "%Y-%m-%d"
    return datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).strftime(pattern)


def _ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    return [lo + (hi - lo) * i / n for i in range(n + 1)]


def line_chart(
    series: Sequence[tuple[str, Sequence[int], Sequence[float]]],
    title: str,
    y_label: str = "",
    step: bool = False,
    zero_line: bool = False,
) -> str:
    """Lines over event time, one per ``(name, times_ns, values)``; ``step`` draws a staircase.

    Examples
    --------
    >>> svg = line_chart([("equity", [0, 10**9], [1.0, 2.0])], "Equity")
    >>> svg.startswith("<svg") and "polyline" in svg
    True
    """
    pts = [(t, v) for _, ts, vs in series for t, v in zip(ts, vs, strict=True)]
    pts = [(t, v) for t, v in pts if math.isfinite(v)]
    if not pts:
        return _empty(title)
    t0, t1 = min(p[0] for p in pts), max(p[0] for p in pts)
    lo, hi = min(p[1] for p in pts), max(p[1] for p in pts)
    if zero_line:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi == lo:
        lo, hi = lo - 0.5 * (abs(lo) or 1.0), hi + 0.5 * (abs(hi) or 1.0)
    if t1 == t0:
        t1 = t0 + 1
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: int) -> float:
        return LEFT + (t - t0) / (t1 - t0) * pw

    def y(v: float) -> float:
        return TOP + (hi - v) / (hi - lo) * ph

    parts = [_open(title)]
    for v in _ticks(lo, hi):
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
            f'stroke="#e5e5e5"/><text x="{LEFT - 4}" y="{y(v) + 4:.1f}" text-anchor="end">'
            f"{_fmt(v)}</text>"
        )
    for t in _ticks(t0, t1):
        parts.append(
            f'<text x="{x(int(t)):.1f}" y="{HEIGHT - 8}" text-anchor="middle">'
            f"{_time_label(int(t), t1 - t0)}</text>"
        )
    if zero_line:
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(0.0):.1f}" y2="{y(0.0):.1f}" '
            'stroke="#999"/>'
        )
    for i, (name, ts, vs) in enumerate(series):
        coords: list[str] = []
        prev: float | None = None
        for t, v in zip(ts, vs, strict=True):
            if not math.isfinite(v):
                continue
            if step and prev is not None:
                coords.append(f"{x(t):.1f},{y(prev):.1f}")
            coords.append(f"{x(t):.1f},{y(v):.1f}")
            prev = v
        colour = COLOURS[i % len(COLOURS)]
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.4" '
            f'points="{" ".join(coords)}"/>'
        )
        parts.append(
            f'<text x="{LEFT + 8 + 130 * i}" y="{TOP + 12}" fill="{colour}">{escape(name)}</text>'
        )
    if y_label:
        parts.append(
            f'<text x="10" y="{TOP + ph / 2:.0f}" transform="rotate(-90 10 {TOP + ph / 2:.0f})" '
            f'text-anchor="middle">{escape(y_label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def histogram(edges: Sequence[float], counts: Sequence[int], title: str) -> str:
    """Bars for ``counts[i]`` over ``[edges[i], edges[i+1])``.

    Examples
    --------
    >>> "<rect" in histogram([0.0, 0.5, 1.0], [3, 1], "Scores")
    True
    """
    if not counts or max(counts) == 0:
        return _empty(title)
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = max(counts)
    lo, hi = edges[0], edges[-1]
    parts = [_open(title)]
    for v in _ticks(0, top):
        yy = TOP + (1 - v / top) * ph
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{yy:.1f}" y2="{yy:.1f}" '
            f'stroke="#e5e5e5"/><text x="{LEFT - 4}" y="{yy + 4:.1f}" text-anchor="end">'
            f"{v:.0f}</text>"
        )
    for i, c in enumerate(counts):
        x0 = LEFT + (edges[i] - lo) / (hi - lo) * pw
        x1 = LEFT + (edges[i + 1] - lo) / (hi - lo) * pw
        h = c / top * ph
        parts.append(
            f'<rect x="{x0:.1f}" y="{TOP + ph - h:.1f}" width="{max(x1 - x0 - 1, 0.5):.1f}" '
            f'height="{h:.1f}" fill="{COLOURS[0]}"/>'
        )
    for v in _ticks(lo, hi):
        xx = LEFT + (v - lo) / (hi - lo) * pw
        parts.append(f'<text x="{xx:.1f}" y="{HEIGHT - 8}" text-anchor="middle">{_fmt(v)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _open(title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11" '
        f'role="img" aria-label="{escape(title)}">'
        f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" '
        f'height="{HEIGHT - TOP - BOTTOM}" fill="#fcfcfc" stroke="#ccc"/>'
    )


def _empty(title: str) -> str:
    return (
        _open(title)
        + f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">no data</text></svg>'
    )
