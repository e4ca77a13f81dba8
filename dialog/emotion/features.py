"""Prosodic and spectral features of one caller turn, computed in the telephone band (8 kHz).

Every input is brought to 8 kHz first (a 16 kHz turn from the session, an 8 kHz line recording, a
44.1 kHz file), so the model sees the same band in training and on calls. The features are level-
independent on purpose: a phone line's gain says nothing about the caller's mood, so loudness enters
only as dynamics (spread, peaks above the median), never as an absolute level.

Cost: one mel spectrogram (MFCCs, spectral shape) and one YIN pitch track, both on 32 ms frames with
a 16 ms hop; about 3-5 ms per second of audio on one core.
"""

from __future__ import annotations

import numpy as np

FEATURE_RATE_HZ = 8000
FRAME_SAMPLES = 256
"""32 ms analysis frames at 8 kHz."""
HOP_SAMPLES = 128
"""16 ms hop."""
PITCH_FRAME_SAMPLES = 512
"""64 ms frames for YIN: two periods of a 60 Hz voice."""
PITCH_MIN_HZ = 60.0
PITCH_MAX_HZ = 400.0
N_MELS = 32
N_MFCC = 13
ACTIVE_RANGE_DB = 35.0
"""Frames within this many dB of the turn's loudest frame count as speech."""
MIN_SAMPLES = FEATURE_RATE_HZ // 4

_STAT_NAMES = ("mean", "std")


def _stats(values: np.ndarray) -> list[float]:
    if values.size == 0:
        return [0.0, 0.0]
    return [float(values.mean()), float(values.std())]


def _quantiles(values: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    if values.size == 0:
        return [0.0] * len(qs)
    return [float(v) for v in np.quantile(values, qs)]


def to_feature_rate(samples: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """float32 mono at 8 kHz, scaled to a peak of 1 (the level of a line says nothing)."""
    from ivr.frame import to_float32
    from ivr.resample import resample

    audio = to_float32(np.asarray(samples))
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    audio = resample(audio, sample_rate_hz, FEATURE_RATE_HZ).astype(np.float32)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return audio / peak if peak > 1e-6 else audio


def _runs(mask: np.ndarray) -> np.ndarray:
    """Lengths of the runs of True in a boolean array."""
    if not mask.any():
        return np.zeros(0)
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return (edges[1::2] - edges[0::2]).astype(np.float64)


def extract(samples: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """The feature vector (float32, length `feature_count()`) of one turn at any rate."""
    import librosa

    audio = to_feature_rate(samples, sample_rate_hz)
    if audio.size < MIN_SAMPLES:
        audio = np.pad(audio, (0, MIN_SAMPLES - audio.size))
    spec = np.abs(librosa.stft(audio, n_fft=FRAME_SAMPLES, hop_length=HOP_SAMPLES, center=True)) ** 2
    frame_energy = spec.sum(axis=0) + 1e-10
    energy_db = 10.0 * np.log10(frame_energy)
    active = energy_db >= energy_db.max() - ACTIVE_RANGE_DB
    mel = librosa.feature.melspectrogram(S=spec, sr=FEATURE_RATE_HZ, n_mels=N_MELS, fmin=60.0,
                                         fmax=FEATURE_RATE_HZ / 2)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel + 1e-10), n_mfcc=N_MFCC)
    d1 = librosa.feature.delta(mfcc, width=5, mode="nearest")
    d2 = librosa.feature.delta(mfcc, order=2, width=5, mode="nearest")
    f0 = librosa.yin(audio, fmin=PITCH_MIN_HZ, fmax=PITCH_MAX_HZ, sr=FEATURE_RATE_HZ,
                     frame_length=PITCH_FRAME_SAMPLES, hop_length=HOP_SAMPLES, center=True)
    n = min(f0.size, active.size)
    f0, active_p = f0[:n], active[:n]
    # YIN answers in every frame; voiced = loud enough, in range, and stable against its neighbours
    smooth = np.abs(np.diff(np.log(f0), prepend=np.log(f0[0])))
    voiced = active_p & (f0 > PITCH_MIN_HZ * 1.05) & (f0 < PITCH_MAX_HZ * 0.95) & (smooth < 0.12)
    log_f0 = np.log2(f0[voiced]) if voiced.any() else np.zeros(0)
    semitones = 12.0 * (log_f0 - np.median(log_f0)) if log_f0.size else log_f0
    pitch_delta = np.abs(np.diff(12.0 * np.log2(f0)))[voiced[1:] & voiced[:-1]]

    active_db = energy_db[active] - np.median(energy_db[active])
    env = energy_db - energy_db.max()
    peaks = np.flatnonzero((env[1:-1] > env[:-2]) & (env[1:-1] >= env[2:]) & (env[1:-1] > -25.0))
    duration_s = max(active.sum() * HOP_SAMPLES / FEATURE_RATE_HZ, 0.1)
    voiced_runs = _runs(voiced) * HOP_SAMPLES / FEATURE_RATE_HZ

    freqs = librosa.fft_frequencies(sr=FEATURE_RATE_HZ, n_fft=FRAME_SAMPLES)
    norm = spec / frame_energy
    centroid = (freqs[:, None] * norm).sum(axis=0)
    bandwidth = np.sqrt((((freqs[:, None] - centroid) ** 2) * norm).sum(axis=0))
    cumulative = np.cumsum(norm, axis=0)
    rolloff = freqs[np.argmax(cumulative >= 0.85, axis=0)]
    flatness = np.exp(np.log(spec + 1e-10).mean(axis=0)) / (spec.mean(axis=0) + 1e-10)
    low = spec[freqs < 1000].sum(axis=0) / frame_energy
    zcr = librosa.feature.zero_crossing_rate(audio, frame_length=FRAME_SAMPLES, hop_length=HOP_SAMPLES)[0]

    feats: list[float] = []
    feats += _stats(log_f0) + _quantiles(semitones, (0.05, 0.5, 0.95))
    feats += [float(semitones.max() - semitones.min()) if semitones.size else 0.0]
    feats += _stats(pitch_delta) + [float(voiced.mean())]
    feats += _stats(active_db) + _quantiles(active_db, (0.1, 0.9)) + [float(active_db.max())]
    feats += _stats(np.diff(energy_db[active]) if active.sum() > 1 else np.zeros(0))
    feats += [len(peaks) / duration_s, float(active.mean()), len(voiced_runs) / duration_s,
              *_stats(voiced_runs)]
    for block in (mfcc, d1, d2):
        sel = block[:, active[: block.shape[1]]]
        feats += [float(v) for v in sel.mean(axis=1)] + [float(v) for v in sel.std(axis=1)]
    for track in (centroid, bandwidth, rolloff, flatness, low, zcr):
        feats += _stats(track[: active.size][active[: track.size]])
    return np.nan_to_num(np.asarray(feats, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)


def feature_count() -> int:
    return int(extract(np.zeros(FEATURE_RATE_HZ, dtype=np.float32), FEATURE_RATE_HZ).size)
