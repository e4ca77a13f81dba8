"""A browser's WebRTC line as a CallTransport: the caller's 48 kHz audio resampled to the session's rate,
the agent's resampled back to 48 kHz; keys and the hang-up from the page's data channel.

The event loop that runs aiortc hands frames in (`hear`, `key`, `caller_left`); the driver thread reads them
at the pace they arrive (`read` waits for the next 20 ms frame, like the SIP media clock), so the one
driver loop runs a web call as it runs a phone call. One stateful resampler per direction per call.
"""

from __future__ import annotations

import contextlib
import queue
from typing import Protocol

from telephony.audio.frame import INTERNAL_RATE_HZ, Frame, FrameBuffer
from telephony.audio.resample import Resampler
from telephony.clock import Clock
from telephony.transport import KeyPress, LineEnd, LiveTransport
from telephony.webrtc.config import EDGE_RATE_HZ

READ_TIMEOUT_S = 0.1
"""With no audio from the browser for this long, the session ticks on silence anyway."""
MAX_INBOUND_FRAMES = 50
"""The caller's audio waiting for the driver: past a second, the oldest is dropped (a stalled call catches up)."""
DTMF_KEYS = frozenset("0123456789*#")
SILENT_BACKLOG_FRAMES = 2
"""When more of the agent's frames than this wait to be sent, its silent frames are dropped: a backlog built
while the call's thread caught up after a stall is shed in the pauses, so it never delays the agent's replies
(the media clock only sends 50 frames a second, so a backlog of silence never drains by itself)."""


class AgentSink(Protocol):
    """Where the agent's 48 kHz frames go (telephony.webrtc.media.AgentTrack)."""

    def push(self, pcm: bytes) -> None: ...

    @property
    def queued(self) -> int: ...


class WebRtcTransport(LiveTransport):
    def __init__(self, clock: Clock, agent: AgentSink, sample_rate_hz: int = INTERNAL_RATE_HZ) -> None:
        """agent: takes the agent's audio toward the browser, 20 ms frames of 48 kHz PCM16 mono."""
        super().__init__()
        self.sample_rate_hz = sample_rate_hz
        self._clock = clock
        self._agent = agent
        self._inbound: queue.Queue[Frame] = queue.Queue()
        self._in_resampler = Resampler(EDGE_RATE_HZ, sample_rate_hz)
        self._in_buf = FrameBuffer(sample_rate_hz)
        self._out_resampler = Resampler(sample_rate_hz, EDGE_RATE_HZ)
        self._out_buf = FrameBuffer(EDGE_RATE_HZ)
        self.close_reason = ""
        self.frames_received = 0
        self.silence_shed = 0
        """Silent agent frames dropped to keep the backlog short (see SILENT_BACKLOG_FRAMES)."""

    # ---- from the event loop (aiortc) ------------------------------------------------------------

    def hear(self, pcm: bytes, rate_hz: int = EDGE_RATE_HZ) -> None:
        """The caller's audio as it arrives: PCM16 mono (aiortc decodes 20 ms frames)."""
        if rate_hz != EDGE_RATE_HZ:
            return  # WebRTC's Opus decodes at 48 kHz; anything else is not the browser's microphone
        if self._inbound.qsize() >= MAX_INBOUND_FRAMES:
            with contextlib.suppress(queue.Empty):
                self._inbound.get_nowait()
        self._inbound.put(Frame(pcm, rate_hz))
        self.frames_received += 1

    def key(self, digit: str) -> bool:
        """A key pressed on the page's keypad; False (and ignored) for anything but 0-9, * and #."""
        if len(digit) != 1 or digit not in DTMF_KEYS:
            return False
        self._press(KeyPress(digit, "datachannel"))
        return True

    def caller_left(self, reason: str = "caller hung up") -> None:
        """The page hung up, or the peer connection failed or closed."""
        if not self.hung_up.is_set():
            self.close_reason = reason
            self.hung_up.set()

    @property
    def closed(self) -> bool:
        return self.hung_up.is_set()

    # ---- the driver's side -----------------------------------------------------------------------

    def read(self, now_ms: float) -> Frame | None:
        while len(self._in_buf) < self._in_buf.frame_samples:
            try:
                edge = self._inbound.get(timeout=READ_TIMEOUT_S)
            except queue.Empty:
                return None
            self._in_buf.push(self._in_resampler.process(edge).samples())
        return self._in_buf.pop(self._clock.now_ms())

    def write(self, frame: Frame) -> None:
        self._out_buf.push(self._out_resampler.process(frame).samples())
        while (edge := self._out_buf.pop()) is not None:
            if self._agent.queued > SILENT_BACKLOG_FRAMES and not edge.pcm.strip(b"\0"):
                self.silence_shed += 1
                continue
            self._agent.push(edge.pcm)

    def line_end(self) -> LineEnd | None:
        return LineEnd("caller-hangup", self.close_reason) if self.hung_up.is_set() else None
