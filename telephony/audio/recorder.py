"""Stereo call recording (caller left, agent right), written as the call goes.

The WAV header is brought up to date every second, so a crash loses at most about a second.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from telephony.audio.frame import Frame

SYNC_EVERY_MS = 1000


class StereoRecorder:
    def __init__(self, path: Path, sample_rate_hz: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.sample_rate_hz = sample_rate_hz
        self._file = sf.SoundFile(str(path), "w", samplerate=sample_rate_hz, channels=2,
                                  subtype="PCM_16", format="WAV")
        self._since_sync_ms = 0.0
        self.duration_ms = 0.0

    def write(self, caller: Frame, agent: Frame) -> None:
        """One tick: the caller's and the agent's frame, same length and rate."""
        left, right = caller.samples(), agent.samples()
        n = max(left.size, right.size)
        pair = np.zeros((n, 2), dtype=np.int16)
        pair[:left.size, 0] = left
        pair[:right.size, 1] = right
        self._file.write(pair)
        step_ms = 1000.0 * n / self.sample_rate_hz
        self.duration_ms += step_ms
        self._since_sync_ms += step_ms
        if self._since_sync_ms >= SYNC_EVERY_MS:
            self._file.flush()
            self._since_sync_ms = 0.0

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
