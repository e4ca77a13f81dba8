"""Speaking a reply into a call: sentence by sentence, at the call's sample rate."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from telephony.audio.resample import resample
from tts.base import Synthesizer
from tts.sentences import split_sentences


def speak(synth: Synthesizer, text: str, sample_rate_hz: int) -> Iterator[np.ndarray]:
    """int16 mono audio at `sample_rate_hz`, one piece per sentence (or finer).

    Each sentence is synthesized only when the previous piece has been taken, so the first
    piece comes as soon as the first sentence is ready. Empty text yields nothing.
    """
    for sentence in split_sentences(text):
        for piece in synth.synthesize_stream(sentence):
            if piece.samples.size == 0:
                continue
            samples = piece.samples.astype(np.int16, copy=False)
            yield resample(samples, piece.sample_rate_hz, sample_rate_hz)


LEAD_KEPT_MS = 10
LEAD_QUIET_PEAK = 100
"""Samples within +-LEAD_QUIET_PEAK (-50 dBFS) before a reply's first sound are its leading silence."""


def without_lead(samples: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """The samples from LEAD_KEPT_MS before the first one louder than LEAD_QUIET_PEAK (all of them when
    none is): the 40-60 ms of silence Piper puts before a sentence, which a caller would only wait through
    (empty when the samples are all silence)."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > LEAD_QUIET_PEAK)
    if loud.size == 0:
        return samples[:0]
    return samples[max(0, int(loud[0]) - LEAD_KEPT_MS * sample_rate_hz // 1000):]
