"""What the voice benchmarks measure from the caller's side, whatever the line (SIP in ivr.serve.bench, WebRTC
in ivr.webcall.bench): the questions asked, when the agent's audio counts as speech, when a prompt is over,
the question's own silence trimmed, and the percentiles reported."""

from __future__ import annotations

import numpy as np

SPEECH_RMS = 500.0
"""The agent's audio is speech when a packet's (a frame's) RMS crosses this (int16 scale)."""
QUIET_S = 1.0
"""The agent has finished a prompt after this much quiet following speech."""
QUESTIONS = ("What is my account balance?", "No, that's all, thank you.")
"""A call: hear the greeting and menu out, ask the first, hear the answer out, say the second, hear goodbye."""


def trim_silence(samples: np.ndarray, rate_hz: int = 8000, threshold: float = SPEECH_RMS / 2) -> np.ndarray:
    """The samples from the first to the last 10 ms with speech: the synthesized question's own leading and
    trailing silence would otherwise count as the agent's latency."""
    window = rate_hz // 100
    n = samples.size // window
    if n == 0:
        return samples
    rms = np.sqrt(np.mean(samples[:n * window].astype(np.float64).reshape(n, window) ** 2, axis=1))
    loud = np.flatnonzero(rms >= threshold)
    if loud.size == 0:
        return samples
    return samples[loud[0] * window:(loud[-1] + 1) * window]


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) with linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)
