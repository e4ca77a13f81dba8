"""Drives sipp as the caller: fills in a scenario, runs it, and listens for the agent's RTP.

sipp sends the pcap's RTP from the port in its own SDP ([media_port+4] in our scenarios), and sipp
itself binds only media_port and media_port+2 (its echo ports). The caller-side `RtpListener`
binds media_port+4: the agent sends there (also after pjsip latches onto the packets' source), so
the test hears exactly what the caller hears.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ivr.serve.bench import free_media_base as free_media_base  # one implementation, shared with ivr bench-sip
from ivr.serve.bench import free_port
from telephony.audio.g711 import mulaw_decode
from tests.sip.listener import DatagramListener, udp_socket

free_udp_port = free_port

HERE = Path(__file__).resolve().parent
SIPP = shutil.which("sipp")
RTP_OFFSET = 4


def render(template: str, out: Path, **values: object) -> Path:
    text = (HERE / template).read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", str(value))
    assert "{{" not in text, f"unfilled placeholder in {template}"
    out.write_text(text, encoding="utf-8")
    return out


class RtpListener(DatagramListener):
    """The caller's RTP endpoint: keeps what the agent sends (PCMU), with arrival times."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.packets: list[tuple[float, int, int, bytes]] = []  # time, seq, pt, payload
        super().__init__(udp_socket(port))

    def received(self, data: bytes, address: object) -> None:
        if len(data) > 12 and data[0] >> 6 == 2:
            self.packets.append((time.monotonic(), int.from_bytes(data[2:4], "big"), data[1] & 0x7F, data[12:]))

    def audio(self) -> np.ndarray:
        """What the caller heard, as int16 8 kHz samples in arrival order."""
        payloads = [p for _, _, pt, p in self.packets if pt == 0]
        return mulaw_decode(b"".join(payloads)) if payloads else np.zeros(0, np.int16)

    def speech_onsets(self, threshold: float = 500.0) -> list[float]:
        """Arrival times of packets whose RMS crosses threshold after at least 300 ms below it."""
        onsets, quiet = [], 15
        for t, _, pt, payload in self.packets:
            if pt != 0:
                continue
            rms = float(np.sqrt(np.mean(mulaw_decode(payload).astype(np.float64) ** 2)))
            if rms >= threshold:
                if quiet >= 15:
                    onsets.append(t)
                quiet = 0
            else:
                quiet += 1
        return onsets


def start_sipp(scenario: Path, server_port: int | None, sip_port: int, media_base: int, log_dir: Path,
               local_ip: str = "127.0.0.1") -> subprocess.Popen[bytes]:
    """sipp with one call of `scenario`: a UAC calling 127.0.0.1:server_port, or a UAS (server_port None)
    waiting on local_ip:sip_port."""
    assert SIPP is not None
    remote = [f"127.0.0.1:{server_port}"] if server_port is not None else []
    cmd = [SIPP, "-sf", str(scenario), *remote, "-m", "1", "-i", local_ip,
           "-p", str(sip_port), "-mi", local_ip, "-mp", str(media_base), "-nostdin",
           "-timeout", "90s", "-trace_err", "-trace_screen"]
    return subprocess.Popen(cmd, cwd=log_dir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish_sipp(proc: subprocess.Popen[bytes], timeout_s: float) -> tuple[int, str]:
    """(exit status, stderr) of a sipp run, killed if it is not done within `timeout_s`."""
    try:
        _, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return proc.returncode, (err or b"").decode(errors="replace")


def sipp_errors(log_dir: Path, tail: int = 1500) -> str:
    """The end of each error log sipp wrote in `log_dir` (for an assertion's message)."""
    return "".join(p.read_text(errors="replace")[-tail:] for p in sorted(log_dir.glob("*_errors.log")))


def require_sipp() -> None:
    """Skip the test when sipp is missing, saying how to install it."""
    if SIPP is None:
        pytest.skip("sipp is not installed (Debian package sip-tester; scripts/setup.sh installs it)")


def start_call(log_dir: Path, template: str, port: int, media_base: int | None = None,
               local_ip: str = "127.0.0.1", **values: Any) -> subprocess.Popen[bytes]:
    """A sipp caller from `template` (rendered with `values` into `log_dir`, where sipp also logs) calling
    127.0.0.1:port from local_ip, on free ports (`media_base` when given)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    base = free_media_base() if media_base is None else media_base
    return start_sipp(render(template, log_dir / "s.xml", **values), port, free_udp_port(), base, log_dir, local_ip)


def start_caller(log_dir: Path, template: str, port: int, **values: Any) -> tuple[subprocess.Popen, RtpListener]:
    """`start_call` with the RTP listener that keeps what the caller hears."""
    base = free_media_base()
    listener = RtpListener(base + RTP_OFFSET)
    return start_call(log_dir, template, port, base, **values), listener


def start_callers(work: Path, count: int, template: str, port: int, procs: list[subprocess.Popen],
                  listeners: list[RtpListener], **values: Any) -> list[Path]:
    """`count` callers at once (`start_caller`, logs in work/caller0, work/caller1, ...): their processes and
    listeners are added to `procs` and `listeners` (for `tear_down`), their log folders returned."""
    dirs = [work / f"caller{i}" for i in range(count)]
    for log_dir in dirs:
        proc, listener = start_caller(log_dir, template, port, **values)
        procs.append(proc)
        listeners.append(listener)
    return dirs


def finish_callers(procs: list[subprocess.Popen], dirs: list[Path], timeout_s: float) -> list[str]:
    """What went wrong with each of the callers (`start_callers`) that did not end well within `timeout_s`
    all together; an empty list when every one exited 0."""
    failures = []
    deadline = time.monotonic() + timeout_s
    for i, (proc, log_dir) in enumerate(zip(procs, dirs, strict=True)):
        rc, err = finish_sipp(proc, max(1.0, deadline - time.monotonic()))
        if rc != 0:
            failures.append(f"caller {i}: rc {rc} {err[-300:]} {sipp_errors(log_dir, 800)}")
    return failures
