"""Features of many clips, through the telephone band, in parallel, cached in a .npz under a work dir.

Each clip is read, brought to 8 kHz, passed once through G.711 (what a phone line does to it), then
featurized. The plain variant is mu-law; the augmented variants (training only) use A-law and/or a
random gain and a little white noise before the codec, with a seed fixed per clip and variant. The
cache is keyed by the clip's path, size and mtime, by FEATURE_VERSION (dialog.emotion.features) and
by the variant, so a changed file or a changed extractor is recomputed and nothing else is (a data
folder copied afresh has new mtimes: its clips are featurized again).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from dialog.emotion.features import FEATURE_VERSION
from telephony.audio.pcm import clip_int16

VARIANTS: dict[str, tuple[str, bool]] = {
    "mulaw": ("PCMU", False),
    "alaw": ("PCMA", False),
    "mulaw-noisy": ("PCMU", True),
    "alaw-noisy": ("PCMA", True),
}
"""Variant -> (G.711 codec, gain and noise perturbation)."""
GAIN_DB = (-12.0, 3.0)
SNR_DB = (20.0, 35.0)
"""Range of the noise's level under the clip's own RMS (silences included, so speech is cleaner)."""
TELEPHONE_RATE_HZ = 8000


def telephone_band(samples: np.ndarray, sample_rate_hz: int, codec: str = "PCMU") -> np.ndarray:
    """int16 at 8 kHz after one G.711 round trip."""
    from telephony.audio.g711 import roundtrip
    from telephony.audio.resample import resample

    pcm = resample(np.asarray(samples, dtype=np.int16), sample_rate_hz, TELEPHONE_RATE_HZ)
    return roundtrip(pcm, codec)


def perturb(pcm: np.ndarray, seed: int) -> np.ndarray:
    """int16 with a random gain and white noise at a random SNR (before the codec)."""
    rng = np.random.default_rng(seed)
    audio = pcm.astype(np.float64) * 10.0 ** (rng.uniform(*GAIN_DB) / 20.0)
    rms = float(np.sqrt(np.mean(audio**2))) if audio.size else 0.0
    audio += rng.standard_normal(audio.size) * rms * 10.0 ** (-rng.uniform(*SNR_DB) / 20.0)
    return clip_int16(audio)


def clip_features(path: str, variant: str = "mulaw") -> np.ndarray:
    import zlib

    from dialog.emotion.features import extract
    from telephony.audio.audiofile import read_audio
    from telephony.audio.g711 import roundtrip
    from telephony.audio.resample import resample

    codec, noisy = VARIANTS[variant]
    clip = read_audio(path)
    pcm = resample(np.asarray(clip.mono(), dtype=np.int16), clip.sample_rate_hz, TELEPHONE_RATE_HZ)
    if noisy:
        pcm = perturb(pcm, zlib.crc32(f"{Path(path).name}|{variant}".encode()))
    return extract(roundtrip(pcm, codec), TELEPHONE_RATE_HZ)


def _key(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{int(stat.st_mtime)}"


def featurize(paths: Sequence[Path], work_dir: Path, jobs: int | None = None,
              progress: bool = True, variant: str = "mulaw") -> np.ndarray:
    """A (len(paths), n_features) float32 matrix; computed clips are kept in work_dir."""
    from functools import partial

    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: one of {', '.join(VARIANTS)}")
    work_dir.mkdir(parents=True, exist_ok=True)
    cache_file = work_dir / f"acoustic-features-{FEATURE_VERSION}-{variant}.npz"
    cache: dict[str, np.ndarray] = {}
    if cache_file.is_file():
        with np.load(cache_file) as data:
            cache = dict(zip(data["keys"].tolist(), data["features"], strict=True))
    keys = [_key(p) for p in paths]
    todo = sorted({k: str(p) for k, p in zip(keys, paths, strict=True) if k not in cache}.items())
    if todo:
        jobs = jobs or max(1, min(os.cpu_count() or 1, 8))
        if progress:
            print(f"extracting {variant} features of {len(todo)} clips on {jobs} processes "
                  f"(cached in {cache_file})", flush=True)
        with ProcessPoolExecutor(jobs) as pool:
            for i, ((key, _), feats) in enumerate(zip(todo, pool.map(partial(clip_features, variant=variant),
                                                                     [p for _, p in todo],
                                                                     chunksize=16), strict=True)):
                cache[key] = feats
                if progress and (i + 1) % 500 == 0:
                    print(f"  {i + 1}/{len(todo)}", flush=True)
        tmp = cache_file.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.array(list(cache)), features=np.stack(list(cache.values())))
        tmp.replace(cache_file)
    return np.stack([cache[k] for k in keys]).astype(np.float32)
