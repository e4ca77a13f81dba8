"""What the call page shows, computed from a stored call: times, the emotion plot, waveform peaks."""

from __future__ import annotations

import io
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import numpy as np
import soundfile as sf

PLOT_W, PLOT_H, PLOT_PAD = 720, 180, 28
EMOTION_COLORS = {
    "neutral": "#8a8f98", "calm": "#5b9bd5", "happy": "#2ca02c", "joy": "#2ca02c", "sad": "#1f4e9c",
    "sadness": "#1f4e9c", "angry": "#d62728", "anger": "#d62728", "fearful": "#9467bd", "fear": "#9467bd",
    "disgust": "#8c564b", "surprised": "#ff7f0e", "surprise": "#ff7f0e", "frustrated": "#e377c2",
}
OTHER_COLORS = ("#17becf", "#bcbd22", "#7f7f7f", "#e377c2", "#8c564b")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 2")
"""Each series its own line pattern too (and its label at its end): emotions are not told apart by colour only."""
PEAK_BUCKETS = 1200


def clock(ms: float | None) -> str:
    if ms is None:
        return ""
    s = max(0.0, ms / 1000.0)
    return f"{int(s // 60)}:{s % 60:04.1f}"


def utc_time(value: datetime | None) -> str:
    """'2026-11-20 14:03:07 UTC': every time the console shows is UTC, said so, to the second."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def paging(params: Mapping[str, str], offset: int, limit: int, shown: int, total: int) -> dict[str, Any]:
    """'Showing 101-200 of 5,321' and the links to the pages before and after (the other filters kept)."""
    kept = {k: v for k, v in params.items() if k not in ("offset", "limit") and v}

    def link(at: int) -> str:
        return "?" + urlencode({**kept, "offset": at, **({"limit": limit} if "limit" in params else {})})

    return {"first": offset + 1 if shown else 0, "last": offset + shown, "total": total,
            "prev": link(max(0, offset - limit)) if offset > 0 else None,
            "next": link(offset + limit) if offset + shown < total else None}


def speakers_from(events: list[dict[str, Any]]) -> str:
    """'channels' (stereo: caller left, agent right), a diarizer's name (one mono channel), or ''."""
    for event in events:
        if event.get("type") == "imported":
            return str(event.get("speakers_from") or "")
    return "channels"


def import_reads(events: list[dict[str, Any]]) -> dict[str, str]:
    """Which models read an imported call's caller turns: {'emotion': 'voice and words' | ... | '', 'intent':
    'intent model' | ''} ('' for both when the import analysed nothing, as imports before it could)."""
    for event in events:
        if event.get("type") == "imported":
            return {"emotion": str(event.get("emotion_from") or ""), "intent": str(event.get("intent_from") or "")}
    return {"emotion": "", "intent": ""}


def emotion_plot(turns: list[dict[str, Any]], duration_ms: float | None) -> dict[str, Any] | None:
    """Series of (x, y) points in SVG coordinates, one per emotion label, from the caller's turns.

    Each caller turn with emotion scores gives a point per label at the turn's start; a turn with
    only a label gives that label a point at 1.0. None when no turn has an emotion.
    """
    points: list[tuple[float, dict[str, float]]] = []
    for turn in turns:
        scores = turn.get("emotion_scores")
        if isinstance(scores, dict) and scores:
            points.append((float(turn["start_ms"]), {str(k): float(v) for k, v in scores.items()}))
        elif turn.get("emotion"):
            points.append((float(turn["start_ms"]), {str(turn["emotion"]): 1.0}))
    if not points:
        return None
    end_ms = max(float(duration_ms or 0.0), max(t for t, _ in points), 1.0)
    labels = sorted({label for _, scores in points for label in scores})
    inner_w, inner_h = PLOT_W - 2 * PLOT_PAD, PLOT_H - 2 * PLOT_PAD

    def x(t_ms: float) -> float:
        return round(PLOT_PAD + inner_w * t_ms / end_ms, 1)

    def y(v: float) -> float:
        return round(PLOT_PAD + inner_h * (1.0 - max(0.0, min(1.0, v))), 1)

    series = []
    for i, label in enumerate(labels):
        pts = [(x(t), y(scores[label])) for t, scores in points if label in scores]
        color = EMOTION_COLORS.get(label.lower(), OTHER_COLORS[i % len(OTHER_COLORS)])
        series.append({"label": label, "color": color, "points": pts, "dash": DASHES[i % len(DASHES)],
                       "polyline": " ".join(f"{px},{py}" for px, py in pts)})
    ticks = [{"x": x(end_ms * k / 4), "text": clock(end_ms * k / 4)} for k in range(5)]
    return {"width": PLOT_W, "height": PLOT_H, "pad": PLOT_PAD, "series": series, "ticks": ticks,
            "y0": y(0.0), "y1": y(1.0), "ymid": y(0.5), "x0": x(0.0), "x1": x(end_ms)}


def peaks(wav: bytes, buckets: int = PEAK_BUCKETS) -> dict[str, Any]:
    """Per channel, the largest absolute sample in each of `buckets` slices, scaled to 0..1."""
    data, rate = sf.read(io.BytesIO(wav), dtype="int16", always_2d=True)
    n = data.shape[0]
    out: list[list[float]] = []
    for ch in range(data.shape[1]):
        column = np.abs(data[:, ch].astype(np.int32))
        if n == 0:
            out.append([])
            continue
        edges = np.linspace(0, n, min(buckets, n) + 1).astype(int)
        maxima = np.maximum.reduceat(column, edges[:-1]) if n else np.zeros(0)
        out.append([round(float(v) / 32768.0, 4) for v in maxima])
    names = ["caller", "agent"] if data.shape[1] == 2 else [f"channel {i + 1}" for i in range(data.shape[1])]
    return {"sample_rate_hz": int(rate), "duration_s": n / float(rate), "channels": names, "peaks": out}


def event_summary(event: dict[str, Any]) -> str:
    """One line of an event's fields (already redacted when stored)."""
    parts = []
    for key, value in event.items():
        if key in ("t_ms", "type"):
            continue
        if isinstance(value, float):
            value = round(value, 3)
        text = str(value)
        parts.append(f"{key}={text if len(text) <= 160 else text[:159] + '…'}")
    return ", ".join(parts)
