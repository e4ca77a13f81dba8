"""Where the time of each reply went, read back from a call's event log.

For every reply to a spoken turn (a `reply_started` whose turn end is a `speech_stopped`), the stages
from the end of the caller's speech to the agent's first audio:
- `end_of_turn`: silence waited before the turn counted as ended;
- `asr`: from the end of the turn to its transcript (0 when a transcript decoded ahead was taken);
- `emotion_hold`: the transcript waiting for its turn's voice emotion;
- `nlu`: intent and FAQ models (`nlu.latency_ms`, measured around the call);
- `dialog`: from the NLU result to the dialog's step;
- `tts`: from the dialog's step to the first audio of the reply (synthesis, or the prompt cache);
- `total`: the voice-to-voice latency the call logged.
A SIP benchmark adds the transport (what the caller heard minus `total`) itself.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

import numpy as np

from ivr.call import events as ev

STAGES = ("end_of_turn", "asr", "emotion_hold", "nlu", "dialog", "tts", "total")


def reply_stages(events: Iterable[ev.CallEvent]) -> list[dict[str, float]]:
    """One row of STAGES (milliseconds) per reply to a spoken turn, in call order."""
    tracker = StageTracker()
    return [row for row in map(tracker.feed, events) if row is not None]


class StageTracker:
    """Reads a call's events one at a time, as they happen (metrics) or from its log (reports)."""

    def __init__(self) -> None:
        self._stopped: ev.SpeechStopped | None = None
        self._marks: dict[str, float] = {}

    def feed(self, event: ev.CallEvent) -> dict[str, float] | None:
        """The STAGES row of the reply this event starts, if it is one; else None."""
        marks = self._marks
        stopped = self._stopped
        if isinstance(event, ev.SpeechStopped):
            self._stopped, self._marks = event, {}
        elif stopped is None:
            pass
        elif isinstance(event, ev.Transcript) and "transcript" not in marks:
            marks["transcript"] = event.t_ms
        elif isinstance(event, ev.NluResult) and "nlu" not in marks:
            marks["nlu"], marks["nlu_ms"] = event.t_ms, event.latency_ms
        elif isinstance(event, ev.DialogStep) and "transcript" in marks and "dialog" not in marks:
            marks["dialog"] = event.t_ms
        elif isinstance(event, ev.ReplyStarted):
            self._stopped = None
            if abs(event.turn_end_ms - stopped.end_ms) < 0.5 and "dialog" in marks:
                return _row(stopped, marks, event)
        return None


def _row(stopped: ev.SpeechStopped, marks: dict[str, float], reply: ev.ReplyStarted) -> dict[str, float]:
    transcript = marks["transcript"]
    nlu_at = marks.get("nlu", marks["dialog"])
    return {"end_of_turn": stopped.t_ms - stopped.end_ms,
            "asr": max(0.0, transcript - stopped.t_ms),
            "emotion_hold": max(0.0, nlu_at - transcript),
            "nlu": marks.get("nlu_ms", 0.0),
            "dialog": max(0.0, marks["dialog"] - nlu_at),
            "tts": max(0.0, reply.t_ms - marks["dialog"]),
            "total": reply.latency_ms}


def summarize(rows: list[dict[str, float]], stages: tuple[str, ...] = STAGES) -> dict[str, dict[str, float]]:
    """p50, p95 and mean of each stage over the rows."""
    out: dict[str, dict[str, float]] = {}
    for stage in stages:
        values = [row[stage] for row in rows if stage in row]
        if not values:
            continue
        out[stage] = {"p50": round(float(np.percentile(values, 50)), 1),
                      "p95": round(float(np.percentile(values, 95)), 1),
                      "mean": round(statistics.fmean(values), 1)}
    return out


def table_lines(columns: dict[str, dict[str, Any]], stages: tuple[str, ...] = STAGES) -> list[str]:
    """A per-stage table, one column pair (p50, p95) per setting: {setting: summarize(...)}."""
    names = list(columns)
    head = f"{'stage (ms)':<16}" + "".join(f"{name[:21]:>22}" for name in names)
    sub = f"{'':<16}" + "".join(f"{'p50':>11}{'p95':>11}" for _ in names)
    lines = [head, sub]
    for stage in stages:
        cells = []
        for name in names:
            cell = columns[name].get(stage)
            cells.append(f"{cell['p50']:>11.0f}{cell['p95']:>11.0f}" if cell else f"{'-':>11}{'-':>11}")
        lines.append(f"{stage:<16}" + "".join(cells))
    return lines
