"""A pjsua2 audio media port that turns the conference bridge's 20 ms frames into PCM16 bytes.

The bridge's clock thread calls onFrameReceived (the caller's audio) and onFrameRequested (what the
caller hears) every 20 ms. The callbacks only copy a frame's bytes (`vector_bytes`, a few microseconds)
and move buffers between deques: no model, no numpy, no disk. The call's runner thread blocks on
`read()` (so the media clock paces it) and feeds `write()`, which looks at a frame's samples there, not
on the clock thread.

Ports are never destroyed while the library runs: a port destroyed on the SIP thread could still be
called by the clock thread in the same tick (seen in a soak: a callback on a half-destroyed port, an
AttributeError, then a segfault). `MediaPorts` keeps them and hands a port that has rested for
PORT_REST_S to the next call.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import queue
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


_POINTERS = ctypes.POINTER(ctypes.c_void_p)


def _read_vector(vector: pj.ByteVector) -> bytes | None:
    """A ByteVector's bytes straight from its memory, or None where that is not safe to trust.

    `bytes(vector)` goes through SWIG's iterator one byte at a time: about 0.5 ms for a 20 ms frame, which
    was a few percent of a core per call in each direction. SWIG's object holds the address of the C++
    std::vector<unsigned char>, which in libstdc++ begins with pointers to its first and one-past-its-last
    byte; the length found there is checked against the vector's own size() before anything is read."""
    pointers = ctypes.cast(int(vector.this), _POINTERS)
    start, end = pointers[0], pointers[1]
    size = vector.size()
    if start is None or end is None:
        return b"" if size == 0 else None
    if end - start != size:
        return None
    return ctypes.string_at(start, size)


def _direct_read_works() -> bool:
    """Whether _read_vector reads this build's vectors right (checked once, on a known pattern)."""
    pattern = bytes(range(256)) * 2
    try:
        return _read_vector(pj.ByteVector(pattern)) == pattern and _read_vector(pj.ByteVector()) == b""
    except Exception:  # noqa: BLE001 - any surprise means the slow, safe path
        return False


_DIRECT_READ = _direct_read_works()


def vector_bytes(vector: pj.ByteVector) -> bytes:
    """A pjsua2 ByteVector as bytes: read directly (a few microseconds) where this build allows it, else
    through SWIG's iterator."""
    if _DIRECT_READ:
        data = _read_vector(vector)
        if data is not None:
            return data
    return bytes(vector)


def audio_format(rate_hz: int = LINE_RATE_HZ) -> pj.MediaFormatAudio:
    fmt = pj.MediaFormatAudio()
    fmt.init(pj.PJMEDIA_FORMAT_PCM, rate_hz, 1, FRAME_MS * 1000, 16)
    return fmt


class CallMediaPort(pj.AudioMediaPort):
    """Caller audio in, agent audio out, as 20 ms PCM16 frames at 8 kHz."""

    def __init__(self) -> None:
        super().__init__()
        self._inbound: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        """The caller's frames for the runner (a C queue: a Condition's notify cost more than the frame)."""
        self._outbound: deque[pj.ByteVector] = deque(maxlen=MAX_QUEUED_FRAMES)
        self._silence = pj.ByteVector(bytes(FRAME_BYTES))
        self.frames_received = 0
        self.frames_sent = 0

    # ---- pjmedia clock thread ---------------------------------------------------------------------

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:  # noqa: N802 (pjsua2 name)
        try:
            data = vector_bytes(frame.buf) if frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO and frame.size else None
            if self._inbound.qsize() >= MAX_QUEUED_FRAMES:  # the runner stalls: the oldest frame goes
                with contextlib.suppress(queue.Empty):
                    self._inbound.get_nowait()
            self._inbound.put(data)
            self.frames_received += 1
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
        with contextlib.suppress(queue.Empty):
            while True:
                self._inbound.get_nowait()
        self._outbound.clear()
        self.frames_received = 0
        self.frames_sent = 0

    # ---- the call's runner thread -----------------------------------------------------------------

    def read(self, timeout_s: float) -> tuple[bool, bytes | None]:
        """(arrived, pcm): waits for the next caller frame; pcm is None for a frame without audio."""
        try:
            pcm = self._inbound.get(timeout=timeout_s)
        except queue.Empty:
            return False, None
        return True, pcm if pcm is not None and len(pcm) == FRAME_BYTES else None

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
