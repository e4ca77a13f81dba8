"""Progress while a batch runs, and the summary at the end.

On a terminal one status line is redrawn in place; otherwise (logs, CI) a plain line is printed per
finished file. Lines show counts, audio hours done, speed in x real time (audio seconds per wall
second) and an ETA from the audio still to do. Transcript text is never printed.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class Summary:
    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    """(file, reason) for each file that could not be transcribed."""
    audio_s: float = 0.0
    """Audio transcribed in this run (skipped files not counted)."""
    wall_s: float = 0.0

    @property
    def speed_x(self) -> float:
        return self.audio_s / self.wall_s if self.wall_s > 0 else 0.0

    def to_json(self) -> dict[str, object]:
        """What the run did, for OUT/transcribe-summary.json. No wall time or speed: those are printed
        (`finish`), so the same inputs give the same bytes in every file of OUT."""
        return {"total": self.total, "done": self.done, "skipped": self.skipped,
                "failed": [{"file": f, "reason": r} for f, r in self.failed],
                "audio_s": round(self.audio_s, 3)}


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 360 else f"{seconds / 60:.1f} min"


def _eta(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
    """Call `start(n_to_do, bytes_to_do)`, then `file_finished(...)` per file, then `finish()`."""

    def __init__(self, summary: Summary, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.summary = summary
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty()
        self._t0 = time.perf_counter()
        self._to_do = 0
        self._bytes_to_do = 0
        self._bytes_done = 0

    def start(self, to_do: int, bytes_to_do: int) -> None:
        self._t0 = time.perf_counter()
        self._to_do = to_do
        self._bytes_to_do = max(bytes_to_do, 1)
        if not self.quiet:
            s = self.summary
            print(f"transcribing {to_do} file(s); {s.skipped} already done, skipped", file=self.stream, flush=True)

    def file_finished(self, name: str, size_bytes: int, ok: bool) -> None:
        self._bytes_done += size_bytes
        s = self.summary
        s.wall_s = time.perf_counter() - self._t0
        if self.quiet:
            return
        finished = s.done + len(s.failed) - 0
        frac = self._bytes_done / self._bytes_to_do
        eta = _eta(s.wall_s * (1 - frac) / frac) if frac > 0 else "?"
        line = (f"[{finished}/{self._to_do}] {_hours(s.audio_s)} audio, {s.speed_x:.1f}x real time, "
                f"ETA {eta}, {len(s.failed)} failed")
        if self.tty:
            print("\r\033[K" + line, end="", file=self.stream, flush=True)
        else:
            print(f"{line}  {'ok' if ok else 'FAILED'} {name}", file=self.stream, flush=True)

    def finish(self) -> None:
        s = self.summary
        s.wall_s = time.perf_counter() - self._t0
        if self.tty and not self.quiet:
            print(file=self.stream)
        print(f"done {s.done}, skipped {s.skipped} (already done), failed {len(s.failed)} of {s.total} file(s); "
              f"{_hours(s.audio_s)} audio in {s.wall_s:.1f} s ({s.speed_x:.1f}x real time)",
              file=self.stream, flush=True)
        for name, reason in s.failed:
            print(f"  failed: {name}: {reason}", file=self.stream, flush=True)
