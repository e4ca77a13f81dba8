"""G.711 mu-law and A-law, encode and decode, with numpy tables (no audioop: gone in Python 3.13).

Encoders follow ITU-T G.711 (segment search on the biased magnitude); decoders are 256-entry
tables built from the same definition, so decode(encode(x)) is the standard quantizer.
"""

from __future__ import annotations

import numpy as np

MULAW_BIAS = 0x84
MULAW_CLIP = 32635
ALAW_CLIP = 32635


def _mulaw_decode_table() -> np.ndarray:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + MULAW_BIAS) << exponent) - MULAW_BIAS
    return np.where(sign, -magnitude, magnitude).astype(np.int16)


def _alaw_decode_table() -> np.ndarray:
    codes = np.arange(256, dtype=np.int32) ^ 0x55
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << (exponent - 1))
    return np.where(sign, magnitude, -magnitude).astype(np.int16)


MULAW_DECODE = _mulaw_decode_table()
ALAW_DECODE = _alaw_decode_table()


def _segment(value: np.ndarray, base_shift: int) -> np.ndarray:
    """Index of the highest set bit above base_shift, clipped to 0..7 (the G.711 segment)."""
    seg = np.zeros(value.shape, dtype=np.int32)
    for s in range(1, 8):
        seg = np.where(value >= (1 << (base_shift + s)), s, seg)
    return seg


def mulaw_encode(samples: np.ndarray) -> bytes:
    x = np.asarray(samples, dtype=np.int32)
    sign = np.where(x < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(x), MULAW_CLIP) + MULAW_BIAS
    exponent = _segment(magnitude, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def mulaw_decode(data: bytes) -> np.ndarray:
    return MULAW_DECODE[np.frombuffer(data, dtype=np.uint8)]


def alaw_encode(samples: np.ndarray) -> bytes:
    x = np.asarray(samples, dtype=np.int32)
    sign = np.where(x >= 0, 0x80, 0)
    magnitude = np.minimum(np.where(x < 0, -x - 1, x), ALAW_CLIP)
    exponent = _segment(magnitude, 7)
    exponent = np.where(magnitude < 256, 0, exponent)
    mantissa = np.where(exponent == 0, magnitude >> 4, magnitude >> (exponent + 3)) & 0x0F
    return ((sign | (exponent << 4) | mantissa) ^ 0x55).astype(np.uint8).tobytes()


def alaw_decode(data: bytes) -> np.ndarray:
    return ALAW_DECODE[np.frombuffer(data, dtype=np.uint8)]


CODECS = {"PCMU": (mulaw_encode, mulaw_decode), "PCMA": (alaw_encode, alaw_decode)}


def roundtrip(samples: np.ndarray, codec: str = "PCMU") -> np.ndarray:
    """What a sample stream sounds like after one trip through a G.711 codec."""
    encode, decode = CODECS[codec]
    return decode(encode(samples))
