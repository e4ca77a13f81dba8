"""Features of many clips, through the telephone band, in parallel, cached in a .npz under a work dir.

Each clip is read, brought to 8 kHz, passed once through G.711 mu-law (what a phone line does to
it), then featurized. The cache is keyed by the clip's path, size and mtime and by FEATURE_VERSION,
so a changed file or a changed extractor is recomputed and nothing else is.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

FEATURE_VERSION = "tel8k-v1"
TELEPHONE_RATE_HZ = 8000


def telephone_band(samples: np.ndarray, sample_rate_hz: int, codec: str = "PCMU") -> np.ndarray:
    """int16 at 8 kHz after one G.711 round trip."""
    from ivr.resample import resample
    from telephony.g711 import roundtrip

    pcm = resample(np.asarray(samples, dtype=np.int16), sample_rate_hz, TELEPHONE_RATE_HZ)
    return roundtrip(pcm, codec)


def clip_features(path: str) -> np.ndarray:
    from dialog.emotion.features import extract
    from ivr.audiofile import read_audio

    clip = read_audio(path)
    return extract(telephone_band(clip.mono(), clip.sample_rate_hz), TELEPHONE_RATE_HZ)


def _key(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{int(stat.st_mtime)}"


def featurize(paths: Sequence[Path], work_dir: Path, jobs: int | None = None,
              progress: bool = True) -> np.ndarray:
    """A (len(paths), n_features) float32 matrix; computed clips are kept in work_dir."""
    work_dir.mkdir(parents=True, exist_ok=True)
    cache_file = work_dir / f"acoustic-features-{FEATURE_VERSION}.npz"
    cache: dict[str, np.ndarray] = {}
    if cache_file.is_file():
        with np.load(cache_file) as data:
            cache = dict(zip(data["keys"].tolist(), data["features"], strict=True))
    keys = [_key(p) for p in paths]
    todo = sorted({k: str(p) for k, p in zip(keys, paths, strict=True) if k not in cache}.items())
    if todo:
        jobs = jobs or max(1, min(os.cpu_count() or 1, 8))
        if progress:
            print(f"extracting features of {len(todo)} clips on {jobs} processes "
                  f"(cached in {cache_file})", flush=True)
        with ProcessPoolExecutor(jobs) as pool:
            for i, ((key, _), feats) in enumerate(zip(todo, pool.map(clip_features, [p for _, p in todo],
                                                                     chunksize=16), strict=True)):
                cache[key] = feats
                if progress and (i + 1) % 500 == 0:
                    print(f"  {i + 1}/{len(todo)}", flush=True)
        tmp = cache_file.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.array(list(cache)), features=np.stack(list(cache.values())))
        tmp.replace(cache_file)
    return np.stack([cache[k] for k in keys]).astype(np.float32)
