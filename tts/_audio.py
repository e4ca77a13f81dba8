"""Small audio helpers shared by the backends."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from telephony.audio.pcm import to_int16
from tts.base import SpeechAudio


def float_to_int16(audio: np.ndarray, peak: float | None = None) -> np.ndarray:
    """Float audio in [-1, 1] as int16; with `peak`, first scaled so its loudest sample is `peak`."""
    samples = np.asarray(audio, dtype=np.float32).reshape(-1)
    if peak is not None and samples.size:
        loudest = float(np.max(np.abs(samples)))
        samples = samples * (peak / loudest) if loudest > 1e-8 else np.zeros_like(samples)
    return to_int16(samples)


def concatenate(pieces: Iterable[SpeechAudio], sample_rate_hz: int) -> SpeechAudio:
    """Pieces at one rate joined into one SpeechAudio (empty when there are none)."""
    arrays = []
    for piece in pieces:
        if piece.sample_rate_hz != sample_rate_hz:
            raise ValueError(f"expected {sample_rate_hz} Hz audio, got {piece.sample_rate_hz} Hz")
        arrays.append(piece.samples.astype(np.int16, copy=False))
    samples = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int16)
    return SpeechAudio(samples, sample_rate_hz)
