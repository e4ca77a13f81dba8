"""Small audio helpers shared by the recognizer backends."""

from __future__ import annotations

import numpy as np

from telephony.audio.pcm import clip_int16, to_int16


def mono_int16(samples: np.ndarray) -> np.ndarray:
    """int16 mono from int16/float samples shaped (n,) or (n, channels); channels are averaged."""
    arr = np.asarray(samples)
    if arr.ndim == 2:
        if arr.dtype == np.int16:
            arr = clip_int16(arr.astype(np.int32).mean(axis=1))
        else:
            arr = arr.astype(np.float32).mean(axis=1)
    elif arr.ndim != 1:
        raise ValueError(f"audio must be shaped (n,) or (n, channels), got {arr.shape}")
    if arr.dtype == np.int16:
        return arr
    return to_int16(arr.astype(np.float64))
