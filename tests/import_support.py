"""Helpers for the console's import tests (no tests here): a mono recording with an optional date tag, and
its import with the model-free recognizer and diarizer of tests.fakes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from ivr.importer import import_recording
from ivr.store import Store
from tests.fakes import CannedRecognizer, HalvesDiarizer

RATE_HZ = 8000


def mono_wav(path: Path, seconds: float = 2.0, date: str | None = None) -> Path:
    t = np.arange(int(seconds * RATE_HZ)) / RATE_HZ
    pcm = (0.4 * np.sin(2 * np.pi * 300 * t) * 32767).astype(np.int16)
    with sf.SoundFile(str(path), "w", RATE_HZ, 1, "PCM_16", format="WAV") as f:
        if date:
            f.date = date
        f.write(pcm)
    return path


def import_mono(store: Store, path: Path) -> str:
    call_id, how, _turns = import_recording(store, path, CannedRecognizer(), HalvesDiarizer())
    assert how == "halves"
    return call_id
