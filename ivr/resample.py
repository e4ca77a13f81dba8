"""Sample-rate conversion with soxr: one stateful stream per direction per call, and one-shot."""

from __future__ import annotations

import numpy as np
import soxr

from ivr.errors import FrameError
from ivr.frame import Frame, to_float32


def resample(samples: np.ndarray, from_rate_hz: int, to_rate_hz: int) -> np.ndarray:
    """Whole-signal conversion; int16 in gives int16 out, float in gives float32 out."""
    if from_rate_hz == to_rate_hz or samples.size == 0:
        return samples
    out = soxr.resample(to_float32(samples), from_rate_hz, to_rate_hz, quality="HQ")
    if samples.dtype == np.int16:
        return np.clip(np.round(out * 32768.0), -32768, 32767).astype(np.int16)
    return np.asarray(out, dtype=np.float32)


class Resampler:
    """Converts a stream of frames from one rate to another, keeping filter state between frames.

    Output frames can be a few samples shorter or longer than input frames while the filter
    fills; `flush()` returns what is left at the end of the stream.
    """

    def __init__(self, from_rate_hz: int, to_rate_hz: int) -> None:
        self.from_rate_hz = from_rate_hz
        self.to_rate_hz = to_rate_hz
        self._stream = (None if from_rate_hz == to_rate_hz
                        else soxr.ResampleStream(from_rate_hz, to_rate_hz, 1, dtype="int16", quality="HQ"))

    def process(self, frame: Frame) -> Frame:
        if frame.sample_rate_hz != self.from_rate_hz:
            raise FrameError(f"resampler expects {self.from_rate_hz} Hz, got {frame.sample_rate_hz} Hz")
        if self._stream is None:
            return frame
        out = self._stream.resample_chunk(frame.samples().astype(np.int16))
        return Frame.from_samples(np.asarray(out, dtype=np.int16), self.to_rate_hz, frame.timestamp_ms)

    def flush(self) -> np.ndarray:
        if self._stream is None:
            return np.zeros(0, dtype=np.int16)
        return np.asarray(self._stream.resample_chunk(np.zeros(0, dtype=np.int16), last=True), dtype=np.int16)
