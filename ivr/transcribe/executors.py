"""Where files are decoded: in this process, on a Dask LocalCluster, or on an existing Dask cluster.

Each executor takes (path, options) pairs and yields FileResults as they finish, in any order.
Every file is planned (`plan_file`: read, VAD, cut into pieces of at most batch_size windows) and
its pieces are decoded (`decode_piece`), so a long file is spread over all workers and a few files
keep every core busy to the end. With Dask every plan and every piece is its own task with
retries, so the work of a worker that dies is run again on another one; the model stays loaded in
each worker process between tasks (engine cache).

The local cluster is one process with one decoding thread per core by default (`threads`): the
model loads once, CTranslate2 runs one replica per thread on shared weights and releases the GIL
while it works, and there are no worker processes to start. `processes` (N processes x 1 thread)
is the layout of a real cluster, kept for comparison (`ivr transcribe-bench --local processes`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import Any

from ivr.errors import IvrError
from ivr.transcribe.engine import (
    EngineOptions,
    FilePlan,
    FileResult,
    PieceResult,
    assemble,
    decode_piece,
    load_model,
    plan_file,
    worker_name,
)
from ivr.transcribe.enrich import emotion_analyzer, enrich_file, needs_enrich

log = logging.getLogger(__name__)

TASK_RETRIES = 3
"""Times a task is retried when the worker running it dies (a broken file does not raise, so it is
never retried: its reason comes back as a result)."""
CONNECT_TIMEOUT_S = 30
LOCAL_MODES = ("threads", "processes")
PLAN_PRIORITY, PIECE_PRIORITY, ENRICH_PRIORITY = 0, 1, 2
"""Dask runs queued speaker/emotion tasks first, then pieces, then plans, so files finish (and are
written) in order while plans are made just ahead of need."""
PLAN, ENRICH = -1, -2
"""Task kinds besides a piece (whose kind is its index)."""


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def run_inline(paths: list[str], options: EngineOptions) -> Iterator[FileResult]:
    """One process, this one: the model loads once, files and their pieces one after another."""
    _warm(options)
    for path in paths:
        plan = plan_file(path, options)
        result = assemble(plan, [] if plan.error else [decode_piece(path, options, p) for p in plan.pieces])
        yield enrich_file(result, options)


def _warm(options: EngineOptions) -> str:
    """Runs on each worker before the files: load the models so the first piece pays no load time
    (and a worker without them says so once)."""
    load_model(options.model_path, options.compute_type, options.cpu_threads, options.replicas)
    if options.emotion:
        emotion_analyzer()
    return worker_name()


@dataclass
class _FileState:
    plan: FilePlan | None = None
    parts: dict[int, PieceResult] = field(default_factory=dict)
    failed: bool = False


def run_dask(paths: list[str], options: EngineOptions, scheduler: str | None, workers: int,
             local: str = "threads") -> Iterator[FileResult]:
    """Plan and decode on `scheduler` (tcp://host:port or a scheduler JSON file), or on a LocalCluster
    of `workers` threads in this process (local='threads') or `workers` processes of one thread."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise IvrError("distributed transcription needs Dask: run `pip install 'dask[distributed]'` "
                       "(or `pip install 'ivr-agent[batch]'`)") from None
    if local not in LOCAL_MODES:
        raise IvrError(f"unknown local cluster layout {local!r}: choose from {', '.join(LOCAL_MODES)}")
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
        elif local == "threads":
            options = replace(options, replicas=workers)
            cluster = stack.enter_context(LocalCluster(
                n_workers=1, threads_per_worker=workers, processes=False, dashboard_address=None,
                silence_logs=logging.ERROR))
            client = stack.enter_context(Client(cluster))
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
        yield from _plan_and_decode(client, as_completed, paths, options)


def _plan_and_decode(client: Any, as_completed: Any, paths: list[str], options: EngineOptions) -> Iterator[FileResult]:
    """Submit a plan task per file and, as each plan comes back, a task per piece; yield each file
    when its last piece is in."""
    states = {path: _FileState() for path in paths}
    number = {path: i for i, path in enumerate(paths)}
    what: dict[Any, tuple[str, int]] = {}
    """future -> (path, piece index, PLAN or ENRICH)."""
    for i, path in enumerate(paths):
        future = client.submit(plan_file, path, options, key=f"plan-{i}-{os.path.basename(path)}",
                               retries=TASK_RETRIES, pure=False, priority=PLAN_PRIORITY)
        what[future] = (path, PLAN)
    ac = as_completed(list(what))
    for future in ac:
        path, index = what.pop(future)
        state = states[path]
        try:
            value = future.result()
        except Exception as exc:  # noqa: BLE001 - the task failed on every retry
            future.release()
            if not state.failed:
                state.failed = True
                yield FileResult(path, error=f"failed on the cluster after {TASK_RETRIES} retries: {exc}")
            continue
        future.release()
        if state.failed:
            continue
        if index == ENRICH:
            del states[path]
            yield value
            continue
        if index == PLAN:
            plan: FilePlan = value
            state.plan = plan
            if plan.error or not plan.pieces:
                yield assemble(plan, [])
                continue
            for piece in plan.pieces:
                key = f"piece-{number[path]}-{piece.index}-{os.path.basename(path)}"
                f = client.submit(decode_piece, path, options, piece, key=key, retries=TASK_RETRIES, pure=False,
                                  priority=PIECE_PRIORITY)
                what[f] = (path, piece.index)
                ac.add(f)
            continue
        state.parts[index] = value
        if state.plan is not None and len(state.parts) == len(state.plan.pieces):
            result = assemble(state.plan, [state.parts[i] for i in range(len(state.plan.pieces))])
            if result.ok and result.segments and needs_enrich(options):
                f = client.submit(enrich_file, result, options, key=f"enrich-{number[path]}-{os.path.basename(path)}",
                                  retries=TASK_RETRIES, pure=False, priority=ENRICH_PRIORITY)
                what[f] = (path, ENRICH)
                ac.add(f)
                continue
            yield result
            del states[path]
