"""The speech-recognition interface every backend implements, and its result types."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Word:
    text: str
    start_s: float
    end_s: float
    confidence: float


@dataclass(frozen=True)
class Transcript:
    """A partial (is_final=False) or final recognition result."""

    text: str
    confidence: float
    words: tuple[Word, ...] = ()
    is_final: bool = True
    language: str = ""


@dataclass(frozen=True)
class AsrCapabilities:
    streaming: bool
    """True when audio is decoded as it arrives (Vosk); False when decoded at end of turn (Whisper)."""
    partials: bool
    """True when the stream returns partial transcripts before the final one."""
    sample_rates_hz: tuple[int, ...] = (16000,)
    """Rates the backend takes without resampling; others are resampled by the caller."""
    vocabulary_biasing: str = ""
    """'grammar' (closed phrase list), 'hotwords' (soft bias), or '' (none)."""


@dataclass(frozen=True)
class RecognitionOptions:
    phrases: tuple[str, ...] = field(default_factory=tuple)
    """Expected words or phrases (menu options) to bias recognition towards."""
    language: str = ""


class RecognizerStream(ABC):
    """One utterance being recognized: feed PCM16 mono audio, then finish for the final result."""

    @abstractmethod
    def accept(self, pcm: bytes) -> Transcript | None:
        """Feed audio at the stream's rate; returns a partial transcript when one is ready."""

    @abstractmethod
    def finish(self) -> Transcript:
        """The final transcript of everything fed; the stream is done afterwards."""


class SpeechRecognizer(ABC):
    """A loaded model, shared by all calls of a process; thread-safe for separate streams."""

    name: str = "asr"
    capabilities: AsrCapabilities

    @abstractmethod
    def stream(self, sample_rate_hz: int, options: RecognitionOptions | None = None) -> RecognizerStream:
        """A new stream for one utterance at sample_rate_hz."""

    def transcribe(self, samples: np.ndarray, sample_rate_hz: int,
                   options: RecognitionOptions | None = None) -> Transcript:
        """A whole recording (int16 mono) at once; the default runs it through one stream."""
        s = self.stream(sample_rate_hz, options)
        s.accept(np.asarray(samples, dtype="<i2").tobytes())
        return s.finish()
