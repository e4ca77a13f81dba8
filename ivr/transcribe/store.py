"""Where outputs go, atomic writes, and the done markers that make a rerun skip finished files.

A file is done when its marker exists, names the same input (path, size, mtime), model, decoding
options and formats, and every output it lists is there with the recorded size. The marker is
written last, after the outputs, each via a temporary file and os.replace, so a job killed at any
moment leaves either a complete file set or one that is redone.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivr.transcribe.inputs import InputFile
from models.atomicfile import atomic_write

MARKER_DIR = ".ivr-transcribe"
MARKER_VERSION = 1


@dataclass(frozen=True)
class OutputStore:
    out_dir: Path
    formats: tuple[str, ...]
    settings: dict[str, Any]
    """Model and decoding options that change the text: a change redoes the file."""

    def output_path(self, item: InputFile, fmt: str) -> Path:
        return self.out_dir / f"{item.output_stem}.{fmt}"

    def marker_path(self, item: InputFile) -> Path:
        return self.out_dir / MARKER_DIR / f"{item.output_stem}.done.json"

    def _key(self, item: InputFile) -> dict[str, Any]:
        return {"version": MARKER_VERSION, "source": str(item.path), "size_bytes": item.size_bytes,
                "mtime_ns": item.mtime_ns, "settings": self.settings, "formats": list(self.formats)}

    def is_done(self, item: InputFile) -> bool:
        try:
            marker = json.loads(self.marker_path(item).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        if not isinstance(marker, dict) or marker.get("key") != self._key(item):
            return False
        sizes = marker.get("outputs", {})
        for fmt in self.formats:
            path = self.output_path(item, fmt)
            try:
                if path.stat().st_size != sizes.get(fmt):
                    return False
            except OSError:
                return False
        return True

    def write(self, item: InputFile, contents: dict[str, str], duration_s: float) -> None:
        """All outputs of one file, then its marker; each write is atomic."""
        sizes = {}
        for fmt, text in contents.items():
            data = text.encode("utf-8")
            atomic_write(self.output_path(item, fmt), data)
            sizes[fmt] = len(data)
        marker = {"key": self._key(item), "outputs": sizes, "duration_s": duration_s}
        atomic_write(self.marker_path(item), json.dumps(marker, indent=1).encode("utf-8"))

    def done_duration_s(self, item: InputFile) -> float:
        try:
            return float(json.loads(self.marker_path(item).read_text(encoding="utf-8"))["duration_s"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0.0


def remove_stale_temp_files(out_dir: Path) -> int:
    """Delete temporary files a killed job left behind (ours only: `.NAME.*.tmp`). Do not run two
    jobs into the same --out at once."""
    removed = 0
    if out_dir.is_dir():
        for tmp in out_dir.rglob(".*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed += 1
    return removed
