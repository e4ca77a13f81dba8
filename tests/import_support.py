"""Helpers for the console's import tests (no tests here): a recognizer and a diarizer that need no model,
and a mono recording with an optional date tag."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from asr.base import SpeechRecognizer, Transcript, Word
from asr.diarize.base import Diarizer, Segment
from ivr.importer import import_recording
from ivr.store import Store

RATE_HZ = 8000


class EchoRecognizer(SpeechRecognizer):
    name = "echo"

    def stream(self, sample_rate_hz, options=None):  # pragma: no cover - not used
        raise NotImplementedError

    def transcribe(self, samples, sample_rate_hz, options=None):
        return Transcript("hello there", 0.9, (Word("hello", 0.0, 0.3, 0.9),))


class HalvesDiarizer(Diarizer):
    """First half one speaker, second half the other."""

    name = "halves"

    def diarize(self, samples, sample_rate_hz, num_speakers=2):
        half = len(samples) / sample_rate_hz / 2
        return [Segment(0.0, half, "A"), Segment(half, 2 * half, "B")]


def mono_wav(path: Path, seconds: float = 2.0, date: str | None = None) -> Path:
    t = np.arange(int(seconds * RATE_HZ)) / RATE_HZ
    pcm = (0.4 * np.sin(2 * np.pi * 300 * t) * 32767).astype(np.int16)
    with sf.SoundFile(str(path), "w", RATE_HZ, 1, "PCM_16", format="WAV") as f:
        if date:
            f.date = date
        f.write(pcm)
    return path


def import_mono(store: Store, path: Path) -> str:
    call_id, how, _turns = import_recording(store, path, EchoRecognizer(), HalvesDiarizer())
    assert how == "halves"
    return call_id
