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
