"""The one int16 <-> float PCM convention of the project.

In: float = int16 / 32768, so int16 maps onto [-1, 1). Out: float * 32768, rounded half to even and
clipped to int16, no dither (so a float signal that came from int16 goes back to the same samples).
"""

from __future__ import annotations

import numpy as np

INT16_SCALE = 32768.0


def to_float32(samples: np.ndarray) -> np.ndarray:
    """int16 samples as float32 in [-1, 1); float input passes through as float32."""
    if samples.dtype == np.int16:
        return samples.astype(np.float32) / np.float32(INT16_SCALE)
    return np.asarray(samples, dtype=np.float32)


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1) back to int16 (int16 input passes through). float64 input is scaled and
    rounded in float64, anything else in float32."""
    values = np.asarray(samples)
    if values.dtype == np.int16:
        return values
    values = values if values.dtype == np.float64 else values.astype(np.float32)
    return clip_int16(values * values.dtype.type(INT16_SCALE))


def clip_int16(values: np.ndarray) -> np.ndarray:
    """Values already on the int16 scale (a mix, a gain) rounded half to even and clipped to int16."""
    return np.clip(np.round(values), -32768, 32767).astype(np.int16)
