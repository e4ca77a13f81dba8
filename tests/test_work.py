"""Model work on a virtual clock appears on the call's timeline after its real compute time."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from ivr.call.work import Work
from telephony.clock import VirtualClock


def test_result_visible_only_after_its_compute_time_on_a_virtual_clock():
    clock = VirtualClock()
    pool = ThreadPoolExecutor(1)

    def slow(emit):
        time.sleep(0.15)
        emit("done")

    work = Work(pool, clock, slow)
    while work.horizon_ms() != float("inf"):
        work.wait_for_output(0.5)
    assert work.poll() == []  # the virtual clock has not moved: the result is not due yet
    clock.advance(100)
    assert work.poll() == []
    clock.advance(100)
    assert work.poll() == ["done"] and work.finished


def test_cancel_stops_a_streaming_producer():
    clock = VirtualClock()
    pool = ThreadPoolExecutor(1)
    produced = []

    def producer(emit):
        for i in range(100):
            time.sleep(0.01)
            emit(i)
            produced.append(i)

    work = Work(pool, clock, producer)
    time.sleep(0.05)
    work.cancel()
    pool.shutdown(wait=True)
    assert work.finished and work.cancelled and len(produced) < 100


def test_errors_are_reported_not_raised():
    clock = VirtualClock()
    pool = ThreadPoolExecutor(1)

    def broken(emit):
        raise RuntimeError("model crashed")

    work = Work(pool, clock, broken)
    pool.shutdown(wait=True)
    clock.advance(1000)
    assert work.poll() == [] and work.finished and isinstance(work.error, RuntimeError)
