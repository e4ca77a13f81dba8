"""A simulated telephone line for test callers: the band of a phone, G.711, and noise at a set SNR.

`apply_line` turns a caller's clean utterance into what the far end of a phone line receives:
the speech and, when asked, noise, both limited to the telephone band (300-3400 Hz), then one trip
through a G.711 codec. The noise is mixed at `noise_snr_db` below the utterance's active speech
level (pauses do not count), from a generator seeded by the line's seed and a salt (the text or file
the caller speaks), so the same utterance on the same line gives the same samples in every run.
With noise, the clip is padded with noise before and after the speech, so the voice activity
detector meets the noise where it decides that speech starts and stops; between utterances the line
is silent, as on a trunk that suppresses silence.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from telephony.audio.g711 import roundtrip
from telephony.audio.pcm import clip_int16

BANDS = ("telephone", "wide")
CODECS = ("pcmu", "pcma", "none")
NOISES = ("white", "pink")
TELEPHONE_BAND_HZ = (300.0, 3400.0)
FILTER_ORDER = 4
NOISE_LEAD_MS = 300
"""Noise before the speech of a noisy clip."""
NOISE_TRAIL_MS = 700
"""Noise after the speech of a noisy clip: longer than the end-of-turn silence (500 ms by default)."""
ACTIVE_FRAME_MS = 20
ACTIVE_FLOOR_DB = 40.0
"""Frames this far below the loudest frame are pauses: they do not count in the speech level."""


@dataclass(frozen=True)
class LineSpec:
    """How a simulated caller's line sounds."""

    band: str = "telephone"
    """telephone: 300-3400 Hz band-pass; wide: no band limit (beyond the line's sample rate)."""
    codec: str = "pcmu"
    """pcmu (G.711 mu-law), pcma (G.711 A-law) or none."""
    noise_snr_db: float | None = None
    """Speech-to-noise ratio of added noise in dB; None adds no noise."""
    noise: str = "white"
    """white or pink (power falling 3 dB per octave, like room and road noise)."""
    seed: int = 0

    def __post_init__(self) -> None:
        for name, value, allowed in (("band", self.band, BANDS), ("codec", self.codec, CODECS),
                                     ("noise", self.noise, NOISES)):
            if value not in allowed:
                raise ValueError(f"{name} '{value}' is not one of {', '.join(allowed)}")


def apply_line(samples: np.ndarray, rate_hz: int, spec: LineSpec, salt: str = "") -> np.ndarray:
    """int16 mono audio as it arrives over the line at the same rate; deterministic in (samples, spec, salt)."""
    speech = np.asarray(samples, dtype=np.float64)
    if spec.noise_snr_db is not None:
        lead, trail = (np.zeros(rate_hz * ms // 1000) for ms in (NOISE_LEAD_MS, NOISE_TRAIL_MS))
        speech = np.concatenate([lead, band_limit(speech, rate_hz, spec.band), trail])
        rng = np.random.default_rng([spec.seed & 0xFFFFFFFF, zlib.crc32(salt.encode("utf-8"))])
        noise = band_limit(_noise(rng, speech.size, spec.noise), rate_hz, spec.band)
        level = active_power(speech, rate_hz)
        noise_power = float(np.mean(noise ** 2)) if noise.size else 0.0
        if level > 0 and noise_power > 0:
            speech = speech + noise * np.sqrt(level / 10 ** (spec.noise_snr_db / 10) / noise_power)
    else:
        speech = band_limit(speech, rate_hz, spec.band)
    pcm = clip_int16(speech)
    if spec.codec == "none":
        return pcm
    return roundtrip(pcm, spec.codec.upper()).astype(np.int16)


def band_limit(x: np.ndarray, rate_hz: int, band: str) -> np.ndarray:
    """A causal band-pass for the telephone band (as a line filters, with its small delay); wide: as is."""
    if band == "wide" or x.size == 0:
        return x
    from scipy.signal import butter, sosfilt

    low, high = TELEPHONE_BAND_HZ
    sos = butter(FILTER_ORDER, [low, min(high, 0.45 * rate_hz)], btype="bandpass", fs=rate_hz, output="sos")
    return np.asarray(sosfilt(sos, x), dtype=np.float64)


def active_power(x: np.ndarray, rate_hz: int) -> float:
    """Mean power of the frames within ACTIVE_FLOOR_DB of the loudest: the speech level without pauses."""
    frame = max(1, rate_hz * ACTIVE_FRAME_MS // 1000)
    n = x.size // frame
    if n == 0:
        return float(np.mean(x ** 2)) if x.size else 0.0
    powers = np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1)
    loudest = float(powers.max())
    if loudest <= 0:
        return 0.0
    return float(np.mean(powers[powers >= loudest * 10 ** (-ACTIVE_FLOOR_DB / 10)]))


def _noise(rng: np.random.Generator, size: int, color: str) -> np.ndarray:
    white = rng.standard_normal(size)
    if color == "white" or size < 2:
        return white
    spectrum = np.fft.rfft(white)
    freqs = np.arange(spectrum.size, dtype=np.float64)
    spectrum[1:] /= np.sqrt(freqs[1:])
    spectrum[0] = 0.0
    return np.fft.irfft(spectrum, n=size)
