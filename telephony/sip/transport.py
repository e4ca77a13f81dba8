"""A SIP call's line as a CallTransport: audio from and to its media port, keys and hangups from the SIP
thread. `read` blocks on the media clock, so the driver loop runs at the line's pace."""

from __future__ import annotations

import threading

from telephony.audio.frame import Frame
from telephony.clock import Clock
from telephony.sip.media import LINE_RATE_HZ, CallMediaPort
from telephony.transport import KeyPress, LineEnd, LiveTransport

READ_TIMEOUT_S = 0.1
"""With no frame from the media clock for this long, the session ticks on silence anyway."""


class SipTransport(LiveTransport):
    def __init__(self, port: CallMediaPort, clock: Clock, rtp_timeout_s: float) -> None:
        super().__init__()
        self.sample_rate_hz = LINE_RATE_HZ
        self.port = port
        self._clock = clock
        self._rtp_timeout_s = rtp_timeout_s
        self.ended_by_server = ""
        """Set when the server ended the call (then `hung_up` is set too): why."""
        self.rtp_timed_out = threading.Event()

    # ---- from the SIP thread ------------------------------------------------------------------------

    def key(self, digit: str, method: str) -> None:
        self._press(KeyPress(digit, method))

    def disconnected(self, ended_by_server: str = "") -> None:
        self.ended_by_server = ended_by_server
        self.hung_up.set()

    # ---- the driver's side --------------------------------------------------------------------------

    def read(self, now_ms: float) -> Frame | None:
        _, pcm = self.port.read(READ_TIMEOUT_S)
        return Frame(pcm, LINE_RATE_HZ, self._clock.now_ms()) if pcm is not None else None

    def write(self, frame: Frame) -> None:
        self.port.write(frame.pcm)

    def line_end(self) -> LineEnd | None:
        if self.hung_up.is_set():
            if self.ended_by_server:
                return LineEnd("agent-hangup", self.ended_by_server)
            return LineEnd("caller-hangup")
        if self.rtp_timed_out.is_set():
            return LineEnd("rtp-timeout", "no RTP from the caller", self._rtp_timeout_s)
        return None
