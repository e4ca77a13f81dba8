"""A pjsua2 audio media port that turns the conference bridge's 20 ms frames into PCM16 bytes.

The bridge's clock thread calls onFrameReceived (the caller's audio) and onFrameRequested (what the
caller hears) every 20 ms. The callbacks only move buffers between deques: no model, no numpy, no
disk. The call's runner thread blocks on `read()` (so the media clock paces it) and feeds `write()`,
which looks at a frame's samples there, not on the clock thread.

Ports are never destroyed while the library runs: a port destroyed on the SIP thread could still be
called by the clock thread in the same tick (seen in a soak: a callback on a half-destroyed port, an
AttributeError, then a segfault). `MediaPorts` keeps them and hands a port that has rested for
PORT_REST_S to the next call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

import numpy as np
import pjsua2 as pj

from telephony.audio.frame import BYTES_PER_SAMPLE, FRAME_MS, samples_per_frame

log = logging.getLogger(__name__)

LINE_RATE_HZ = 8000
FRAME_BYTES = BYTES_PER_SAMPLE * samples_per_frame(LINE_RATE_HZ, FRAME_MS)
MAX_QUEUED_FRAMES = 50
"""Frames kept in each direction at most (1 s); older ones are dropped if the other side stalls."""
SILENCE_BACKLOG = 2
"""Frames queued for the caller beyond which silence is not queued (40 ms of slack for the runner)."""
QUIET_PEAK = 100
"""A frame whose samples all stay within +-QUIET_PEAK (-50 dBFS) is silence for SILENCE_BACKLOG: the
pauses between a prompt's words and sentences, which are not exact zeros."""
PORT_REST_S = 1.0
"""A port given back rests this long (its old connections are gone from the bridge) before it is reused."""


def audio_format(rate_hz: int = LINE_RATE_HZ) -> pj.MediaFormatAudio:
    fmt = pj.MediaFormatAudio()
    fmt.init(pj.PJMEDIA_FORMAT_PCM, rate_hz, 1, FRAME_MS * 1000, 16)
    return fmt


class CallMediaPort(pj.AudioMediaPort):
    """Caller audio in, agent audio out, as 20 ms PCM16 frames at 8 kHz."""

    def __init__(self) -> None:
        super().__init__()
        self._inbound: deque[pj.ByteVector | None] = deque(maxlen=MAX_QUEUED_FRAMES)
        self._outbound: deque[pj.ByteVector] = deque(maxlen=MAX_QUEUED_FRAMES)
        self._arrived = threading.Condition()
        self._silence = pj.ByteVector(bytes(FRAME_BYTES))
        self.frames_received = 0
        self.frames_sent = 0

    # ---- pjmedia clock thread ---------------------------------------------------------------------

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:  # noqa: N802 (pjsua2 name)
        try:
            data = pj.ByteVector(frame.buf) if frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO and frame.size else None
            with self._arrived:
                self._inbound.append(data)
                self.frames_received += 1
                self._arrived.notify()
        except Exception:  # an exception escaping a pjsua2 callback kills the process
            log.exception("media port: receiving a frame failed")

    def onFrameRequested(self, frame: pj.MediaFrame) -> None:  # noqa: N802 (pjsua2 name)
        try:
            data = self._outbound.popleft() if self._outbound else self._silence
            frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
            frame.buf = data
            frame.size = FRAME_BYTES
            self.frames_sent += 1
        except Exception:
            log.exception("media port: sending a frame failed")

    def reset(self) -> None:
        """Forget the previous call's frames and counts (before the port serves another call)."""
        with self._arrived:
            self._inbound.clear()
            self._outbound.clear()
            self.frames_received = 0
            self.frames_sent = 0

    # ---- the call's runner thread -----------------------------------------------------------------

    def read(self, timeout_s: float) -> tuple[bool, bytes | None]:
        """(arrived, pcm): waits for the next caller frame; pcm is None for a frame without audio."""
        with self._arrived:
            if not self._inbound and not self._arrived.wait(timeout_s):
                return False, None
            data = self._inbound.popleft() if self._inbound else None
        if data is None:
            return True, None
        pcm = bytes(data)  # ~0.2 ms for 320 bytes through SWIG: done here, not on the media clock
        return True, pcm if len(pcm) == FRAME_BYTES else None

    def write(self, pcm: bytes) -> None:
        """Queue a frame for the caller. A silent frame is dropped while SILENCE_BACKLOG frames already wait:
        when the runner catches up after a stall it writes a burst, and queued audio would delay all the
        agent says by the length of that burst for the rest of the call (seen: 5-6 frames, 100-120 ms, on
        a loaded box). Dropping it in the quiet between words shortens a pause by a frame or two."""
        if len(self._outbound) >= SILENCE_BACKLOG and _quiet(pcm):
            return
        self._outbound.append(pj.ByteVector(pcm))

    @property
    def queued_out(self) -> int:
        return len(self._outbound)


def _quiet(pcm: bytes) -> bool:
    samples = np.frombuffer(pcm, dtype="<i2")
    return samples.size == 0 or int(np.abs(samples.astype(np.int32)).max()) <= QUIET_PEAK


class MediaPorts:
    """The process's media ports, reused from call to call and destroyed only with the library (SIP thread)."""

    def __init__(self) -> None:
        self._ports: list[CallMediaPort] = []
        self._free: deque[tuple[float, CallMediaPort]] = deque()

    def acquire(self) -> CallMediaPort:
        if self._free and self._free[0][0] <= time.monotonic():
            port = self._free.popleft()[1]
            port.reset()
            return port
        port = CallMediaPort()
        port.createPort(f"line-{len(self._ports)}", audio_format(LINE_RATE_HZ))
        self._ports.append(port)
        return port

    def release(self, port: CallMediaPort | None) -> None:
        if port is not None:
            self._free.append((time.monotonic() + PORT_REST_S, port))

    def __len__(self) -> int:
        return len(self._ports)

    def clear(self) -> None:
        """Drops every port: only right before the library is destroyed."""
        self._free.clear()
        self._ports.clear()
