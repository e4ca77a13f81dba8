"""A two-speaker conversation built from real speech in ../shared/data with known turn boundaries
(no tests here): speaker A and speaker B take turns of one to three utterances each."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np

from asr.diarize import Segment

RATE_HZ = 16000


def _clips(folder: Path, pattern: str, count: int) -> list[np.ndarray]:
    clips = []
    for path in sorted(folder.glob(pattern))[:count]:
        audio, _ = librosa.load(path, sr=RATE_HZ, mono=True)
        trimmed, _ = librosa.effects.trim(audio, top_db=30)
        clips.append(trimmed / (np.abs(trimmed).max() + 1e-9) * 0.5)
    return clips


def conversation(shared_data: Path, turns: int = 12, seed: int = 7,
                 speakers: tuple[tuple[str, str], tuple[str, str]] | None = None) -> tuple[np.ndarray, list[Segment]]:
    """(16 kHz float audio, reference segments). Default speakers: TESS OAF (older woman) and YAF
    (younger woman), the harder same-sex pair."""
    rng = np.random.default_rng(seed)
    tess = shared_data / "emotion" / "tess"
    pairs = speakers or (("OAF", "*neutral*"), ("YAF", "*neutral*"))
    per_turn = 3
    pools = {name: _clips(tess / name, pattern, turns * per_turn) for name, pattern in pairs}
    names = [name for name, _ in pairs]
    pieces: list[np.ndarray] = [np.zeros(int(0.5 * RATE_HZ), dtype=np.float32)]
    reference: list[Segment] = []
    t = 0.5
    used = {name: 0 for name in names}
    for turn in range(turns):
        name = names[turn % 2]
        for k in range(int(rng.integers(1, per_turn + 1))):
            if k:
                gap = np.zeros(int(0.15 * RATE_HZ), dtype=np.float32)  # a breath inside the turn
                pieces.append(gap)
                t += len(gap) / RATE_HZ
            clip = pools[name][used[name] % len(pools[name])]
            used[name] += 1
            pieces.append(clip.astype(np.float32))
            reference.append(Segment(t, t + len(clip) / RATE_HZ, name))
            t += len(clip) / RATE_HZ
        gap = np.zeros(int(rng.uniform(0.4, 0.9) * RATE_HZ), dtype=np.float32)
        pieces.append(gap)
        t += len(gap) / RATE_HZ
    audio = np.concatenate(pieces)
    audio += rng.normal(0, 1e-3, audio.shape).astype(np.float32)  # a line's noise floor
    return audio, _merge(reference)


def _merge(segments: list[Segment]) -> list[Segment]:
    out: list[Segment] = []
    for seg in segments:
        if out and out[-1].speaker == seg.speaker and seg.start_s - out[-1].end_s < 0.2:
            out[-1] = Segment(out[-1].start_s, seg.end_s, seg.speaker)
        else:
            out.append(seg)
    return out
