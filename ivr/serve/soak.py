"""`ivr bench-soak`: many sequential calls through `ivr serve` while hostile traffic runs beside them.

Each call is real: sipp sets it up, the caller (this process) waits out the greeting, asks for the
balance by voice, hears the answer and hangs up. Beside the calls, for the whole run, a second thread
sends mixed traffic: OPTIONS pings, INVITEs from outside the allow-list, INVITEs nobody ACKs, stray BYEs
and random datagrams. Every few seconds the server's open files, threads and resident memory are read.
The table compares the start and the end; the JSON keeps every sample.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from ivr.errors import IvrError
from ivr.jsonreport import publish_report
from ivr.serve.bench import (
    RATE_HZ,
    RTP_OFFSET,
    CallerLine,
    _percentile,
    _start_serve,
    end_bench_call,
    free_media_base,
    free_port,
    in_dialog_request,
    sipp_scenario,
    trim_silence,
)

ALLOWED = ("127.0.0.1",)
STRANGER = "127.0.0.3"
SAMPLE_EVERY_S = 10.0
HOSTILE_EVERY_S = 0.05
QUESTION = "What is my account balance?"
GREETING_QUIET_S = 2.5
"""The greeting and menu (about 16 s) are over after this much quiet (their sentences have shorter gaps)."""

SCENARIO = sipp_scenario("ivr soak caller (signalling only; RTP from the bench; the caller hangs up)", """\
  <pause milliseconds="{{CALL_MS}}"/>
""" + in_dialog_request("BYE", 2, retrans_ms=500) + """\
  <recv response="200"/>
""")


def usage_of(pid: int) -> dict[str, float]:
    """Open files, threads and resident memory (MB) of a process (Linux /proc)."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                  if ":" in line)
    return {"open_files": len(os.listdir(f"/proc/{pid}/fd")), "threads": int(fields["Threads"].strip()),
            "rss_mb": round(int(fields["VmRSS"].split()[0]) / 1024, 1)}


class HostileTraffic(threading.Thread):
    """Mixed unwanted SIP traffic at a steady pace until stopped; counts what it sent."""

    def __init__(self, port: int, seed: int = 1) -> None:
        super().__init__(name="hostile", daemon=True)
        self.port = port
        self.rnd = random.Random(seed)
        self.sent: dict[str, int] = {}
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def _request(self, method: str, src: tuple[str, int], sdp: bool) -> bytes:
        body = (f"v=0\r\no=h 1 1 IN IP4 {src[0]}\r\ns=-\r\nc=IN IP4 {src[0]}\r\nt=0 0\r\n"
                f"m=audio {src[1] + 2} RTP/AVP 0\r\n") if sdp else ""
        return (f"{method} sip:ivr@127.0.0.1:{self.port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {src[0]}:{src[1]};branch=z9hG4bK{uuid.uuid4().hex[:12]};rport\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:h@{src[0]}>;tag={uuid.uuid4().hex[:6]}\r\n"
                f"To: <sip:ivr@127.0.0.1:{self.port}>\r\nCall-ID: {uuid.uuid4().hex}@{src[0]}\r\n"
                f"CSeq: 1 {method}\r\nContact: <sip:h@{src[0]}:{src[1]}>\r\n"
                + ("Content-Type: application/sdp\r\n" if sdp else "")
                + f"Content-Length: {len(body)}\r\n\r\n{body}").encode()

    def run(self) -> None:
        socks = {}
        for ip in (ALLOWED[0], STRANGER):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((ip, 0))
            sock.setblocking(False)
            socks[ip] = sock
        kinds = ("options", "stranger-invite", "unacked-invite", "stray-bye", "noise")
        try:
            while not self._halt.wait(HOSTILE_EVERY_S):
                kind = self.rnd.choice(kinds)
                ip = STRANGER if kind == "stranger-invite" else ALLOWED[0]
                sock = socks[ip]
                src = sock.getsockname()
                if kind == "options":
                    data = self._request("OPTIONS", src, False)
                elif kind in ("stranger-invite", "unacked-invite"):
                    if kind == "unacked-invite" and self.rnd.random() > 0.05:  # rarely: each holds a slot a while
                        continue
                    data = self._request("INVITE", src, True)
                elif kind == "stray-bye":
                    data = self._request("BYE", src, False)
                else:
                    data = self.rnd.randbytes(self.rnd.choice((1, 40, 400, 1400)))
                try:
                    sock.sendto(data, ("127.0.0.1", self.port))
                    self.sent[kind] = self.sent.get(kind, 0) + 1
                except OSError:
                    pass
                try:
                    while True:
                        sock.recvfrom(65535)
                except OSError:
                    pass
        finally:
            for sock in socks.values():
                sock.close()


def _soak_call(sipp: str, scenario: Path, port: int, question: np.ndarray, work: Path) -> dict[str, Any]:
    """One call: greeting, the question, the answer; sipp hangs up at the scenario's fixed call length."""
    base = free_media_base()
    line = CallerLine(base + RTP_OFFSET)
    log_dir = Path(tempfile.mkdtemp(prefix="call-", dir=work))
    proc = subprocess.Popen([sipp, "-sf", str(scenario), f"127.0.0.1:{port}", "-m", "1", "-i", ALLOWED[0],
                             "-p", str(free_port()), "-mi", "127.0.0.1", "-mp", str(base), "-nostdin",
                             "-timeout", "90s", "-trace_err"], cwd=log_dir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    result: dict[str, Any] = {"ok": False, "latency_ms": None, "error": ""}
    try:
        if not line.wait_agent_done(time.monotonic(), 40, quiet_s=GREETING_QUIET_S):
            result["error"] = "no greeting heard"
            return result
        asked = line.say(question)
        reply = line.first_speech_after(asked, 15)
        if reply is None:
            result["error"] = "no reply heard"
            return result
        result["latency_ms"] = round((reply - asked) * 1000, 1)
        line.wait_agent_done(asked, 30)
        proc.wait(60)
        result["ok"] = proc.returncode == 0
        if not result["ok"]:
            result["error"] = f"sipp exit {proc.returncode}"
        return result
    except Exception as exc:  # a failed call is counted and the soak goes on
        result["error"] = f"{type(exc).__name__}: {exc}"
        return result
    finally:
        end_bench_call(proc, line)


def run_bench_soak(args: argparse.Namespace) -> dict[str, Any]:
    from telephony.audio.resample import resample
    from tts.factory import load_synthesizer

    sipp = shutil.which("sipp")
    if sipp is None:
        raise IvrError("bench-soak needs sipp: apt-get install sip-tester")
    audio = load_synthesizer("piper", "").synthesize(QUESTION)
    question = trim_silence(resample(audio.samples, audio.sample_rate_hz, RATE_HZ))
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        work = Path(tmp)
        scenario = work / "caller.xml"
        scenario.write_text(SCENARIO.replace("{{CALL_MS}}", str(round(args.call_seconds * 1000))),
                            encoding="utf-8")
        port = free_port()
        args.extra_serve = ["--allow", f"{ALLOWED[0]}/32", "--rtp-timeout", "3"]
        args.serve_log = Path(args.json).with_suffix(".serve.log")
        args.serve_log.parent.mkdir(parents=True, exist_ok=True)
        args.serve_log.write_text("", encoding="utf-8")
        server = _start_serve(args, port, work / "calls", 3)
        time.sleep(2.0)
        samples = [{"t_s": 0.0, **usage_of(server.pid)}]
        hostile = HostileTraffic(port)
        started = time.monotonic()
        hostile.start()
        calls: list[dict[str, Any]] = []
        next_sample = started + SAMPLE_EVERY_S
        print(f"bench-soak: at least {args.calls} sequential calls and {args.minutes} min of mixed traffic; "
              f"server at start: {samples[0]}", flush=True)
        try:
            while len(calls) < args.calls or time.monotonic() - started < args.minutes * 60:
                if server.poll() is not None:
                    raise IvrError(f"ivr serve died (exit {server.returncode}) after {len(calls)} calls")
                calls.append(_soak_call(sipp, scenario, port, question, work))
                if time.monotonic() >= next_sample and server.poll() is None:
                    next_sample += SAMPLE_EVERY_S
                    samples.append({"t_s": round(time.monotonic() - started, 1), **usage_of(server.pid)})
                if len(calls) % 20 == 0:
                    done = sum(c["ok"] for c in calls)
                    print(f"  {len(calls)} calls ({done} right), {(time.monotonic() - started) / 60:.1f} min, "
                          f"server: {samples[-1]}", flush=True)
        finally:
            hostile.stop()
            time.sleep(12.0)  # hostile transactions time out before the last reading
            alive = server.poll() is None
            if alive:
                samples.append({"t_s": round(time.monotonic() - started, 1), **usage_of(server.pid)})
            else:
                print(f"ivr serve died; its output is in {args.serve_log}", flush=True)
            server.terminate()
            try:
                code = server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                code = -9
    lat = [c["latency_ms"] for c in calls if c["latency_ms"] is not None]
    report = {"benchmark": "bench-soak", "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "load_avg_1m": round(os.getloadavg()[0], 2)},
              "minutes": round((time.monotonic() - started) / 60, 1), "calls": len(calls),
              "calls_right": sum(c["ok"] for c in calls), "errors": [c["error"] for c in calls if c["error"]],
              "hostile_sent": hostile.sent, "server_alive_at_end": alive, "server_exit_code": code,
              "start": samples[0], "end": samples[-1],
              "max": {k: max(s[k] for s in samples) for k in ("open_files", "threads", "rss_mb")},
              "latency_ms": {"first_20_p50": _percentile(lat[:20], 0.5), "last_20_p50": _percentile(lat[-20:], 0.5),
                             "p50": _percentile(lat, 0.5), "p95": _percentile(lat, 0.95)},
              "samples": samples}
    return publish_report(report, args.json, _print_table)


def _print_table(r: dict[str, Any]) -> None:
    print()
    print(f"soak: {r['calls']} sequential calls, {r['calls_right']} right, {r['minutes']} min; hostile traffic: "
          + ", ".join(f"{k} {v}" for k, v in sorted(r["hostile_sent"].items())))
    print(f"{'server':14} {'open files':>11} {'threads':>8} {'RSS MB':>8}")
    for name in ("start", "end", "max"):
        s = r[name]
        print(f"{name:14} {s['open_files']:>11} {s['threads']:>8} {s['rss_mb']:>8.0f}")
    lat = r["latency_ms"]
    print(f"voice-to-voice p50 first 20 calls {lat['first_20_p50']:.0f} ms, last 20 {lat['last_20_p50']:.0f} ms; "
          f"all: p50 {lat['p50']:.0f}, p95 {lat['p95']:.0f} ms; server alive at the end: {r['server_alive_at_end']}, "
          f"exit code {r['server_exit_code']}")
