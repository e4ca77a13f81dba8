"""Diarization results and the interface of a backend."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    speaker: str

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


class Diarizer(ABC):
    name = "diarizer"

    @abstractmethod
    def diarize(self, samples: np.ndarray, sample_rate_hz: int, num_speakers: int | None = 2) -> list[Segment]:
        """Speaker segments (sorted by start) of mono audio (int16 or float); num_speakers None: estimated."""


def merge_segments(segments: list[Segment], max_gap_s: float = 0.5) -> list[Segment]:
    """Consecutive segments of one speaker with a gap under max_gap_s joined into one."""
    merged: list[Segment] = []
    for seg in sorted(segments, key=lambda s: s.start_s):
        if merged and merged[-1].speaker == seg.speaker and seg.start_s - merged[-1].end_s < max_gap_s:
            merged[-1] = Segment(merged[-1].start_s, max(merged[-1].end_s, seg.end_s), seg.speaker)
        else:
            merged.append(seg)
    return merged
