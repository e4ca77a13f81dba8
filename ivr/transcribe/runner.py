"""One batch job: find files, skip finished ones, decode the rest, write outputs, summarise."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from ivr.transcribe.engine import EngineOptions, FileResult
from ivr.transcribe.executors import run_dask, run_inline
from ivr.transcribe.formats import render
from ivr.transcribe.inputs import InputFile, discover
from ivr.transcribe.metrics import MetricsFile
from ivr.transcribe.progress import Progress, Summary
from ivr.transcribe.store import OutputStore, atomic_write, remove_stale_temp_files

log = logging.getLogger(__name__)

SUMMARY_FILE = "transcribe-summary.json"


@dataclass(frozen=True)
class JobConfig:
    inputs: tuple[str, ...]
    out_dir: Path
    formats: tuple[str, ...]
    engine: EngineOptions
    model_name: str
    """As the user gave it ('tiny.en' or a directory); written into the outputs."""
    workers: int = 1
    scheduler: str = ""
    local: str = "threads"
    """Local cluster layout: one process of `workers` threads, or `workers` processes ('processes')."""
    quiet: bool = False
    metrics_file: str = ""
    """Where to keep the run's figures in Prometheus' text format ('' : nowhere)."""


def run_job(config: JobConfig, stream: TextIO | None = None) -> Summary:
    """Transcribe everything not yet done; the summary is also written to OUT/transcribe-summary.json."""
    items = discover(list(config.inputs))
    settings = {k: v for k, v in asdict(config.engine).items() if k not in ("model_path", "cpu_threads", "replicas")}
    settings["model"] = config.model_name
    store = OutputStore(config.out_dir, config.formats, settings)
    if remove_stale_temp_files(config.out_dir):
        log.info("removed temporary files left by an interrupted run")
    summary = Summary(total=len(items))
    to_do: list[InputFile] = []
    for item in items:
        if store.is_done(item):
            summary.skipped += 1
        else:
            to_do.append(item)
    progress = Progress(summary, stream, quiet=config.quiet)
    metrics = MetricsFile(Path(config.metrics_file)) if config.metrics_file else None
    progress.start(len(to_do), sum(i.size_bytes for i in to_do))
    by_path = {str(i.path): i for i in to_do}
    for result in _results(config, [str(i.path) for i in to_do]):
        item = by_path[result.path]
        if result.ok:
            store.write(item, {fmt: render(result, fmt, config.model_name) for fmt in config.formats},
                        result.duration_s)
            summary.done += 1
            summary.audio_s += result.duration_s
        else:
            summary.failed.append((str(item.path), result.error))
            log.debug("failed: %s: %s", item.path, result.error)
        progress.file_finished(item.output_stem, item.size_bytes, result.ok)
        if metrics is not None:
            metrics.update(summary)
    progress.finish()
    if metrics is not None:
        metrics.finish(summary)
    summary.failed.sort()
    atomic_write(config.out_dir / SUMMARY_FILE, json.dumps(summary.to_json(), indent=1).encode("utf-8"))
    return summary


def _results(config: JobConfig, paths: list[str]) -> Iterator[FileResult]:
    if not paths:
        return iter(())
    if config.scheduler or config.workers > 1:
        return run_dask(paths, config.engine, config.scheduler or None, config.workers, config.local)
    return run_inline(paths, config.engine)
