"""Audio at the WebRTC edge: aiortc's decoded frames to PCM16 mono, and the track that plays the agent.

aiortc decodes the browser's Opus into 20 ms frames of packed s16 (stereo, 48 kHz); the agent's track hands
the encoder 20 ms mono frames at 48 kHz, paced by the wall clock like aiortc's own AudioStreamTrack, with
silence whenever the agent has nothing queued.
"""

from __future__ import annotations

import asyncio
import fractions
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

from telephony.audio.frame import FRAME_MS, samples_per_frame
from telephony.webrtc.config import EDGE_RATE_HZ

EDGE_FRAME_SAMPLES = samples_per_frame(EDGE_RATE_HZ)
MAX_QUEUED_FRAMES = 50 * 60
"""At most a minute of the agent's audio waits to be sent (a stalled peer never grows memory further)."""


def mono_pcm16(frame: Any) -> tuple[bytes, int]:
    """(PCM16 mono bytes, sample rate) of an aiortc audio frame (s16 or flt, packed or planar, any layout)."""
    channels = len(frame.layout.channels)
    data = frame.to_ndarray()
    if frame.format.is_planar:
        samples = data.astype(np.float64).mean(axis=0)
    else:
        samples = data.reshape(-1, channels).astype(np.float64).mean(axis=1)
    if frame.format.name.startswith("flt"):
        samples = samples * 32768.0
    pcm = np.clip(np.rint(samples), -32768, 32767).astype("<i2").tobytes()
    return pcm, int(frame.sample_rate)


def receive_audio(track: MediaStreamTrack, on_audio: Callable[[bytes, int], None],
                  tasks: set[asyncio.Task[None]]) -> None:
    """Read a remote track on the running loop until it ends, handing each frame to on_audio as
    (PCM16 mono, sample rate); the reading task is held in `tasks` while it runs."""
    task = asyncio.ensure_future(_receive(track, on_audio))
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def _receive(track: MediaStreamTrack, on_audio: Callable[[bytes, int], None]) -> None:
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        on_audio(*mono_pcm16(frame))


def edge_frame(pcm: bytes, pts: int) -> AudioFrame:
    """A 48 kHz mono s16 frame for aiortc's encoder."""
    frame = AudioFrame(format="s16", layout="mono", samples=len(pcm) // 2)
    frame.planes[0].update(pcm)
    frame.pts = pts
    frame.sample_rate = EDGE_RATE_HZ
    frame.time_base = fractions.Fraction(1, EDGE_RATE_HZ)
    return frame


class AgentTrack(MediaStreamTrack):
    """The agent's voice toward the browser: 20 ms frames queued from the call's thread (`push`), sent at
    the wall clock's pace; silence when none is queued."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._queue: deque[bytes] = deque(maxlen=MAX_QUEUED_FRAMES)
        self._lock = threading.Lock()
        self._start = 0.0
        self._pts = -1
        self.frames_sent = 0

    def push(self, pcm: bytes) -> None:
        """One 20 ms frame of 48 kHz PCM16 mono (any thread)."""
        with self._lock:
            self._queue.append(pcm)

    @property
    def queued(self) -> int:
        return len(self._queue)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._pts < 0:
            self._start, self._pts = time.monotonic(), 0
        else:
            self._pts += EDGE_FRAME_SAMPLES
            wait_s = self._start + self._pts / EDGE_RATE_HZ - time.monotonic()
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            elif wait_s < -FRAME_MS / 1000.0 * 10:  # fell far behind (a stalled loop): start the clock again
                self._start = time.monotonic() - self._pts / EDGE_RATE_HZ
        with self._lock:
            pcm = self._queue.popleft() if self._queue else bytes(2 * EDGE_FRAME_SAMPLES)
        self.frames_sent += 1
        return edge_frame(pcm, self._pts)
