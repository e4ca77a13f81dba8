"""Finding the recordings to transcribe and naming their outputs."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ivr.errors import IvrError

AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus"})
"""File name endings taken from folders (case-insensitive). Files named on the command line are
always taken, whatever their ending, so that a mislabelled file is reported rather than ignored."""


@dataclass(frozen=True)
class InputFile:
    """One recording to transcribe, with where its outputs go (relative to --out, no suffix)."""

    path: Path
    output_stem: str
    size_bytes: int
    mtime_ns: int


def discover(paths: list[str | Path]) -> list[InputFile]:
    """Files named and audio files found under folders (recursively), sorted, without duplicates.

    Output names mirror the layout under each folder; with more than one folder the folder's own
    name comes first. Two inputs that would share an output name (a.wav and a.flac) keep their
    suffix in it (a.wav.*, a.flac.*).
    """
    roots = [Path(p).expanduser() for p in paths]
    missing = [str(r) for r in roots if not r.exists()]
    if missing:
        raise IvrError(f"no such file or folder: {', '.join(missing)}")
    several_dirs = sum(r.is_dir() for r in roots) > 1
    found: dict[Path, str] = {}
    for root in roots:
        if root.is_dir():
            for path in _walk(root):
                rel = path.relative_to(root).as_posix()
                found.setdefault(path.resolve(), f"{root.resolve().name}/{rel}" if several_dirs else rel)
        else:
            found.setdefault(root.resolve(), root.name)
    stems = {path: _strip_suffix(rel) for path, rel in found.items()}
    counts = Counter(stems.values())
    out: list[InputFile] = []
    for path, rel in sorted(found.items(), key=lambda kv: kv[1]):
        stem = stems[path] if counts[stems[path]] == 1 else rel
        try:
            st = path.stat()
        except OSError as exc:
            raise IvrError(f"{path}: cannot be read ({exc.strerror})") from None
        out.append(InputFile(path, stem, st.st_size, st.st_mtime_ns))
    names = Counter(f.output_stem for f in out)
    clashes = sorted(n for n, c in names.items() if c > 1)
    if clashes:
        raise IvrError(f"several inputs would write the same outputs: {', '.join(clashes[:5])}")
    return out


def _walk(root: Path) -> list[Path]:
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and Path(name).suffix.lower() in AUDIO_SUFFIXES:
                files.append(Path(dirpath) / name)
    return files


def _strip_suffix(rel: str) -> str:
    path = Path(rel)
    return path.with_suffix("").as_posix() if path.suffix else rel
