"""Model work (ASR, TTS) run off the audio path, with results that appear on the call's timeline.

A `Work` runs a producer in a worker thread. Each item it emits becomes visible to the session at
`submitted_ms + wall-clock delay`: on a wall clock that is simply "when it is ready"; on a virtual
clock (`ivr call --fast`) the call still pays the real compute time, so simulated latencies are
honest. `horizon_ms()` tells a virtual-clock driver how far time may run before it must wait.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Generic, TypeVar

from telephony.clock import Clock
from telephony.queues import drain

T = TypeVar("T")
_DONE = object()


class Cancelled(Exception):
    """Raised inside a producer when its work was cancelled (barge-in, hangup)."""


class Work(Generic[T]):
    def __init__(self, executor: Executor, clock: Clock, producer: Callable[[Callable[[T], None]], None],
                 name: str = "work") -> None:
        self.name = name
        self.submitted_ms = clock.now_ms()
        self._clock = clock
        self._wall0 = time.perf_counter()
        self._queue: queue.Queue[tuple[float, object]] = queue.Queue()
        self._ready: deque[tuple[float, object]] = deque()
        self._cancel = threading.Event()
        self._produced_all = False
        self.finished = False
        self.error: BaseException | None = None
        executor.submit(self._run, producer)

    def _elapsed_ms(self) -> float:
        return (time.perf_counter() - self._wall0) * 1000.0

    def _emit(self, item: T) -> None:
        if self._cancel.is_set():
            raise Cancelled()
        self._queue.put((self._elapsed_ms(), item))

    def _run(self, producer: Callable[[Callable[[T], None]], None]) -> None:
        try:
            if not self._cancel.is_set():
                producer(self._emit)
        except Cancelled:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the session, which falls back
            self.error = exc
        self._queue.put((self._elapsed_ms(), _DONE))

    def _drain(self) -> None:
        for entry in drain(self._queue):
            self._take(entry)

    def _take(self, entry: tuple[float, object]) -> None:
        self._ready.append(entry)
        if entry[1] is _DONE:
            self._produced_all = True

    def poll(self) -> list[T]:
        """Items whose time has come; sets `finished` once everything is out."""
        self._drain()
        now = self._clock.now_ms()
        out: list[T] = []
        while self._ready and self.submitted_ms + self._ready[0][0] <= now:
            _, item = self._ready.popleft()
            if item is _DONE:
                self.finished = True
            else:
                out.append(item)  # type: ignore[arg-type]
        return out

    def horizon_ms(self) -> float:
        """Virtual time up to which this work's output is known."""
        self._drain()
        if self._ready or self._produced_all:
            return float("inf")
        return self.submitted_ms + self._elapsed_ms()

    def wait_for_output(self, timeout_s: float = 0.05) -> None:
        """Block until the producer emits its next item or ends (or the timeout passes)."""
        if self._ready or self._produced_all:
            return
        try:
            entry = self._queue.get(timeout=timeout_s)
        except queue.Empty:
            return
        self._take(entry)

    def cancel(self) -> None:
        self._cancel.set()
        self.finished = True
        self._ready.clear()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()
