"""Clocks for a call: wall time for real calls, virtual time for `ivr call --fast`."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> float: ...


class WallClock:
    """Milliseconds since the clock was made, from the monotonic clock."""

    def __init__(self) -> None:
        self._start = time.perf_counter()

    def now_ms(self) -> float:
        return (time.perf_counter() - self._start) * 1000.0


class VirtualClock:
    """Time that moves only when the driver advances it (one 20 ms tick at a time)."""

    def __init__(self, start_ms: float = 0.0) -> None:
        self._now_ms = start_ms

    def now_ms(self) -> float:
        return self._now_ms

    def advance(self, ms: float) -> None:
        self._now_ms += ms
