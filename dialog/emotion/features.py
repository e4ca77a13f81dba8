"""Prosodic and spectral features of one caller turn, computed in the telephone band (8 kHz).

Every input is brought to 8 kHz first (a 16 kHz turn from the session, an 8 kHz line recording, a
44.1 kHz file) and low-passed at 3.5 kHz (what a phone line carries), so the model sees the same band
in training and on calls. The low-pass matters: a call's turn reaches the model at 16 kHz (the
session's rate), and the resampler's anti-alias filter there removes 3.8-4 kHz, which an 8 kHz
training clip keeps; feature version 2 without the low-pass put the same clip 2.7 standard
deviations (Mahalanobis, per feature) from the training speakers through the call path and 1.1
read directly, mostly through the level of unvoiced frames. The features are level-
independent on purpose: a phone line's gain says nothing about the caller's mood, so loudness enters
only as dynamics (spread, peaks above the median), never as an absolute level.

Cost: one mel spectrogram (MFCCs, spectral shape) and one YIN pitch track, both on 32 ms frames with
a 16 ms hop; about 2-3 ms per second of audio on one core.

Version 2 appends to the first 111 features (BASE_FEATURES, unchanged, so a model may use only them):
pitch percentiles, slope and the end of the turn against its middle, jitter and shimmer proxies,
voiced share of speech, periodicity at the pitch period (a harmonics-to-noise proxy), energy
percentiles and slope, spectral flux, 50%/95% roll-off, spectral contrast, band shares and slope,
and MFCCs normalised within the turn (mean and variance over its own speech frames: percentiles, and
delta/delta-delta spread relative to the turn's own range). Everything is computed on the one turn.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

FEATURE_RATE_HZ = 8000
Resampler = Callable[[np.ndarray, int, int], np.ndarray]
"""(samples, from_hz, to_hz) -> samples: the caller's resampler (dialog imports no audio code)."""
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
BAND_TOP_HZ = 3500.0
"""Low-pass of every input at 8 kHz (feature version 3): the same band whatever the input's rate."""
FEATURE_VERSION = "tel8k-v3"
"""What these features are; a model records the version it was trained on and refuses another
(AcousticEmotionModel), and the feature cache is keyed by it. v2: 210 features; v3: the same, every
input low-passed at BAND_TOP_HZ after 8 kHz. Bump it with any change to what `extract` returns."""
BASE_FEATURES = 111
"""The first features (version 1); the rest (version 2) follow them."""

_STAT_NAMES = ("mean", "std")


def _stats(values: np.ndarray) -> list[float]:
    if values.size == 0:
        return [0.0, 0.0]
    return [float(values.mean()), float(values.std())]


def _quantiles(values: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    if values.size == 0:
        return [0.0] * len(qs)
    return [float(v) for v in np.quantile(values, qs)]


def to_feature_rate(samples: np.ndarray, sample_rate_hz: int, resample: Resampler | None = None) -> np.ndarray:
    """float32 mono at 8 kHz, low-passed at BAND_TOP_HZ, scaled to a peak of 1 (the level of a line says
    nothing). Audio at another rate needs `resample`."""
    from scipy.signal import sosfiltfilt

    audio = np.asarray(samples)
    audio = audio.astype(np.float32) / 32768.0 if audio.dtype == np.int16 else audio.astype(np.float32)
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    if sample_rate_hz != FEATURE_RATE_HZ:
        if resample is None:
            raise ValueError(f"{sample_rate_hz} Hz audio needs a resampler to {FEATURE_RATE_HZ} Hz")
        audio = resample(audio, sample_rate_hz, FEATURE_RATE_HZ)
    audio = audio.astype(np.float64)
    if audio.size > 64:  # sosfiltfilt pads by 3 * (2 * sections + 1) samples
        audio = sosfiltfilt(_BAND_SOS, audio)
    audio = audio.astype(np.float32)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return audio / peak if peak > 1e-6 else audio


def _band_filter() -> np.ndarray:
    from scipy.signal import butter

    return np.asarray(butter(10, BAND_TOP_HZ, fs=FEATURE_RATE_HZ, output="sos"))


_BAND_SOS = _band_filter()


def _runs(mask: np.ndarray) -> np.ndarray:
    """Lengths of the runs of True in a boolean array."""
    if not mask.any():
        return np.zeros(0)
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return (edges[1::2] - edges[0::2]).astype(np.float64)


def extract(samples: np.ndarray, sample_rate_hz: int, resample: Resampler | None = None) -> np.ndarray:
    """The feature vector (float32, length `feature_count()`) of one turn (another rate than 8 kHz needs
    `resample`)."""
    import librosa

    audio = to_feature_rate(samples, sample_rate_hz, resample)
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
    if len(feats) != BASE_FEATURES:
        raise AssertionError(f"{len(feats)} base features, expected {BASE_FEATURES}")
    feats += _extra(audio, spec, energy_db, active, f0, voiced, semitones, mfcc, d1, d2, freqs, norm)
    return np.nan_to_num(np.asarray(feats, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)


def _slope(values: np.ndarray, times: np.ndarray) -> float:
    """Least-squares slope of values over times (per second); 0 with fewer than 3 points."""
    if values.size < 3:
        return 0.0
    t = times - times.mean()
    denom = float((t * t).sum())
    return float((t * (values - values.mean())).sum() / denom) if denom > 0 else 0.0


def _periodicity(audio: np.ndarray, f0: np.ndarray, voiced: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation at the pitch period in each voiced frame (a harmonics-to-noise proxy)."""
    idx = np.flatnonzero(voiced)
    if idx.size == 0:
        return np.zeros(0)
    padded = np.pad(audio, (PITCH_FRAME_SAMPLES // 2, PITCH_FRAME_SAMPLES // 2))
    frames = np.lib.stride_tricks.sliding_window_view(padded, PITCH_FRAME_SAMPLES)[::HOP_SAMPLES]
    idx = idx[idx < frames.shape[0]]
    out = np.empty(idx.size)
    for j, i in enumerate(idx):
        frame = frames[i]
        lag = int(round(FEATURE_RATE_HZ / f0[i]))
        a, b = frame[:-lag], frame[lag:]
        denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
        out[j] = float((a * b).sum()) / denom if denom > 1e-12 else 0.0
    return out


def _extra(audio: np.ndarray, spec: np.ndarray, energy_db: np.ndarray, active: np.ndarray, f0: np.ndarray,
           voiced: np.ndarray, semitones: np.ndarray, mfcc: np.ndarray, d1: np.ndarray, d2: np.ndarray,
           freqs: np.ndarray, norm: np.ndarray) -> list[float]:
    """Statistics added in feature version 2 (all computed on this turn alone)."""
    import librosa

    hop_s = HOP_SAMPLES / FEATURE_RATE_HZ
    n = min(active.size, voiced.size)
    act, voi = active[:n], voiced[:n]
    times = np.arange(n) * hop_s
    feats: list[float] = []
    # pitch contour: percentiles, slope over the turn, the last voiced third against the turn
    feats += _quantiles(semitones, (0.1, 0.25, 0.75, 0.9))
    feats += [_slope(semitones, times[voi]) if semitones.size else 0.0]
    third = max(1, semitones.size // 3)
    feats += [float(semitones[-third:].mean() - semitones.mean()) if semitones.size else 0.0]
    # jitter and shimmer proxies: frame-to-frame pitch (%) and level (dB) changes inside voiced runs
    both = voi[1:] & voi[:-1]
    jitter = np.abs(np.diff(f0[:n]))[both] / f0[:n][1:][both] if both.any() else np.zeros(0)
    shimmer = np.abs(np.diff(energy_db[:n]))[both] if both.any() else np.zeros(0)
    feats += _quantiles(jitter, (0.5, 0.9)) + _quantiles(shimmer, (0.5, 0.9))
    feats += [float(voi.sum() / max(act.sum(), 1))]
    feats += _quantiles(_periodicity(audio, f0[:n], voi), (0.25, 0.5, 0.75))
    # energy contour: percentiles, slope, voiced against unvoiced speech level
    active_db = energy_db[active] - np.median(energy_db[active])
    feats += _quantiles(active_db, (0.25, 0.75)) + [_slope(active_db, np.flatnonzero(active) * hop_s)]
    unvoiced = act & ~voi
    feats += [float(energy_db[:n][voi].mean() - energy_db[:n][unvoiced].mean())
              if voi.any() and unvoiced.any() else 0.0]
    # spectral flux, roll-offs, contrast, band shares, slope (8 kHz band)
    logspec = np.log(spec + 1e-10)
    flux = np.sqrt((np.maximum(np.diff(logspec, axis=1), 0.0) ** 2).mean(axis=0))
    flux_sel = flux[active[1: flux.size + 1]]
    feats += _stats(flux_sel) + _quantiles(flux_sel, (0.9,))
    cumulative = np.cumsum(norm, axis=0)
    for share in (0.5, 0.95):
        track = freqs[np.argmax(cumulative >= share, axis=0)][active]
        feats += _stats(track)
    contrast = librosa.feature.spectral_contrast(S=np.sqrt(spec), sr=FEATURE_RATE_HZ, n_fft=FRAME_SAMPLES,
                                                 fmin=150.0, n_bands=4)[:, active]
    feats += [float(v) for v in contrast.mean(axis=1)] + [float(v) for v in contrast.std(axis=1)]
    edges = (0.0, 500.0, 1000.0, 2000.0, 3000.0, FEATURE_RATE_HZ / 2 + 1)
    total = spec.sum(axis=0) + 1e-10
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        band = np.log10(spec[(freqs >= lo) & (freqs < hi)].sum(axis=0) / total + 1e-8)[active]
        feats += _stats(band)
    khz = freqs / 1000.0 - (freqs / 1000.0).mean()
    spectral_slope = (khz @ logspec[:, active]) / float((khz * khz).sum())
    feats += _stats(spectral_slope)
    # MFCCs normalised within the turn (mean and variance over its speech frames): shape of the
    # distribution and dynamics relative to the turn's own range
    sel = mfcc[:, active[: mfcc.shape[1]]]
    spread = sel.std(axis=1, keepdims=True) + 1e-6
    z = (sel - sel.mean(axis=1, keepdims=True)) / spread
    feats += [float(v) for v in np.quantile(z, 0.1, axis=1)] + [float(v) for v in np.quantile(z, 0.9, axis=1)]
    feats += [float(v) for v in (d1[:, active[: d1.shape[1]]].std(axis=1) / spread[:, 0])]
    feats += [float(v) for v in (d2[:, active[: d2.shape[1]]].std(axis=1) / spread[:, 0])]
    return feats


def feature_count() -> int:
    return int(extract(np.zeros(FEATURE_RATE_HZ, dtype=np.float32), FEATURE_RATE_HZ).size)
