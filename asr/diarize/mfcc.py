"""Torch-free diarization: WebRTC VAD speech regions, MFCC-statistics embeddings of sliding windows,
agglomerative clustering (cosine, average linkage), then frame labels smoothed into segments.

An i-vector-like recipe without the training: each window is described by the mean and standard
deviation of its frames' MFCCs and deltas, after the whole recording's mean and variance are removed
(so the channel cancels and what is left tells voices apart).
"""

from __future__ import annotations

import librosa
import numpy as np
import webrtcvad
from scipy.ndimage import median_filter
from sklearn.cluster import AgglomerativeClustering

from asr.diarize.base import Diarizer, Segment, merge_segments
from telephony.audio.pcm import to_int16

RATE_HZ = 16000
VAD_FRAME_MS = 30
HOP_S = 0.01
WINDOW_S = 1.5
WINDOW_HOP_S = 0.25
MIN_SPEECH_S = 0.25
MAX_PAUSE_S = 0.3
SMOOTH_S = 0.51
N_MFCC = 20
MAX_CLUSTER_WINDOWS = 4000
"""Windows clustered together at most (about 17 minutes of speech; memory grows with the square)."""
DISTANCE_THRESHOLD = 0.9
"""Cosine distance at which clusters stop merging when the number of speakers is not given."""


def to_float16k(samples: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    audio = np.asarray(samples)
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    audio = audio.astype(np.float32) / 32768.0 if np.issubdtype(audio.dtype, np.integer) else audio.astype(np.float32)
    if sample_rate_hz != RATE_HZ:
        audio = librosa.resample(audio, orig_sr=sample_rate_hz, target_sr=RATE_HZ)
    return audio


def speech_regions(audio: np.ndarray, aggressiveness: int = 2) -> list[tuple[float, float]]:
    """(start_s, end_s) of speech in 16 kHz float audio: WebRTC VAD, short pauses bridged, blips dropped."""
    vad = webrtcvad.Vad(aggressiveness)
    step = RATE_HZ * VAD_FRAME_MS // 1000
    pcm = to_int16(audio).astype("<i2")
    flags = [vad.is_speech(pcm[i:i + step].tobytes(), RATE_HZ) for i in range(0, len(pcm) - step + 1, step)]
    regions: list[tuple[float, float]] = []
    frame_s = VAD_FRAME_MS / 1000
    for i, speech in enumerate(flags):
        if not speech:
            continue
        start, end = i * frame_s, (i + 1) * frame_s
        if regions and start - regions[-1][1] <= MAX_PAUSE_S:
            regions[-1] = (regions[-1][0], end)
        else:
            regions.append((start, end))
    return [r for r in regions if r[1] - r[0] >= MIN_SPEECH_S]


def features(audio: np.ndarray) -> np.ndarray:
    """(frames, 2 * (N_MFCC - 1)) MFCC (c0 left out: loudness) and deltas, mean/variance normalized."""
    mfcc = librosa.feature.mfcc(y=audio, sr=RATE_HZ, n_mfcc=N_MFCC, n_fft=512, hop_length=int(HOP_S * RATE_HZ),
                                win_length=400, n_mels=40, fmin=60, fmax=3800)[1:]
    feats = np.vstack([mfcc, librosa.feature.delta(mfcc)]).T
    return (feats - feats.mean(axis=0)) / (feats.std(axis=0) + 1e-8)


def cluster(emb: np.ndarray, num_speakers: int | None) -> np.ndarray:
    """A speaker label per window embedding (agglomerative, cosine, average linkage).

    The clustering holds every pair of windows in memory, so past MAX_CLUSTER_WINDOWS (a recording of
    hours) it runs on that many windows spread evenly over the recording, and every window then goes to
    the nearest cluster centre (cosine)."""
    if len(emb) == 1 or num_speakers == 1:
        return np.zeros(len(emb), dtype=int)
    sample = np.arange(len(emb))
    if len(emb) > MAX_CLUSTER_WINDOWS:
        sample = np.linspace(0, len(emb) - 1, MAX_CLUSTER_WINDOWS).round().astype(int)
    if num_speakers is not None:
        model = AgglomerativeClustering(n_clusters=min(num_speakers, len(sample)), metric="cosine",
                                        linkage="average")
    else:
        model = AgglomerativeClustering(n_clusters=None, distance_threshold=DISTANCE_THRESHOLD, metric="cosine",
                                        linkage="average")
    labels = np.asarray(model.fit_predict(emb[sample]), dtype=int)
    if len(sample) == len(emb):
        return labels
    unit = emb / (np.linalg.norm(emb, axis=1, keepdims=True) + 1e-12)
    centres = np.stack([unit[sample][labels == k].mean(axis=0) for k in range(int(labels.max()) + 1)])
    centres /= np.linalg.norm(centres, axis=1, keepdims=True) + 1e-12
    return np.asarray((unit @ centres.T).argmax(axis=1), dtype=int)


class MfccDiarizer(Diarizer):
    name = "mfcc"

    def diarize(self, samples: np.ndarray, sample_rate_hz: int, num_speakers: int | None = 2) -> list[Segment]:
        audio = to_float16k(samples, sample_rate_hz)
        regions = speech_regions(audio)
        if not regions:
            return []
        feats = features(audio)
        n_frames = feats.shape[0]
        speech = np.zeros(n_frames, dtype=bool)
        for start, end in regions:
            speech[int(start / HOP_S):min(n_frames, int(end / HOP_S) + 1)] = True
        win, hop = int(WINDOW_S / HOP_S), int(WINDOW_HOP_S / HOP_S)
        windows: list[tuple[int, int]] = []
        for start, end in regions:
            a, b = int(start / HOP_S), min(n_frames, int(end / HOP_S) + 1)
            if b - a <= win:
                windows.append((a, b))
                continue
            windows += [(s, s + win) for s in range(a, b - win + 1, hop)]
            if windows[-1][1] < b:
                windows.append((b - win, b))
        emb = np.array([np.concatenate([feats[a:b][speech[a:b]].mean(axis=0), feats[a:b][speech[a:b]].std(axis=0)])
                        for a, b in windows])
        emb = (emb - emb.mean(axis=0)) / (emb.std(axis=0) + 1e-8)
        labels = cluster(emb, num_speakers)
        n_labels = int(labels.max()) + 1
        votes = np.zeros((n_labels, n_frames))
        for (a, b), label in zip(windows, labels, strict=True):
            votes[label, a:b] += 1.0
        frame_label = votes.argmax(axis=0)
        frame_label = median_filter(frame_label, size=int(SMOOTH_S / HOP_S), mode="nearest")
        segments: list[Segment] = []
        for start, end in regions:
            a, b = int(start / HOP_S), min(n_frames, int(end / HOP_S) + 1)
            i = a
            while i < b:
                j = i
                while j < b and frame_label[j] == frame_label[i]:
                    j += 1
                segments.append(Segment(round(i * HOP_S, 2), round(min(j * HOP_S, end), 2), f"S{frame_label[i]}"))
                i = j
        return merge_segments(segments, max_gap_s=0.0)
