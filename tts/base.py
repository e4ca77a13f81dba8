"""The speech-synthesis interface every backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TtsCapabilities:
    sample_rate_hz: int
    """Rate of the audio the engine produces."""
    streaming: bool = False
    """True when synthesize_stream yields audio before the whole text is done."""


@dataclass(frozen=True)
class SpeechAudio:
    samples: np.ndarray
    """int16 mono."""
    sample_rate_hz: int

    @property
    def duration_s(self) -> float:
        return self.samples.size / self.sample_rate_hz


class Synthesizer(ABC):
    """A loaded voice, shared by all calls of a process."""

    engine: str = "tts"
    voice: str = ""
    capabilities: TtsCapabilities

    @abstractmethod
    def synthesize(self, text: str) -> SpeechAudio:
        """Audio for the whole text."""

    def synthesize_stream(self, text: str) -> Iterator[SpeechAudio]:
        """Audio in pieces, first piece as early as the engine allows; default: one piece."""
        yield self.synthesize(text)
