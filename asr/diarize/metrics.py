"""Diarization error rate, computed on a 10 ms grid.

DER = (missed speech + false alarm + speaker confusion) / total reference speech, after the best
one-to-one mapping of hypothesis to reference speakers (Hungarian), with a no-score collar of
`collar_s` on each side of every reference segment boundary (NIST convention: 0.25 s means +-250 ms).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from asr.diarize.base import Segment

STEP_S = 0.01


@dataclass(frozen=True)
class DerResult:
    der: float
    missed_s: float
    false_alarm_s: float
    confusion_s: float
    total_s: float


def _grid(segments: list[Segment], speakers: list[str], n: int) -> np.ndarray:
    grid = np.zeros((len(speakers), n), dtype=bool)
    for seg in segments:
        a, b = int(round(seg.start_s / STEP_S)), int(round(seg.end_s / STEP_S))
        grid[speakers.index(seg.speaker), max(0, a):min(n, b)] = True
    return grid


def diarization_error_rate(reference: list[Segment], hypothesis: list[Segment], collar_s: float = 0.25) -> DerResult:
    end = max([s.end_s for s in reference + hypothesis], default=0.0)
    n = int(np.ceil(end / STEP_S)) + 1
    ref_speakers = sorted({s.speaker for s in reference})
    hyp_speakers = sorted({s.speaker for s in hypothesis})
    ref = _grid(reference, ref_speakers, n)
    hyp = _grid(hypothesis, hyp_speakers, n)
    scored = np.ones(n, dtype=bool)
    c = int(round(collar_s / STEP_S))
    for seg in reference:
        for t in (seg.start_s, seg.end_s):
            i = int(round(t / STEP_S))
            scored[max(0, i - c):min(n, i + c)] = False
    ref, hyp = ref[:, scored], hyp[:, scored]
    overlap = ref.astype(np.int64) @ hyp.T.astype(np.int64)  # frames where ref i and hyp j both speak
    mapped = np.zeros(ref.shape[1], dtype=np.int64)
    if overlap.size:
        rows, cols = linear_sum_assignment(-overlap)
        for i, j in zip(rows, cols, strict=True):
            mapped += (ref[i] & hyp[j]).astype(np.int64)
    n_ref, n_hyp = ref.sum(axis=0), hyp.sum(axis=0)
    missed = np.maximum(0, n_ref - n_hyp).sum()
    false_alarm = np.maximum(0, n_hyp - n_ref).sum()
    confusion = (np.minimum(n_ref, n_hyp) - mapped).sum()
    total = n_ref.sum()
    der = float((missed + false_alarm + confusion) / total) if total else 0.0
    return DerResult(der, missed * STEP_S, false_alarm * STEP_S, confusion * STEP_S, total * STEP_S)
