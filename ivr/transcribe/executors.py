"""Where files are decoded: in this process, on a Dask LocalCluster, or on an existing Dask cluster.

Each executor takes (path, options) pairs and yields FileResults as they finish, in any order.
With Dask every file is its own task with retries, so the files of a worker that dies are run
again on another one; the model stays loaded in each worker process between tasks (engine cache).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

from ivr.errors import IvrError
from ivr.transcribe.engine import EngineOptions, FileResult, load_pipeline, transcribe_file

log = logging.getLogger(__name__)

TASK_RETRIES = 3
"""Times a file is retried when the worker running it dies (a broken file does not raise, so it is
never retried: its reason comes back as a result)."""
CONNECT_TIMEOUT_S = 30


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def run_inline(paths: list[str], options: EngineOptions) -> Iterator[FileResult]:
    """One process, this one: the model loads once, files are decoded one after another."""
    load_pipeline(options.model_path, options.compute_type, options.cpu_threads)
    for path in paths:
        yield transcribe_file(path, options)


def _warm(options: EngineOptions) -> str:
    """Runs on each worker before the files: load the model so the first file pays no load time."""
    load_pipeline(options.model_path, options.compute_type, options.cpu_threads)
    return f"{os.uname().nodename}:{os.getpid()}"


def run_dask(paths: list[str], options: EngineOptions, scheduler: str | None, workers: int) -> Iterator[FileResult]:
    """Submit one task per file to `scheduler` (tcp://host:port or a scheduler JSON file), or to a
    LocalCluster of `workers` processes with one thread each."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise IvrError("distributed transcription needs Dask: run `pip install 'dask[distributed]'` "
                       "(or `pip install 'ivr-agent[batch]'`)") from None
    if not log.isEnabledFor(logging.INFO):  # Dask logs every connection at INFO; keep the progress readable
        logging.getLogger("distributed").setLevel(logging.ERROR)
    with ExitStack() as stack:
        if scheduler:
            try:
                if scheduler.endswith(".json") and os.path.exists(scheduler):
                    client = stack.enter_context(Client(scheduler_file=scheduler, timeout=CONNECT_TIMEOUT_S))
                else:
                    client = stack.enter_context(Client(scheduler, timeout=CONNECT_TIMEOUT_S))
            except (OSError, TimeoutError) as exc:
                raise IvrError(f"cannot reach the Dask scheduler at {scheduler} ({exc})") from None
        else:
            cluster = stack.enter_context(LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                silence_logs=logging.ERROR))
            client = stack.enter_context(Client(cluster))
        try:
            loaded = client.run(_warm, options)
            log.info("model loaded on %d worker(s)", len(loaded))
        except Exception as exc:  # noqa: BLE001 - a worker that cannot load the model is reported once
            raise IvrError(f"the Dask workers cannot load the model: {exc}") from None
        futures = [client.submit(transcribe_file, path, options, key=f"transcribe-{i}-{os.path.basename(path)}",
                                 retries=TASK_RETRIES, pure=False)
                   for i, path in enumerate(paths)]
        by_future: dict[Any, str] = dict(zip(futures, paths, strict=True))
        for future in as_completed(futures):
            path = by_future.pop(future)
            try:
                yield future.result()
            except Exception as exc:  # noqa: BLE001 - the task failed on every retry
                yield FileResult(path, error=f"failed on the cluster after {TASK_RETRIES} retries: {exc}")
            future.release()
