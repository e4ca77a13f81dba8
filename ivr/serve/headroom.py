"""Admission by measured headroom: refuse a new call (503) when the calls already up would get slower.

Slots say how many calls a process can hold; they do not say whether the box can still answer each turn in
time. `Headroom` measures that from what the calls are doing now:
- the voice-to-voice latency of the replies of the last `window_s` seconds (p95 over at least `min_replies`
  replies), against `budget_ms`;
- the machine's CPU busy fraction (all cores, /proc/stat, over the last second or so), against `max_cpu`.
A new call is refused when either is over its limit while at least one call is up (the first call is always
answered: a box with nothing to do has headroom). Once refusing, it admits again only below `resume` times
the limit (hysteresis, so that it does not flap around the limit). `budget_ms` 0 turns it off.

The replies come from ivr.serve.metrics.CallMetrics (`on_reply`), which reads them off each call's events
already; `ivr serve` asks it in its refusal check and in /readyz (`headroom`), so the Kamailio front stops
routing to a saturated worker too.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

PROC_STAT = "/proc/stat"


def cpu_times(path: str = PROC_STAT) -> tuple[float, float] | None:
    """(busy, total) jiffies of all cores since boot; None where /proc/stat cannot be read."""
    try:
        with open(path, encoding="ascii") as f:
            fields = [float(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is inside user)
    return total - idle, total


class CpuMeter:
    """The CPU busy fraction over the last `span_s` seconds or so, from two /proc/stat samples."""

    def __init__(self, span_s: float = 1.0, read: Any = cpu_times) -> None:
        self.span_s = span_s
        self._read = read
        self._last = read()
        self._last_at = time.monotonic()
        self._busy = 0.0

    def busy(self) -> float:
        now = time.monotonic()
        if now - self._last_at >= self.span_s:
            sample = self._read()
            if sample is not None and self._last is not None and sample[1] > self._last[1]:
                self._busy = (sample[0] - self._last[0]) / (sample[1] - self._last[1])
            self._last, self._last_at = sample, now
        return self._busy


class RecentLatencies:
    """Reply latencies (ms) of the last `window_s` seconds and their p95: a worker's (Headroom) or the whole
    machine's (ivr.infer.admission). Not locked: its owner holds its own lock around it."""

    def __init__(self, window_s: float, min_replies: int) -> None:
        self.window_s = window_s
        self.min_replies = min_replies
        self._items: collections.deque[tuple[float, float]] = collections.deque()  # (monotonic s, ms)

    def add(self, at: float, latency_ms: float) -> None:
        self._items.append((at, float(latency_ms)))

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def p95(self, now: float) -> float | None:
        """p95 of the replies of the last window_s seconds before `now` (older ones are forgotten); None
        with fewer than min_replies."""
        while self._items and now - self._items[0][0] > self.window_s:
            self._items.popleft()
        if len(self._items) < self.min_replies:
            return None
        return float(np.percentile([ms for _, ms in self._items], 95))


class Headroom:
    """Whether the box can take one more call without breaking the latency budget of those it has."""

    def __init__(self, budget_ms: float, max_cpu: float = 0.9, window_s: float = 60.0, min_replies: int = 3,
                 resume: float = 0.8, cpu: CpuMeter | None = None) -> None:
        self.budget_ms = budget_ms
        self.max_cpu = max_cpu
        self.resume = resume
        self.cpu = cpu or CpuMeter()
        self._replies = RecentLatencies(window_s, min_replies)
        self._lock = threading.Lock()
        self._refusing = False

    @property
    def enabled(self) -> bool:
        return self.budget_ms > 0

    def reply(self, latency_ms: float, at: float | None = None) -> None:
        with self._lock:
            self._replies.add(time.monotonic() if at is None else at, latency_ms)

    # ---- decision ------------------------------------------------------------------------------------

    def p95_ms(self, now: float | None = None) -> float | None:
        """p95 of the replies of the last window_s seconds; None with fewer than min_replies."""
        with self._lock:
            return self._replies.p95(time.monotonic() if now is None else now)

    def refusal(self, live_calls: int) -> str | None:
        """Why a new call must be refused now, or None to admit it."""
        if not self.enabled or live_calls == 0:
            self._refusing = False
            return None
        scale = self.resume if self._refusing else 1.0
        why = None
        p95 = self.p95_ms()
        if p95 is not None and p95 > self.budget_ms * scale:
            why = f"no headroom: recent voice-to-voice p95 {p95:.0f} ms over the {self.budget_ms:.0f} ms budget"
        else:
            busy = self.cpu.busy()
            if busy > self.max_cpu * scale:
                why = f"no headroom: CPU {busy:.0%} busy (limit {self.max_cpu:.0%})"
        if (why is not None) != self._refusing:
            self._refusing = why is not None
            log.warning("admission: %s", why or "headroom is back; taking calls again")
        return why
