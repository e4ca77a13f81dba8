"""`ivr bench-sip`: voice-to-voice latency and concurrent-call capacity, measured over real SIP from the
caller's side.

The bench starts `ivr serve` in a subprocess and calls it with sipp (signalling only). Each caller's RTP
comes from this process (`CallerLine`, symmetric RTP on the port in sipp's SDP), so the bench knows
the exact moment the last packet of each spoken question left the caller, and the arrival of the
agent's first packet with speech after it: that gap is the voice-to-voice latency the caller hears.
A call: hear the greeting and menu out, ask "What is my account balance?", hear the answer out, say
"No, that's all, thank you.", hear the goodbye and the agent's BYE. Two latency samples per call.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ivr.bench import BEFORE, NOW
from ivr.callerside import QUESTIONS, QUIET_S, SPEECH_RMS, trim_silence
from ivr.callerside import percentile as _percentile
from ivr.config import SILENCE_ONLY
from ivr.errors import IvrError
from ivr.jsonreport import publish_report
from telephony.audio.g711 import mulaw_decode, mulaw_encode

RATE_HZ = 8000
PACKET_SAMPLES = 160
PACKET_S = 0.02
TARGET_P95_S = 1.0
RTP_OFFSET = 4
SERVE_START_TIMEOUT_S = 180

def in_dialog_request(method: str, cseq: int, retrans_ms: int | None = None) -> str:
    """A sipp <send> of the bench caller's request `method` inside the call (ACK, BYE)."""
    retrans = f' retrans="{retrans_ms}"' if retrans_ms is not None else ""
    return f"""  <send{retrans}>
    <![CDATA[
      {method} [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: "Bench" <sip:bench@[local_ip]:[local_port]>;tag=[call_number]
      To: <sip:ivr@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {cseq} {method}
      Contact: <sip:bench@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
"""


CALL_SETUP = """  <send retrans="500">
    <![CDATA[
      INVITE sip:ivr@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Bench" <sip:bench@[local_ip]:[local_port]>;tag=[call_number]
      To: <sip:ivr@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:bench@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=bench 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port+4] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=ptime:20
      a=sendrecv
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rtd="true" rrs="true"/>
""" + in_dialog_request("ACK", 1)
"""A sipp caller's INVITE (its SDP offers PCMU and RFC 4733 keys on [media_port+4], where the bench's own
CallerLine sends and listens) and ACK: the start of every bench scenario."""


def sipp_scenario(name: str, rest: str) -> str:
    """A sipp scenario: the call set-up, then `rest` (what the caller does once the call is up)."""
    return ('<?xml version="1.0" encoding="ISO-8859-1" ?>\n<!DOCTYPE scenario SYSTEM "sipp.dtd">\n'
            f'<scenario name="{name}">\n{CALL_SETUP}{rest}</scenario>\n')


SCENARIO = sipp_scenario("ivr bench caller (signalling only; RTP from the bench)", """\
  <recv request="BYE" timeout="120000"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
""")


def free_port(even: bool = False) -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if not even or port % 2 == 0:
            return port


def free_port_range(count: int, even: bool = False, tcp: bool = False) -> int:
    """A base port with base..base+count-1 free on 127.0.0.1 for UDP (and TCP too with `tcp`)."""
    kinds = (socket.SOCK_DGRAM, socket.SOCK_STREAM) if tcp else (socket.SOCK_DGRAM,)
    for _ in range(200):
        base = free_port(even=even)
        if base + count > 65535:
            continue
        socks = []
        try:
            for port in range(base, base + count):
                for kind in kinds:
                    s = socket.socket(socket.AF_INET, kind)
                    socks.append(s)
                    s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise IvrError(f"no range of {count} free ports")


def free_media_base() -> int:
    """An even base port with base..base+5 free (sipp's echo ports and the caller's RTP)."""
    return free_port_range(6, even=True)


MEDIA_PORTS = 6
_RESERVED: set[int] = set()
_RESERVING = threading.Lock()


def reserve_call_ports() -> tuple[int, int]:
    """(media base, sipp's SIP port) for one bench call, kept from the bench's other calls until
    `release_call_ports`: a port found free is only bound once sipp starts, and calls started together
    used to pick the same one ("Address already in use" at the third concurrent call)."""
    with _RESERVING:
        for _ in range(200):
            base, sip = free_media_base(), free_port()
            ports = {*range(base, base + MEDIA_PORTS), sip}
            if len(ports) == MEDIA_PORTS + 1 and not ports & _RESERVED:
                _RESERVED.update(ports)
                return base, sip
    raise IvrError("no free ports for a bench call")


def release_call_ports(base: int, sip: int) -> None:
    with _RESERVING:
        _RESERVED.difference_update({*range(base, base + MEDIA_PORTS), sip})


class CallerLine:
    """The caller's RTP: sends 20 ms PCMU packets (silence unless speaking) to wherever the agent's
    RTP comes from, and notes the arrival time of every agent packet and whether it carries speech."""

    def __init__(self, port: int) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", port))
        self._sock.setblocking(False)
        self.agent: tuple[str, int] | None = None
        self.heard: list[tuple[float, bool]] = []
        self._out: deque[bytes] = deque()
        self._sent_last = threading.Event()
        self.last_speech_sent = 0.0
        self._stop = threading.Event()
        self._seq, self._ts = 1, 0
        self._thread = threading.Thread(target=self._run, name=f"caller-{port}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        silence = mulaw_encode(np.zeros(PACKET_SAMPLES, np.int16))
        next_send = time.monotonic()
        while not self._stop.is_set():
            wait = max(0.0, next_send - time.monotonic())
            readable, _, _ = select.select([self._sock], [], [], wait)
            if readable:
                try:
                    data, addr = self._sock.recvfrom(2048)
                except OSError:
                    continue
                if len(data) > 12 and data[0] >> 6 == 2 and data[1] & 0x7F == 0:
                    self.agent = addr
                    pcm = mulaw_decode(data[12:]).astype(np.float64)
                    self.heard.append((time.monotonic(), float(np.sqrt(np.mean(pcm ** 2))) >= SPEECH_RMS))
                continue
            now = time.monotonic()
            if now < next_send:
                continue
            next_send += PACKET_S
            if next_send < now - 0.1:  # fell far behind: don't burst
                next_send = now + PACKET_S
            if self.agent is None:
                continue
            payload = self._out.popleft() if self._out else silence
            header = struct.pack("!BBHII", 0x80, 0, self._seq & 0xFFFF, self._ts & 0xFFFFFFFF, 0xB0B0B0B0)
            self._seq += 1
            self._ts += PACKET_SAMPLES
            try:
                self._sock.sendto(header + payload, self.agent)
            except OSError:
                continue
            if payload is not silence and not self._out:
                self.last_speech_sent = time.monotonic()
                self._sent_last.set()

    def say(self, samples: np.ndarray, timeout_s: float = 30.0) -> float:
        """Speak int16 8 kHz samples; returns the send time of the last packet."""
        pad = (-samples.size) % PACKET_SAMPLES
        data = mulaw_encode(np.concatenate([samples.astype(np.int16), np.zeros(pad, np.int16)]))
        self._sent_last.clear()
        self._out.extend(data[i:i + PACKET_SAMPLES] for i in range(0, len(data), PACKET_SAMPLES))
        if not self._sent_last.wait(timeout_s):
            raise TimeoutError("the caller's audio was not sent")
        return self.last_speech_sent

    def wait_agent_done(self, since: float, timeout_s: float, quiet_s: float = QUIET_S,
                        gone: Callable[[], bool] = lambda: False) -> bool:
        """Until the agent has spoken after `since` and then been quiet for quiet_s (False at the timeout,
        or once `gone()` says the call is over)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not gone():
            speech = [t for t, s in self.heard[-500:] if s and t > since]
            if speech and time.monotonic() - speech[-1] >= quiet_s:
                return True
            time.sleep(0.05)
        return False

    def first_speech_after(self, t0: float, timeout_s: float) -> float | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for t, speech in self.heard[-500:]:
                if speech and t > t0:
                    return t
            time.sleep(0.01)
        return None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


@dataclass
class CallResult:
    ok: bool
    refused: bool = False
    """The call was refused with 503 (admission): not a failure of the calls admitted."""
    latencies_s: list[float] = field(default_factory=list)
    error: str = ""


def _one_call(sipp: str, scenario: Path, port: int, questions: list[np.ndarray], work: Path,
              delay_s: float = 0.0) -> CallResult:
    time.sleep(delay_s)
    base, sip_port = reserve_call_ports()
    try:
        return _call_on(sipp, scenario, port, questions, work, base, sip_port)
    finally:
        release_call_ports(base, sip_port)


def _call_on(sipp: str, scenario: Path, port: int, questions: list[np.ndarray], work: Path, base: int,
             sip_port: int) -> CallResult:
    line = CallerLine(base + RTP_OFFSET)
    log_dir = Path(tempfile.mkdtemp(prefix="call-", dir=work))
    proc = subprocess.Popen([sipp, "-sf", str(scenario), f"127.0.0.1:{port}", "-m", "1", "-i", "127.0.0.1",
                             "-p", str(sip_port), "-mi", "127.0.0.1", "-mp", str(base), "-nostdin",
                             "-timeout", "150s", "-trace_err"], cwd=log_dir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    result = CallResult(ok=False)
    try:
        start = time.monotonic()
        if not line.wait_agent_done(start, 40, gone=lambda: proc.poll() is not None):
            errors = "".join(p.read_text(errors="replace") for p in log_dir.glob("*_errors.log"))
            result.refused = proc.poll() is not None and "SIP/2.0 503" in errors
            result.error = "refused (503)" if result.refused else "no greeting heard"
            return result
        for samples in questions:
            asked = line.say(samples)
            reply = line.first_speech_after(asked, 15)
            if reply is None:
                result.error = "no reply heard"
                return result
            result.latencies_s.append(reply - asked)
            line.wait_agent_done(asked, 40)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            result.error = "the agent did not hang up"
            return result
        result.ok = proc.returncode == 0
        if not result.ok:
            log = "".join(p.read_text(errors="replace") for p in log_dir.glob("*_errors.log"))
            result.error = f"sipp rc {proc.returncode}: {log.strip()[-300:]}"
        return result
    except Exception as exc:  # a bench call reports its failure and the bench goes on
        result.error = f"{type(exc).__name__}: {exc}"
        return result
    finally:
        end_bench_call(proc, line)


def end_bench_call(proc: subprocess.Popen[bytes], line: CallerLine) -> None:
    """After a bench call, however it went: sipp stopped, the caller's RTP line closed."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(5)
    line.close()


@dataclass
class Target:
    """The server a level calls: its SIP port, its process (CPU and memory of its tree), its calls' folder."""

    port: int
    pid: int | None = None
    out: Path | None = None


def _level(concurrency: int, calls: int, sipp: str, scenario: Path, target: Target, questions: list[np.ndarray],
           work: Path, stagger_s: float = 0.0) -> dict[str, Any]:
    """`calls` calls, `concurrency` at a time (started together, or the i-th of a wave i * `stagger_s` later:
    callers who all speak at the same moment are the worst case, not the usual one): the caller-side
    latencies, the calls that reached the right outcome (from the server's call folders), and the server's
    CPU and memory meanwhile."""
    from ivr.serve.proctree import TreeSampler

    results: list[CallResult] = []
    before = set(target.out.iterdir()) if target.out is not None and target.out.is_dir() else set()
    sampler = TreeSampler(target.pid).start() if target.pid else None
    started = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        remaining = calls
        while remaining > 0:
            wave = min(concurrency, remaining)
            results.extend(pool.map(lambda i: _one_call(sipp, scenario, target.port, questions, work,
                                                        delay_s=i * stagger_s), range(wave)))
            remaining -= wave
    wall_s = time.monotonic() - started
    load = sampler.stop() if sampler is not None else {}
    admitted = [r for r in results if not r.refused]
    latencies = [x for r in admitted for x in r.latencies_s]
    right = _right_outcomes(target.out, before) if target.out is not None else None
    return {"concurrency": concurrency, "calls": calls, "completed": sum(r.ok for r in results),
            "refused": sum(r.refused for r in results), "right": right,
            "cpu_cores": round(load["cpu_s"] / wall_s, 2) if load else None,
            "cpu_s_per_call_min": round(load["cpu_s"] / max(1e-9, _call_minutes(admitted, wall_s)), 1)
            if load and admitted else None,
            "peak_pss_mb": load.get("peak_pss_mb"),
            "errors": [r.error for r in results if r.error], "samples": len(latencies),
            "p50_ms": round(1000 * _percentile(latencies, 0.5), 1),
            "p95_ms": round(1000 * _percentile(latencies, 0.95), 1),
            "max_ms": round(1000 * max(latencies), 1) if latencies else float("nan"),
            "wall_s": round(wall_s, 1),
            "latencies_ms": [round(1000 * x, 1) for x in latencies]}


def _call_minutes(admitted: list[CallResult], wall_s: float) -> float:
    """The admitted calls' minutes, taking each call as the level's wall time (calls start together)."""
    return len(admitted) * wall_s / 60.0


RIGHT_NODE = "balance"
"""The bench caller asks for the balance, then says it is all set: the call is right when the balance
was answered and the agent ended the call as completed."""


def _right_outcomes(out: Path, before: set[Path]) -> int:
    """Calls in `out` since `before` that heard the balance and ended as completed."""
    right = 0
    for call_dir in sorted(set(out.iterdir()) - before) if out.is_dir() else []:
        events = call_dir / "events.jsonl"
        if not events.is_file():
            continue
        rows = [json.loads(line) for line in events.read_text(errors="replace").splitlines() if line.strip()]
        heard = any(r.get("type") == "dialog" and r.get("node") == RIGHT_NODE for r in rows)
        ended = [r for r in rows if r.get("type") == "call_ended"]
        right += heard and bool(ended) and ended[-1].get("reason") == "completed"
    return right


def _start_serve(args: argparse.Namespace, port: int, out_dir: Path, max_calls: int) -> subprocess.Popen[str]:
    """`ivr serve` for a bench; its output goes to args.serve_log when set (else it is read and dropped)."""
    log_path = getattr(args, "serve_log", None)
    verbose = ["-v"] if log_path else []
    cmd = [sys.executable, "-X", "faulthandler", "-m", "ivr", *verbose, "serve", "--port", str(port),
           "--out", str(out_dir), "--keep-call-files", "--rtp-port", str(free_port(even=True)),
           "--max-calls", str(max_calls), "--http-port", "0",
           "--grace", "0", *getattr(args, "extra_serve", ["--rtp-timeout", "0"])]
    if getattr(args, "shared_inference", False):
        cmd.append("--shared-inference")
    if getattr(args, "admit_budget_ms", None):
        cmd += ["--admit-budget-ms", str(args.admit_budget_ms)]
    for flag in ("config", "flow", "asr", "asr_model", "tts", "voice", "vad"):
        value = getattr(args, flag, None)
        if value:
            cmd += [f"--{flag.replace('_', '-')}", str(value)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.stdout is not None
    deadline = time.monotonic() + SERVE_START_TIMEOUT_S
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if log_path is not None:
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(line)
        if "listening on sip:" in line:
            threading.Thread(target=_drain, args=(proc, log_path), daemon=True).start()
            return proc
    proc.kill()
    raise IvrError("ivr serve did not start for the bench")


def _drain(proc: subprocess.Popen[str], log_path: Path | None) -> None:
    """Reads the server's output to its end, into log_path when given."""
    assert proc.stdout is not None
    if log_path is None:
        proc.stdout.read()
        return
    with open(log_path, "a", encoding="utf-8") as log:
        for line in proc.stdout:
            log.write(line)
            log.flush()


def run_bench_sip(args: argparse.Namespace) -> dict[str, Any]:
    from telephony.audio.resample import resample
    from telephony.sip.endpoint import MAX_ANSWERED_CALLS
    from tts.factory import load_synthesizer

    sipp = shutil.which("sipp")
    if sipp is None:
        raise IvrError("bench-sip needs sipp: apt-get install sip-tester")
    levels = [int(x) for x in args.ramp.split(",")] if args.ramp else []
    top = min(args.max_concurrency, MAX_ANSWERED_CALLS)
    if not levels:
        levels, c = [], 1
        while c < top:
            levels.append(c)
            c *= 2
        levels.append(top)
    synth = load_synthesizer("piper", "")
    questions = []
    for text in QUESTIONS:
        audio = synth.synthesize(text)
        questions.append(trim_silence(resample(audio.samples, audio.sample_rate_hz, RATE_HZ)))
    with tempfile.TemporaryDirectory(prefix="bench-sip-") as tmp:
        work = Path(tmp)
        scenario = work / "caller.xml"
        scenario.write_text(SCENARIO, encoding="utf-8")
        print(f"bench-sip: {args.calls} call(s) one at a time under each setting, then concurrency {levels} "
              f"({os.cpu_count()} CPUs)", flush=True)
        compared: dict[str, Any] = {}
        ramp: list[dict[str, Any]] = []
        for name in (BEFORE, NOW) if getattr(args, "compare", True) else (NOW,):
            port = free_port()
            out = work / f"calls-{name.split(':')[0]}"
            config = _setting_config(work, name, getattr(args, "config", None))
            server = _start_serve(argparse.Namespace(**{**vars(args), "config": config}), port, out, max(levels))
            try:
                target = Target(port, server.pid, out)
                single = _level(1, args.calls, sipp, scenario, target, questions, work)
                print(f"  {name}: 1 call at a time: p50 {single['p50_ms']:.0f} ms, p95 {single['p95_ms']:.0f} ms "
                      f"({single['samples']} replies, {single['completed']}/{single['calls']} calls)", flush=True)
                compared[name] = {"single": single, **_agent_side(out, single)}  # before the ramp's calls
                if name == NOW:
                    ramp = _ramp(levels, sipp, scenario, target, questions, work, getattr(args, "stagger", 0.0))
            finally:
                _stop(server)
    now = compared[NOW]
    held = [r["concurrency"] for r in ramp
            if r["p95_ms"] <= TARGET_P95_S * 1000 and r["completed"] == r["calls"] and not r["refused"]]
    report = {"benchmark": "bench-sip", "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
              "measured": "end of the caller's last RTP packet of speech to the first agent RTP packet with "
                          f"speech (RMS >= {SPEECH_RMS:.0f}), seen from the caller over SIP/RTP on loopback",
              "single": now["single"], "ramp": ramp, "agent_side": now["agent_side"], "settings": compared,
              "max_concurrent_calls_p95_under_1s": max(held) if held else 0,
              "process_call_limit": MAX_ANSWERED_CALLS}
    return publish_report(report, args.json, _print_table)


def _setting_config(work: Path, name: str, config: str | None) -> str | None:
    """The --config of `ivr serve` for a setting: the agent as it ran before (SILENCE_ONLY, no prompt cache;
    JSON is YAML), or the bench's own --config (or none)."""
    if name != BEFORE:
        return config
    path = work / "before.yaml"
    path.write_text(json.dumps({"tts_cache_dir": "", "call": SILENCE_ONLY}), encoding="utf-8")
    return str(path)


def _ramp(levels: list[int], sipp: str, scenario: Path, target: Target, questions: list[np.ndarray],
          work: Path, stagger_s: float = 0.0) -> list[dict[str, Any]]:
    ramp = []
    for c in levels:
        row = _level(c, c, sipp, scenario, target, questions, work, stagger_s)
        row["stagger_s"] = stagger_s
        ramp.append(row)
        print(f"  {c} concurrent: p50 {row['p50_ms']:.0f} ms, p95 {row['p95_ms']:.0f} ms, "
              f"{row['completed']}/{row['calls']} calls completed, {row['refused']} refused, "
              f"{row['right']} right; {row['cpu_cores']} cores busy, {row['peak_pss_mb']} MB", flush=True)
        if row["completed"] + row["refused"] < row["calls"]:
            break
    return ramp


def _stop(server: subprocess.Popen[str]) -> None:
    server.terminate()
    try:
        server.wait(20)
    except subprocess.TimeoutExpired:
        server.kill()


def _agent_side(out: Path, single: dict[str, Any]) -> dict[str, Any]:
    """The server's own view of its calls (events.jsonl): each reply's stages, and the transport: what the
    caller heard (p50) beyond the session's own end of turn to first reply frame (p50)."""
    from ivr.call.events import from_dict
    from ivr.call.stages import reply_stages, summarize
    from ivr.report.calls import CallDirSource

    rows: list[dict[str, float]] = []
    for call in CallDirSource(out).calls():
        rows.extend(reply_stages(map(from_dict, call.events)))
    stages = summarize(rows)
    if "total" in stages and single["samples"]:
        stages["transport"] = {q: round(single[f"{q}_ms"] - stages["total"][q], 1) for q in ("p50", "p95")}
        stages["transport"]["mean"] = stages["transport"]["p50"]
    totals = [r["total"] / 1000 for r in rows]
    return {"stages": stages, "agent_side": {
        "samples": len(totals), "p50_ms": round(1000 * _percentile(totals, 0.5), 1),
        "p95_ms": round(1000 * _percentile(totals, 0.95), 1),
        "measured": "the session's own end of turn to its first reply frame, the calls one at a time"}}


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def _print_table(report: dict[str, Any]) -> None:
    print()
    print(f"{'SIP voice-to-voice (caller side)':36} {'calls':>6} {'replies':>8} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'max ms':>8} {'done':>6} {'503':>4} {'right':>6} {'cores':>6} {'cpu s/min':>9} {'PSS MB':>7}")
    rows = [("1 call at a time", report["single"])] + [(f"{r['concurrency']} concurrent", r)
                                                         for r in report["ramp"]]
    for name, r in rows:
        print(f"{name:36} {r['calls']:>6} {r['samples']:>8} {r['p50_ms']:>8.0f} {r['p95_ms']:>8.0f} "
              f"{r['max_ms']:>8.0f} {r['completed']:>3}/{r['calls']:<2} {r.get('refused', 0):>4} "
              f"{_cell(r.get('right')):>6} {_cell(r.get('cpu_cores')):>6} {_cell(r.get('cpu_s_per_call_min')):>9} "
              f"{_cell(r.get('peak_pss_mb')):>7}")
    agent = report["agent_side"]
    print(f"{'agent side (session end of turn)':36} {'':>6} {agent['samples']:>8} {agent['p50_ms']:>8.0f} "
          f"{agent['p95_ms']:>8.0f}")
    from ivr.call.stages import STAGES, table_lines

    settings = report.get("settings", {})
    if settings:
        print("\nper stage, one call at a time (transport: what the caller heard beyond the session's total)")
        for name, setting in settings.items():
            print(f"  {name}: caller side p50 {setting['single']['p50_ms']:.0f} ms, "
                  f"p95 {setting['single']['p95_ms']:.0f} ms")
        print("\n".join(table_lines({n: s["stages"] for n, s in settings.items()}, (*STAGES, "transport"))))
    print(f"most concurrent calls with p95 under 1 s: {report['max_concurrent_calls_p95_under_1s']} "
          f"(one process answers at most {report['process_call_limit']})")



