"""Sample-rate conversion with soxr: one stateful stream per direction per call, and one-shot.

Both run soxr on floats and convert back to int16 here, with one rounding rule (`telephony.audio.pcm.to_int16`:
round half to even, then clip; no dither). soxr's own int16 output is not used: it adds dither noise
from a generator seeded per stream, so identical input gave different samples in every run and
instance (up to 43% of samples off by +-2), which moved turn ends and changed what Whisper heard.

The stream also has to give the same samples for the same audio wherever it falls in the stream: in
a call the caller's turn starts at a tick that depends on how long the models took, so the same
speech arrives after a different amount of silence. soxr filters in blocks; its single-precision
core (quality HQ) then rounds differently by position, and after rounding to int16 about 1 sample in
2,000 moved by +-1, so Whisper got different audio. The stream therefore runs soxr's
double-precision core (VHQ, float64): over 129 s of telephone prompts at 20 frame offsets, for
8k->16k, 16k->8k and 22.05k->16k, no sample differed (about 1e8 samples; float64 rounding error is
around 1e-11 of a step, so a flip is possible in principle but not expected in practice).
"""

from __future__ import annotations

import numpy as np
import soxr

from telephony.audio.frame import Frame
from telephony.audio.pcm import INT16_SCALE, to_float32, to_int16
from telephony.errors import FrameError

QUALITY = "HQ"
"""One-shot conversion (a whole signal: no position effects)."""
STREAM_QUALITY = "VHQ"
STREAM_DTYPE = np.float64
"""Stream conversion: soxr's double-precision core, so a signal gives the same samples wherever it
starts in the stream."""
def resample(samples: np.ndarray, from_rate_hz: int, to_rate_hz: int) -> np.ndarray:
    """Whole-signal conversion; int16 in gives int16 out, float in gives float32 out."""
    if from_rate_hz == to_rate_hz or samples.size == 0:
        return samples
    out = soxr.resample(to_float32(samples), from_rate_hz, to_rate_hz, quality=QUALITY)
    if samples.dtype == np.int16:
        return to_int16(out)
    return np.asarray(out, dtype=np.float32)


class Resampler:
    """Converts a stream of int16 frames from one rate to another, keeping filter state between frames.

    The same input frames give the same output samples in every instance and every run, and the same
    audio gives the same samples after any whole number of frames of silence (see the module doc).
    Output frames can be shorter or longer than input frames (soxr works in blocks); `flush()` returns
    what is left at the end of the stream.
    """

    def __init__(self, from_rate_hz: int, to_rate_hz: int) -> None:
        self.from_rate_hz = from_rate_hz
        self.to_rate_hz = to_rate_hz
        self._stream = (None if from_rate_hz == to_rate_hz
                        else soxr.ResampleStream(from_rate_hz, to_rate_hz, 1, dtype="float64",
                                                 quality=STREAM_QUALITY))

    def process(self, frame: Frame) -> Frame:
        if frame.sample_rate_hz != self.from_rate_hz:
            raise FrameError(f"resampler expects {self.from_rate_hz} Hz, got {frame.sample_rate_hz} Hz")
        if self._stream is None:
            return frame
        out = self._stream.resample_chunk(frame.samples().astype(STREAM_DTYPE) / INT16_SCALE)
        return Frame.from_samples(to_int16(out), self.to_rate_hz, frame.timestamp_ms)

    def flush(self) -> np.ndarray:
        if self._stream is None:
            return np.zeros(0, dtype=np.int16)
        return to_int16(self._stream.resample_chunk(np.zeros(0, dtype=STREAM_DTYPE), last=True))
