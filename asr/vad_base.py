"""The voice-activity-detector interface: is this 20 ms frame speech?"""

from __future__ import annotations

from abc import ABC, abstractmethod


class VoiceActivityDetector(ABC):
    """Per-call, stateful: one instance per call direction. Frames are 20 ms PCM16 mono."""

    name: str = "vad"
    sample_rates_hz: tuple[int, ...] = (8000, 16000)

    @abstractmethod
    def speech_probability(self, pcm: bytes, sample_rate_hz: int) -> float:
        """Probability in [0, 1] that this 20 ms frame holds speech."""

    def reset(self) -> None:  # noqa: B027 - optional hook; stateless detectors need nothing
        """Forget state between calls or utterances."""
