"""The one loop that runs every call: a CallSession against a transport, simulated or SIP.

`drive` ticks the session once per 20 ms frame until either side ends the call. Its pace comes from
the transport's media clock (SIP), from the wall clock (a real-time simulation), or from a virtual
clock (`--fast`): there 20 ms ticks run as fast as the machine allows, but whenever the call is waiting
on model work the clock may not pass the moment that work would have finished in real time: compute
time is paid in full, only idle time is skipped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ivr.call.events import DtmfReceived, RtpTimeout
from ivr.call.session import CallSession
from telephony.audio.frame import FRAME_MS
from telephony.clock import Clock, VirtualClock
from telephony.transport import CallTransport, LineEnd

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


def _close_line(session: CallSession, end: LineEnd) -> None:
    if end.outcome == "caller-hangup":
        session.caller_hung_up()
        return
    if end.outcome == "rtp-timeout":
        session.log.emit(RtpTimeout(after_s=end.silent_s))
    session.line_closed(end.outcome, end.reason)


def drive(session: CallSession, transport: CallTransport, clock: Clock,
          max_duration_ms: float | None = None) -> LineEnd | None:
    """Start the session and tick it until either side ends the call; returns how the line closed under
    it (None when the agent's side ended the call, or the time ran out)."""
    virtual = isinstance(clock, VirtualClock)
    wall0 = time.perf_counter()
    ticks = 0
    session.start()
    while not session.ended:
        end = transport.line_end()
        if end is not None:
            _close_line(session, end)
            return end
        if max_duration_ms is not None and clock.now_ms() >= max_duration_ms:
            return None
        if virtual:
            _wait_for_work(session, clock)
        for key in transport.key_presses():
            if key.method:
                session.log.emit(DtmfReceived(method=key.method))
            session.dtmf(key.digit)
        transport.write(session.tick(transport.read(clock.now_ms())))
        ticks += 1
        if isinstance(clock, VirtualClock):
            clock.advance(FRAME_MS)
        elif not transport.paces_itself:
            delay = wall0 + ticks * FRAME_MS / 1000.0 - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
    return None


def run_call(session: CallSession, transport: CallTransport, clock: Clock,
             max_duration_ms: float | None = None) -> CallResult:
    """A whole simulated call: drive it, tell the transport how it ended, close the session."""
    drive(session, transport, clock, max_duration_ms)
    transport.end(session.outcome, session.transfer_target)
    duration_ms = clock.now_ms()
    session.close()
    return CallResult(session.outcome or "unfinished", session.end_reason, session.transfer_target, duration_ms)
