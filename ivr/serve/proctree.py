"""CPU and memory of a process and all its descendants, read from /proc (Linux), for the capacity bench.

Memory is PSS (proportional set size, /proc/PID/smaps_rollup): pages shared between processes (the
models' files, the interpreter) are split between them, so the sum over a tree is what the tree costs,
not RSS counted once per process.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

PROC = Path("/proc")
TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system CPU seconds), None when the process is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after the command name, which may hold spaces
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS_PER_S


def tree(root: int) -> dict[int, float]:
    """{pid: CPU seconds} of `root` and its descendants alive now."""
    stats = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                stats[int(entry.name)] = stat
    members = {root} if root in stats else set()
    grew = True
    while grew:
        grew = False
        for pid, (ppid, _) in stats.items():
            if ppid in members and pid not in members:
                members.add(pid)
                grew = True
    return {pid: stats[pid][1] for pid in members}


def pss_mb(pids: list[int]) -> float:
    total_kb = 0
    for pid in pids:
        try:
            for line in (PROC / str(pid) / "smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kb += int(line.split()[1])
                    break
        except OSError:
            continue
    return total_kb / 1024.0


class TreeSampler:
    """Samples a process tree every `every_s` from start() to stop(): CPU seconds used in between (by the
    processes it saw, up to their last sample) and the peak PSS."""

    def __init__(self, root: int, every_s: float = 0.5) -> None:
        self.root = root
        self.every_s = every_s
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self.peak_pss_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-sampler", daemon=True)

    def start(self) -> TreeSampler:
        self._first = tree(self.root)
        self._last = dict(self._first)
        self._thread.start()
        return self

    def _sample(self) -> None:
        now = tree(self.root)
        for pid, cpu in now.items():
            self._first.setdefault(pid, 0.0)  # born since start: all its CPU counts
            self._last[pid] = cpu
        self.peak_pss_mb = max(self.peak_pss_mb, pss_mb(list(now)))

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self._sample()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join(5)
        self._sample()
        cpu_s = sum(self._last[pid] - self._first.get(pid, 0.0) for pid in self._last)
        return {"cpu_s": round(cpu_s, 2), "peak_pss_mb": round(self.peak_pss_mb, 1)}
