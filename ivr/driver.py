"""Runs one CallSession against a transport: in real time, or on a virtual clock (`--fast`).

On the virtual clock, 20 ms ticks run as fast as the machine allows, but whenever the call is
waiting on model work the clock may not pass the moment that work would have finished in real
time: compute time is paid in full, only idle time is skipped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ivr.clock import Clock, VirtualClock
from ivr.frame import FRAME_MS
from ivr.session import CallSession
from telephony.transport import CallTransport

DRAIN_AFTER_END_MS = 200


@dataclass(frozen=True)
class CallResult:
    outcome: str
    reason: str
    transfer_target: str
    duration_ms: float


def _wait_for_work(session: CallSession, clock: Clock) -> None:
    while True:
        works = session.pending_work()
        if not works:
            return
        earliest = min(works, key=lambda w: w.horizon_ms())
        if clock.now_ms() + FRAME_MS <= earliest.horizon_ms():
            return
        earliest.wait_for_output(0.05)


def run_call(session: CallSession, transport: CallTransport, clock: Clock,
             max_duration_ms: float | None = None) -> CallResult:
    """Tick the call until either side ends it; returns the outcome."""
    virtual = isinstance(clock, VirtualClock)
    wall0 = time.perf_counter()
    ticks = 0
    session.start()
    while not session.ended:
        if transport.caller_hung_up:
            session.caller_hung_up()
            break
        if max_duration_ms is not None and clock.now_ms() >= max_duration_ms:
            break
        if virtual:
            _wait_for_work(session, clock)
        for key in transport.pressed_keys():
            session.dtmf(key)
        transport.write(session.tick(transport.read(clock.now_ms())))
        ticks += 1
        if virtual:
            assert isinstance(clock, VirtualClock)
            clock.advance(FRAME_MS)
        else:
            delay = wall0 + ticks * FRAME_MS / 1000.0 - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
    transport.end(session.outcome, session.transfer_target)
    duration_ms = clock.now_ms()
    session.close()
    return CallResult(session.outcome or "unfinished", session.end_reason, session.transfer_target, duration_ms)
