"""The unit of audio that moves through a call: 20 ms of PCM16 mono at a stated rate."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from telephony.audio.pcm import to_int16
from telephony.errors import FrameError

FRAME_MS = 20
INTERNAL_RATE_HZ = 16000
TELEPHONE_RATE_HZ = 8000
BYTES_PER_SAMPLE = 2


def samples_per_frame(rate_hz: int, frame_ms: int = FRAME_MS) -> int:
    return rate_hz * frame_ms // 1000


@dataclass(frozen=True)
class Frame:
    """PCM16 little-endian mono samples, their sample rate, and when the first sample plays."""

    pcm: bytes
    sample_rate_hz: int
    timestamp_ms: float = 0.0

    def __post_init__(self) -> None:
        if len(self.pcm) % BYTES_PER_SAMPLE:
            raise FrameError(f"PCM16 frame has an odd byte count ({len(self.pcm)})")
        if self.sample_rate_hz <= 0:
            raise FrameError(f"invalid sample rate {self.sample_rate_hz}")

    @property
    def num_samples(self) -> int:
        return len(self.pcm) // BYTES_PER_SAMPLE

    @property
    def duration_ms(self) -> float:
        return 1000.0 * self.num_samples / self.sample_rate_hz

    def samples(self) -> np.ndarray:
        """The samples as int16."""
        return np.frombuffer(self.pcm, dtype="<i2")

    @classmethod
    def from_samples(cls, samples: np.ndarray, sample_rate_hz: int, timestamp_ms: float = 0.0) -> Frame:
        return cls(to_pcm16(samples), sample_rate_hz, timestamp_ms)

    @classmethod
    def silence(cls, sample_rate_hz: int, timestamp_ms: float = 0.0, frame_ms: int = FRAME_MS) -> Frame:
        return cls(bytes(BYTES_PER_SAMPLE * samples_per_frame(sample_rate_hz, frame_ms)), sample_rate_hz,
                   timestamp_ms)


def to_pcm16(samples: np.ndarray) -> bytes:
    """int16 samples as-is, floats in [-1, 1) as the one PCM convention has them (telephony.audio.pcm), as
    little-endian bytes."""
    return to_int16(samples).astype("<i2", copy=False).tobytes()


def check_same_rate(frames: list[Frame]) -> int:
    """The one sample rate of these frames; mixed rates raise FrameError."""
    rates = {f.sample_rate_hz for f in frames}
    if len(rates) > 1:
        raise FrameError(f"frames with mixed sample rates: {sorted(rates)}")
    return rates.pop() if rates else INTERNAL_RATE_HZ


def join(frames: list[Frame]) -> np.ndarray:
    """The int16 samples of frames that share one rate, end to end."""
    check_same_rate(frames)
    if not frames:
        return np.zeros(0, dtype=np.int16)
    return np.frombuffer(b"".join(f.pcm for f in frames), dtype="<i2").astype(np.int16)


def split(samples: np.ndarray, sample_rate_hz: int, start_ms: float = 0.0,
          frame_ms: int = FRAME_MS) -> list[Frame]:
    """Cut int16 samples into frames of frame_ms; the last one is padded with silence."""
    n = samples_per_frame(sample_rate_hz, frame_ms)
    pcm = to_pcm16(samples)
    step = n * BYTES_PER_SAMPLE
    frames = []
    for i, offset in enumerate(range(0, len(pcm), step)):
        chunk = pcm[offset:offset + step]
        if len(chunk) < step:
            chunk = chunk + bytes(step - len(chunk))
        frames.append(Frame(chunk, sample_rate_hz, start_ms + i * frame_ms))
    return frames


class FrameBuffer:
    """A FIFO of int16 samples at one rate that hands out exact frames (for resampler output)."""

    def __init__(self, sample_rate_hz: int, frame_ms: int = FRAME_MS) -> None:
        self.sample_rate_hz = sample_rate_hz
        self.frame_samples = samples_per_frame(sample_rate_hz, frame_ms)
        self._chunks: list[np.ndarray] = []
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def push(self, samples: np.ndarray) -> None:
        if samples.size:
            self._chunks.append(samples.astype(np.int16, copy=False))
            self._size += samples.size

    def pop(self, timestamp_ms: float = 0.0, pad: bool = False) -> Frame | None:
        """The next whole frame; None when less than a frame is buffered (unless pad)."""
        if self._size < self.frame_samples and not (pad and self._size):
            return None
        data = np.concatenate(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
        head, rest = data[:self.frame_samples], data[self.frame_samples:]
        self._chunks = [rest] if rest.size else []
        self._size = rest.size
        if head.size < self.frame_samples:
            head = np.concatenate([head, np.zeros(self.frame_samples - head.size, dtype=np.int16)])
        return Frame.from_samples(head, self.sample_rate_hz, timestamp_ms)

    def clear(self) -> None:
        self._chunks = []
        self._size = 0
