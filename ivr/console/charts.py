"""Plots drawn by hand as SVG (no chart library): the geometry of bar and line charts, for the templates.

Every bar and every point carries its value as text (a label on the bar, a marker with a <title>), one
series per chart, so nothing is told by colour alone; each chart also has a table of the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

WIDTH, HEIGHT = 720, 220
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 56, 16, 20, 40
MAX_X_LABELS = 12
CHAR_W = 6.5
"""About the width of a character of the 11-pixel axis labels."""


def _nice_top(value: float) -> float:
    """A round number at or above `value`, for the top of the y axis."""
    if value <= 0:
        return 1.0
    step = 10 ** (len(str(int(value))) - 1) if value >= 1 else 0.1
    top = step
    while top < value:
        top += step if top < 5 * step else 5 * step
    return float(top)


def _frame(top: float, fmt: Callable[[float], str]) -> dict[str, Any]:
    inner_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    ticks = [{"y": round(PAD_TOP + inner_h * (1 - k / 4), 1), "text": fmt(top * k / 4)} for k in range(5)]
    return {"width": WIDTH, "height": HEIGHT, "left": PAD_LEFT, "right": WIDTH - PAD_RIGHT,
            "bottom": HEIGHT - PAD_BOTTOM, "top": PAD_TOP, "y_ticks": ticks}


def _y(value: float, top: float) -> float:
    inner_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    return round(PAD_TOP + inner_h * (1 - max(0.0, min(value, top)) / top), 1)


def bar_chart(items: list[tuple[str, float]], fmt: Callable[[float], str], top: float | None = None) -> dict[str, Any]:
    """Bars of (label, value), each with its value written above it; labels below, thinned when many."""
    peak = top or _nice_top(max((v for _, v in items), default=0.0))
    chart = _frame(peak, fmt)
    slot = (WIDTH - PAD_LEFT - PAD_RIGHT) / max(1, len(items))
    every = max(1, -(-len(items) // MAX_X_LABELS))
    fits = max(3, int(slot * every / CHAR_W))  # characters of a label under its bar
    bars = []
    for i, (label, value) in enumerate(items):
        y = _y(value, peak)
        bars.append({"x": round(PAD_LEFT + i * slot + slot * 0.15, 1), "w": round(slot * 0.7, 1), "y": y,
                     "h": round(chart["bottom"] - y, 1), "cx": round(PAD_LEFT + (i + 0.5) * slot, 1),
                     "label": label, "short": label if len(label) <= fits else label[:fits - 1] + "…",
                     "text": fmt(value), "show_label": i % every == 0,
                     "show_value": len(items) <= 24})
    return {**chart, "bars": bars}


def line_chart(items: list[tuple[str, float | None]], fmt: Callable[[float], str],
               top: float | None = None) -> dict[str, Any] | None:
    """A line through (label, value) points (None: no data that day, the line breaks), a marker on each
    point; None when no point has a value."""
    values = [v for _, v in items if v is not None]
    if not values:
        return None
    peak = top or _nice_top(max(values))
    chart = _frame(peak, fmt)
    step = (WIDTH - PAD_LEFT - PAD_RIGHT) / max(1, len(items) - 1) if len(items) > 1 else 0.0
    every = max(1, -(-len(items) // MAX_X_LABELS))
    points: list[dict[str, Any]] = []
    segments: list[list[str]] = []
    run: list[str] = []
    for i, (label, value) in enumerate(items):
        x = round(PAD_LEFT + i * step if len(items) > 1 else (PAD_LEFT + WIDTH - PAD_RIGHT) / 2, 1)
        if value is None:
            segments.append(run)
            run = []
            continue
        y = _y(value, peak)
        run.append(f"{x},{y}")
        points.append({"x": x, "y": y, "label": label, "text": fmt(value), "show_label": i % every == 0})
    segments.append(run)
    return {**chart, "points": points, "lines": [" ".join(s) for s in segments if len(s) > 1]}
