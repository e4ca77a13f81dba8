"""`ivr transcribe --metrics-file`: a batch job's figures in Prometheus' text format, for node_exporter's
textfile collector (a batch job ends before anyone could scrape it). Rewritten atomically as files finish
(at most once a second) and at the end."""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, write_to_textfile

from ivr.transcribe.progress import Summary


def write_metrics(summary: Summary, path: Path, running: bool) -> None:
    registry = CollectorRegistry()
    files = Counter("ivr_transcribe_files_total", "Files of this run, by result", ["result"], registry=registry)
    files.labels(result="done").inc(summary.done)
    files.labels(result="failed").inc(len(summary.failed))
    files.labels(result="skipped").inc(summary.skipped)
    Counter("ivr_transcribe_audio_seconds_total", "Audio transcribed in this run",
            registry=registry).inc(summary.audio_s)
    Gauge("ivr_transcribe_input_files", "Files the run found", registry=registry).set(summary.total)
    Gauge("ivr_transcribe_wall_seconds", "How long the run has taken", registry=registry).set(summary.wall_s)
    Gauge("ivr_transcribe_running", "1 while the run goes on, 0 once it ended", registry=registry).set(running)
    Gauge("ivr_transcribe_last_update_timestamp_seconds", "When this file was written",
          registry=registry).set(time.time())
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)


class MetricsFile:
    """Writes the summary to `path` when a file finishes (at most every `every_s`) and at the end."""

    def __init__(self, path: Path, every_s: float = 1.0) -> None:
        self.path = path
        self.every_s = every_s
        self._written = 0.0

    def update(self, summary: Summary) -> None:
        now = time.monotonic()
        if now - self._written >= self.every_s:
            self._written = now
            write_metrics(summary, self.path, running=True)

    def finish(self, summary: Summary) -> None:
        write_metrics(summary, self.path, running=False)
