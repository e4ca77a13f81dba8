"""Reading and writing audio files, with one-line errors for what cannot be read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from telephony.audio.frame import to_pcm16
from telephony.audio.pcm import clip_int16
from telephony.errors import AudioFileError


@dataclass(frozen=True)
class AudioClip:
    """int16 samples shaped (n,) for mono or (n, channels): audio read from a file (`read_audio`), or
    synthesized speech (`tts.SpeechAudio`, always mono)."""

    samples: np.ndarray
    sample_rate_hz: int

    @property
    def channels(self) -> int:
        return 1 if self.samples.ndim == 1 else int(self.samples.shape[1])

    @property
    def duration_s(self) -> float:
        return self.samples.shape[0] / self.sample_rate_hz

    def mono(self) -> np.ndarray:
        """The channels mixed down to one (int16)."""
        if self.samples.ndim == 1:
            return self.samples
        mixed = self.samples.astype(np.int32).mean(axis=1)
        return clip_int16(mixed)

    def channel(self, index: int) -> np.ndarray:
        return self.samples if self.samples.ndim == 1 else self.samples[:, index]


def read_audio(path: str | Path) -> AudioClip:
    """WAV, FLAC, OGG, MP3 (anything libsndfile reads), any rate, any channel count, as int16."""
    p = Path(path)
    if not p.exists():
        raise AudioFileError(f"{p}: no such file")
    if p.is_dir():
        raise AudioFileError(f"{p}: is a directory, not an audio file")
    if p.stat().st_size == 0:
        raise AudioFileError(f"{p}: the file is empty")
    try:
        data, rate = sf.read(str(p), dtype="int16", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as exc:
        reason = str(exc).split(":")[-1].strip() or "unknown format"
        raise AudioFileError(f"{p}: not a readable audio file ({reason})") from None
    if data.shape[0] == 0:
        raise AudioFileError(f"{p}: the file holds no audio samples")
    samples = data[:, 0].copy() if data.shape[1] == 1 else data
    return AudioClip(samples, int(rate))


def write_wav(path: str | Path, samples: np.ndarray, sample_rate_hz: int) -> Path:
    """PCM16 WAV; samples shaped (n,) or (n, channels), int16 or float in [-1, 1]."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if samples.dtype != np.int16:
        samples = np.frombuffer(to_pcm16(samples), dtype="<i2").reshape(samples.shape)
    sf.write(str(p), samples, sample_rate_hz, subtype="PCM_16", format="WAV")
    return p
