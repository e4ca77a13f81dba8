"""Starts `ivr serve` for a test with its output in a file, and reads the process's resource use."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tests.sip.rtp_pcap import CallerTrack
from tests.sip.sipp import finish_sipp, free_media_base, free_udp_port, render, sipp_errors, start_sipp

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 120


def say(text: str) -> np.ndarray:
    from telephony.audio.resample import resample
    from tts.factory import load_synthesizer

    audio = load_synthesizer("piper", "").synthesize(text)
    return resample(audio.samples, audio.sample_rate_hz, 8000)


def start_server(out_dir: Path, port: int, extra: list[str] | None = None) -> subprocess.Popen[str]:
    """`ivr serve` on 127.0.0.1:port with its call folders (kept) in `out_dir`; returns once it listens."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "ivr", "serve", "--port", str(port), "--out", str(out_dir),
                             "--keep-call-files",  # the tests read the call folders
                             "--rtp-port", str(free_udp_port(even=True)), *http_off(extra), *(extra or [])],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if "listening on sip:" in line:
            os.set_blocking(proc.stdout.fileno(), False)
            return proc
    proc.kill()
    raise AssertionError(f"ivr serve did not start: {proc.stdout.read() if proc.stdout else ''}")


def http_off(extra: Sequence[str] | None) -> list[str]:
    """`--http-port 0` unless the test chose a port: tests run beside each other and beside a real agent."""
    return [] if extra and "--http-port" in extra else ["--http-port", "0"]


def call_events(call_dir: Path) -> list[dict]:
    """The records of a call folder's events.jsonl."""
    return [json.loads(line) for line in (call_dir / "events.jsonl").read_text().splitlines()]


def heard_words(samples: np.ndarray) -> str:
    from asr.whisper import WhisperRecognizer

    return re.sub(r"[^a-z ]", " ", WhisperRecognizer().transcribe(samples, 8000).text.lower())


def tear_down(server: subprocess.Popen, procs: Sequence[subprocess.Popen], listeners: Sequence[Any] = ()) -> None:
    """After a SIP test: kill the sipp callers still running, stop the server, close the RTP listeners."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    stop_serve(server)
    for listener in listeners:
        listener.close()


def start_serve(log: Path, port: int, extra: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`ivr -v serve` on 127.0.0.1:port writing to `log` (verbose logs would fill a pipe nobody reads);
    returns once it listens. Call folders go to log.parent/calls and are kept. `env`: more variables."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-X", "faulthandler", "-m", "ivr", "-v", "serve", "--port", str(port),
                                 "--out", str(log.parent / "calls"), "--keep-call-files", *http_off(extra),
                                 *extra],
                                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        if "listening on sip:" in log.read_text(errors="replace"):
            return proc
        time.sleep(0.2)
    stop_serve(proc)
    raise AssertionError(f"ivr serve did not start: {log.read_text(errors='replace')[-3000:]}")


def stop_serve(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> int:
    """Stop `ivr serve` with `sig` (SIGTERM: a graceful stop), killing it after 30 s; its exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


@dataclass(frozen=True)
class Usage:
    open_files: int
    threads: int
    rss_mb: float

    def __str__(self) -> str:
        return f"{self.open_files} open files, {self.threads} threads, {self.rss_mb:.0f} MB RSS"


def usage(pid: int) -> Usage:
    """Open files, threads and resident memory of a running process (Linux /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return Usage(open_files=len(os.listdir(f"/proc/{pid}/fd")), threads=int(fields["Threads"].strip()),
                 rss_mb=int(fields["VmRSS"].split()[0]) / 1024)


def keyed_call_nodes(work: Path, port: int, calls_dir: Path, timeout_s: float = 60.0) -> list[str]:
    """An ordinary call by sipp from 127.0.0.1: it waits out the greeting, presses 1 (RFC 4733), then 3 by
    SIP INFO, and hangs up. Returns the dialog nodes its key presses reached (['balance', 'hours'] when
    the agent served it), from the call's events.jsonl."""
    work.mkdir(parents=True, exist_ok=True)
    track = CallerTrack()
    track.silence(7.0)
    track.key("1")
    track.silence(4.0)
    track.write_pcap(work / "keys.pcap")
    before = set(calls_dir.iterdir()) if calls_dir.is_dir() else set()
    scenario = render("caller_hangs_up.xml", work / "keys.xml", PCAP=work / "keys.pcap", INFO_AFTER_MS=10000,
                      INFO_KEY=3, BYE_AFTER_MS=1500)
    code, err = finish_sipp(start_sipp(scenario, port, free_udp_port(), free_media_base(), work), timeout_s)
    assert code == 0, f"the ordinary call failed (sipp {code}): {err[-500:]} {sipp_errors(work)}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        new = [d for d in calls_dir.iterdir() if d not in before and (d / "sip.json").exists()]
        if new:
            events = call_events(new[0])
            return [e["node"] for e in events if e["type"] == "dialog" and e.get("event") == "DigitsEntered"]
        time.sleep(0.2)
    raise AssertionError("the ordinary call left no sip.json")
