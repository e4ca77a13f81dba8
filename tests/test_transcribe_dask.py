"""`ivr transcribe --scheduler`: a real Dask scheduler and two workers, separate processes on loopback.

The cluster's results must equal the local run's, and killing one worker mid-run must still
complete every file (Dask reschedules the dead worker's tasks on the other worker).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ivr.cli import main
from tests.transcribe_support import PROMPTS, joined_recording, manifest, outputs

pytest.importorskip("distributed")
pytestmark = pytest.mark.models

REPO = Path(__file__).resolve().parents[1]
DASK = str(Path(sys.executable).with_name("dask"))


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    with log.open("wb") as f:
        return subprocess.Popen([DASK, *args], cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT)


@pytest.fixture
def cluster(tmp_path):
    """(scheduler file, [worker processes]); every process is killed at the end."""
    sched_file = tmp_path / "scheduler.json"
    procs = [_start(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                     "--scheduler-file", str(sched_file)], tmp_path / "scheduler.log")]
    try:
        deadline = time.monotonic() + 60
        while not sched_file.exists() and time.monotonic() < deadline:
            assert procs[0].poll() is None, (tmp_path / "scheduler.log").read_text()
            time.sleep(0.1)
        assert sched_file.exists(), "the Dask scheduler did not start"
        workers = [_start(["worker", "--scheduler-file", str(sched_file), "--nworkers", "1", "--nthreads", "1",
                           "--no-nanny", "--host", "127.0.0.1", "--no-dashboard", "--name", f"w{i}"],
                          tmp_path / f"worker{i}.log") for i in range(2)]
        procs += workers
        from distributed import Client
        with Client(scheduler_file=str(sched_file), timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield sched_file, workers
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.kill()
        for p in procs:
            p.wait(timeout=10)


def test_cluster_equals_local_run_and_survives_a_dead_worker(shared_data, tmp_path, cluster):
    sched_file, workers = cluster
    src = tmp_path / "calls"
    src.mkdir()
    for name in PROMPTS:
        shutil.copy(shared_data / "speech" / "ivr-prompts" / name, src / name)
    names = sorted(manifest(shared_data))
    for i in range(4):  # longer recordings so the kill lands mid-run
        joined_recording(shared_data, names[i * 5:(i + 1) * 5], src / f"long{i}.wav")
    args = ["transcribe", str(src), "--format", "jsonl,vtt", "-q"]

    local = tmp_path / "local"
    assert main([*args, "--out", str(local), "--workers", "1", "--cpu-threads", "1"]) == 0
    on_cluster = tmp_path / "cluster"
    assert main([*args, "--out", str(on_cluster), "--scheduler", str(sched_file)]) == 0
    assert outputs(on_cluster) == outputs(local)

    # Again into a fresh folder, killing one worker once the first file is written.
    killed_out = tmp_path / "killed"
    killed_at: list[int] = []

    def kill_one_worker() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if list((killed_out / ".ivr-transcribe").glob("*.done.json")):
                workers[0].send_signal(signal.SIGKILL)
                killed_at.append(len(list((killed_out / ".ivr-transcribe").glob("*.done.json"))))
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_one_worker, daemon=True)
    killer.start()
    assert main([*args, "--out", str(killed_out), "--scheduler", str(sched_file)]) == 0
    killer.join(timeout=5)
    assert killed_at and killed_at[0] < len(PROMPTS) + 4, "the worker was killed after the run"
    assert workers[0].wait(timeout=10) == -signal.SIGKILL
    summary = json.loads((killed_out / "transcribe-summary.json").read_text())
    assert summary["done"] == len(PROMPTS) + 4 and not summary["failed"]
    assert outputs(killed_out) == outputs(local)


def test_local_cluster_threads_equal_the_inline_run(shared_data, tmp_path):
    """`--workers 2` (a LocalCluster of two decoding threads) spreads the pieces of one file over both
    threads and writes what `--workers 1` writes; a corrupt file fails the same way."""
    src = tmp_path / "calls"
    src.mkdir()
    names = sorted(manifest(shared_data))
    joined_recording(shared_data, names[:12], src / "long.wav")  # ~30 s: several windows, pieces of 2
    shutil.copy(shared_data / "speech" / "ivr-prompts" / "agent-pass.flac", src / "short.flac")
    (src / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage" * 8)
    args = ["transcribe", str(src), "--format", "jsonl,srt", "-q", "--batch-size", "1"]
    assert main([*args, "--out", str(tmp_path / "inline"), "--workers", "1"]) == 1
    assert main([*args, "--out", str(tmp_path / "threads"), "--workers", "2"]) == 1
    assert outputs(tmp_path / "threads") == outputs(tmp_path / "inline")
    summary = json.loads((tmp_path / "threads" / "transcribe-summary.json").read_text())
    assert summary["done"] == 2 and [Path(f["file"]).name for f in summary["failed"]] == ["corrupt.wav"]
    long = (tmp_path / "threads" / "long.jsonl").read_text().splitlines()
    assert len(long) > 4 and "password" in (tmp_path / "threads" / "short.jsonl").read_text().lower()
