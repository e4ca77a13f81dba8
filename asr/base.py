"""The speech-recognition interface every backend implements, and its result types."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class Word:
    text: str
    start_s: float
    end_s: float
    confidence: float


@dataclass(frozen=True)
class Alternative:
    """Another hypothesis of the same audio (N-best), less likely than the transcript's own text."""

    text: str
    log_prob: float
    """Average log probability per token (the best hypothesis has the highest)."""


@dataclass(frozen=True)
class Transcript:
    """A partial (is_final=False) or final recognition result."""

    text: str
    confidence: float
    words: tuple[Word, ...] = ()
    is_final: bool = True
    language: str = ""
    alternatives: tuple[Alternative, ...] = ()
    """The next-best hypotheses, best first, when RecognitionOptions.alternatives asked for them."""
    log_prob: float = 0.0
    """Average log probability per token of `text` (0.0 when the backend gives none)."""

    def hypotheses(self) -> tuple[str, ...]:
        """`text`, then the alternatives' texts, without repeats (case and punctuation kept)."""
        return tuple(dict.fromkeys((self.text, *(a.text for a in self.alternatives))))


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


Expect = Literal["", "choice", "yes_no", "digits"]
"""What the caller is asked for: '' anything, 'choice' one of the phrases (a menu), 'yes_no' a yes/no
answer, 'digits' a string of digits (an account number)."""


@dataclass(frozen=True)
class RecognitionOptions:
    """What the dialog expects from the coming turn; backends use what they can of it."""

    phrases: tuple[str, ...] = field(default_factory=tuple)
    """Expected words or phrases (menu options) to bias recognition towards."""
    language: str = ""
    expect: Expect = ""
    prompt: str = ""
    """What the agent said just before the turn (its question), as context for the recognizer."""
    digits: int = 0
    """expect='digits': how many digits are wanted (0: any number)."""
    alternatives: int = 0
    """How many next-best hypotheses to return besides the best (0: none)."""


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
