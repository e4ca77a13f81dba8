"""The speech-synthesis interface every backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

from telephony.audio.audiofile import AudioClip


@dataclass(frozen=True)
class TtsCapabilities:
    sample_rate_hz: int
    """Rate of the audio the engine produces."""
    streaming: bool = False
    """True when synthesize_stream yields audio before the whole text is done."""


class SpeechAudio(AudioClip):
    """Synthesized speech: an audio clip of int16 mono samples at the engine's rate."""


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
