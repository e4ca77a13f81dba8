"""Labelled speech for the acoustic emotion model: the shared RAVDESS and TESS sets, or a user's CSV.

A user's CSV has a header with `path` and `emotion` columns and optionally `speaker` (speaker-
independent evaluation needs it; without it every clip is its own group). Paths are relative to
the CSV. Emotions outside the model's four classes are left out; `calm` counts as neutral.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from ivr.errors import IvrError

LABEL_MAP = {"neutral": "neutral", "calm": "neutral", "happy": "happy", "joy": "happy", "sad": "sad",
             "sadness": "sad", "angry": "angry", "anger": "angry"}
"""Corpus labels -> the four classes. RAVDESS 'calm' is acted as a quiet neutral, so it is neutral."""


@dataclass(frozen=True)
class Clip:
    path: Path
    label: str
    """One of CLASSES."""
    group: str
    """The speaker: clips of one group are never split between training and evaluation."""
    corpus: str


def _rows(manifest: Path) -> list[dict[str, str]]:
    try:
        with manifest.open(newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except OSError as exc:
        raise IvrError(f"{manifest}: cannot read ({exc.strerror})") from None


def load_ravdess(root: Path) -> list[Clip]:
    return [Clip(root / r["path"], LABEL_MAP[r["emotion"]], f"ravdess-{int(r['actor']):02d}", "ravdess")
            for r in _rows(root / "manifest.csv") if r["emotion"] in LABEL_MAP]


def load_tess(root: Path) -> list[Clip]:
    return [Clip(root / r["path"], LABEL_MAP[r["emotion"]], f"tess-{r['speaker']}", "tess")
            for r in _rows(root / "manifest.csv") if r["emotion"] in LABEL_MAP]


def load_shared(data_dir: Path) -> list[Clip]:
    """RAVDESS + TESS from the shared data directory (`../shared/data/emotion`)."""
    missing = [name for name in ("ravdess", "tess") if not (data_dir / name / "manifest.csv").is_file()]
    if missing:
        raise IvrError(f"{data_dir}: no {' or '.join(missing)} manifest.csv here; pass --data with the "
                       "directory holding ravdess/ and tess/ (../shared/data/emotion in the project), "
                       "or --csv with your own labelled clips")
    return load_ravdess(data_dir / "ravdess") + load_tess(data_dir / "tess")


def load_csv(path: Path) -> list[Clip]:
    """Clips from a user's CSV (path, emotion[, speaker])."""
    rows = _rows(path)
    if not rows or "path" not in rows[0] or "emotion" not in rows[0]:
        raise IvrError(f"{path}: needs a header with 'path' and 'emotion' columns (and ideally 'speaker')")
    clips = []
    for i, row in enumerate(rows):
        label = LABEL_MAP.get(row["emotion"].strip().lower())
        if label is None:
            continue
        clip_path = Path(row["path"])
        group = (row.get("speaker") or "").strip() or f"clip-{i}"
        clips.append(Clip(clip_path if clip_path.is_absolute() else path.parent / clip_path, label,
                          f"csv-{group}", "csv"))
    if not clips:
        raise IvrError(f"{path}: no rows with an emotion among {', '.join(sorted(LABEL_MAP))}")
    return clips
