"""Machine-wide admission by measured headroom, kept by the shared inference service.

Every call worker of a machine asks the one inference service before it answers a call (`admit`), tells it
when the call ends (`release`), and reports each reply's voice-to-voice latency (`reply`). So the decision
sees every call of the machine and every caller's wait, at once, where a worker alone saw only its own few
calls, and a burst of arrivals was admitted before any signal moved (the overload run of 24 calls in 24 s).

The rule is a limit on calls that is learned from the latency, in the way TCP learns its window:
- the limit starts at `start_calls` (a few calls that any box that runs the models at all can take);
- while the recent replies' p95 is at most `grow_below` times the budget and the machine is at its limit,
  the limit grows by one call, at most once every `grow_s` seconds (and only on `min_replies` replies);
- when the p95 goes over the budget, no call is admitted, and the limit falls to one call fewer than are up
  (at most once every `grow_s` seconds, so one slow spell does not empty the box);
- `max_calls` (0: none) is a fixed ceiling on top.
A new call costs the machine nothing until its caller speaks (the greeting is cached), so a latency signal
alone always lags a burst; the limit is what holds a burst back, and the latency is what moves the limit.
A worker that goes away (its connection closes) takes its calls with it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from ivr.serve.headroom import RecentLatencies

log = logging.getLogger(__name__)

START_CALLS = 4
GROW_S = 10.0
WINDOW_S = 30.0
MIN_REPLIES = 4
GROW_BELOW = 0.8


class Admission:
    """Which calls the machine takes: thread-safe; the service calls it from its connections' threads."""

    def __init__(self, start_calls: int = START_CALLS, max_calls: int = 0, window_s: float = WINDOW_S,
                 min_replies: int = MIN_REPLIES, grow_s: float = GROW_S, grow_below: float = GROW_BELOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = max(1, start_calls if not max_calls else min(start_calls, max_calls))
        self.max_calls = max_calls
        self.grow_s = grow_s
        self.grow_below = grow_below
        self._clock = clock
        self._calls: dict[str, Hashable] = {}
        """Admitted calls still up: call key -> the worker (connection) that holds it."""
        self._replies = RecentLatencies(window_s, min_replies)
        self._changed_at = clock()
        self._lock = threading.Lock()
        self.admitted = 0
        self.refused = 0

    # ---- what the workers say ------------------------------------------------------------------------

    def admit(self, call: str, worker: Hashable, budget_ms: float) -> str | None:
        """Admits `call` (held by `worker`) and returns None, or returns why the machine cannot take it."""
        with self._lock:
            if call in self._calls:
                return None
            why = self._judge(budget_ms)
            if why is None:
                self._calls[call] = worker
                self.admitted += 1
            else:
                self.refused += 1
        if why is not None:
            log.info("admission: refused a call: %s", why)
        return why

    def release(self, call: str) -> None:
        with self._lock:
            self._calls.pop(call, None)

    def drop_worker(self, worker: Hashable) -> int:
        """A worker went away: its calls are over. Returns how many."""
        with self._lock:
            gone = [call for call, holder in self._calls.items() if holder == worker]
            for call in gone:
                del self._calls[call]
        return len(gone)

    def reply(self, latency_ms: float) -> None:
        with self._lock:
            self._replies.add(self._clock(), latency_ms)

    # ---- the decision --------------------------------------------------------------------------------

    def _judge(self, budget_ms: float) -> str | None:
        live = len(self._calls)
        if live == 0:
            return None  # an idle machine has headroom, whatever its last calls' replies were
        now = self._clock()
        p95 = self._replies.p95(now)
        settled = now - self._changed_at >= self.grow_s
        if p95 is not None and budget_ms > 0 and p95 > budget_ms:
            if settled and self.limit > max(1, live - 1):
                self._set_limit(max(1, live - 1), now, f"p95 {p95:.0f} ms over the {budget_ms:.0f} ms budget")
            return (f"no headroom: the machine's replies p95 {p95:.0f} ms is over the {budget_ms:.0f} ms budget "
                    f"({live} calls up)")
        if (live >= self.limit and settled and p95 is not None and p95 <= self.grow_below * budget_ms
                and (not self.max_calls or self.limit < self.max_calls)):
            self._set_limit(self.limit + 1, now, f"p95 {p95:.0f} ms with {live} calls up")
        if live >= self.limit:
            return f"no headroom: {live} calls up, the machine's limit for now (learned from its latency)"
        return None

    def _set_limit(self, limit: int, now: float, why: str) -> None:
        log.warning("admission: the machine's call limit goes from %d to %d (%s)", self.limit, limit, why)
        self.limit = limit
        self._changed_at = now

    def state(self) -> dict[str, Any]:
        with self._lock:
            p95 = self._replies.p95(self._clock())
            return {"calls": len(self._calls), "limit": self.limit, "p95_ms": None if p95 is None else round(p95, 1),
                    "replies": len(self._replies), "admitted": self.admitted, "refused": self.refused}
