"""`ivr bench --parts web`: voice-to-voice latency of the web channel, measured from the caller's side as
bench-sip measures a phone call.

The bench starts `ivr console --preload-agent` in a subprocess (a temporary store and user), logs in over
HTTP and places calls one at a time from a Python WebRTC caller (`ivr.webcall.client.WebCaller`, aiortc on
loopback) through the console's offer endpoint, as the page does. A call: hear the greeting and menu out,
ask "What is my account balance?", hear the answer out, say "No, that's all, thank you.", hear the goodbye.
The latency of a reply is from the moment the caller's last frame of speech left (handed to its Opus
encoder) to the arrival of the agent's first frame with speech after it: two samples per call.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import math
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ivr.callerside import QUESTIONS, QUIET_S, SPEECH_RMS, percentile, trim_silence
from ivr.errors import IvrError

if TYPE_CHECKING:
    from ivr.webcall.client import WebCaller

PROMPT_LIMIT_S = 60.0
START_TIMEOUT_S = 180.0
QUESTION_RATE_HZ = 16000
USER = "bench"


class ConsoleSession:
    """A logged-in supervisor of a console: posts offers as the web call page does (blocking urllib)."""

    def __init__(self, base: str, user: str, password: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        login = self._get("/login")
        token = _attribute(login, r'name="csrf" value="([^"]+)"')
        form = urllib.parse.urlencode({"csrf": token, "username": user, "password": password, "next": "/webcall"})
        page = self.opener.open(urllib.request.Request(base + "/login", data=form.encode(), method="POST"),
                                timeout=30).read().decode()
        self.csrf = _attribute(page, r'data-csrf="([^"]+)"')

    def _get(self, path: str) -> str:
        return str(self.opener.open(self.base + path, timeout=30).read().decode())

    def offer(self, sdp: str, kind: str) -> dict[str, Any]:
        request = urllib.request.Request(self.base + "/api/webcall/offer", method="POST",
                                         data=json.dumps({"sdp": sdp, "type": kind}).encode(),
                                         headers={"Content-Type": "application/json", "X-CSRF-Token": self.csrf})
        with self.opener.open(request, timeout=START_TIMEOUT_S) as response:
            answer: dict[str, Any] = json.loads(response.read())
        return answer


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _attribute(html: str, pattern: str) -> str:
    match = re.search(pattern, html)
    if match is None:
        raise IvrError("the console's page is not what the web bench expects (not logged in?)")
    return match.group(1)


async def ask(caller: WebCaller, question: np.ndarray) -> float | None:
    """Say `question`; the time from its last frame leaving to the agent's first speech arriving. None: no
    answer in time; NaN: the agent was still speaking while the caller asked (a pause in a prompt longer than
    QUIET_S, under load), so that reply's latency cannot be measured."""
    asked = len(caller.voice.spoke_until)
    caller.voice.say(question, QUESTION_RATE_HZ)
    if not await caller.wait_for(lambda: len(caller.voice.spoke_until) > asked, PROMPT_LIMIT_S):
        return None
    since = caller.voice.spoke_until[-1]
    overlap = caller.first_speech_after(since - question.size / QUESTION_RATE_HZ)
    if not await caller.wait_for(lambda: caller.first_speech_after(since) is not None, PROMPT_LIMIT_S):
        return None
    if overlap is not None and overlap <= since:
        return math.nan
    heard = caller.first_speech_after(since)
    return None if heard is None else 1000.0 * (heard - since)


async def one_call(session: ConsoleSession, questions: list[np.ndarray]) -> dict[str, Any]:
    from ivr.webcall.client import WebCaller

    caller = WebCaller()
    try:
        await caller.call(lambda sdp, kind: asyncio.to_thread(session.offer, sdp, kind))
        latencies: list[float] = []
        since = 0.0
        for question in questions:
            if not await caller.until_quiet(QUIET_S, PROMPT_LIMIT_S, since):
                break
            latency_ms = await ask(caller, question)
            if latency_ms is None:
                break
            latencies.append(latency_ms)
            since = caller.voice.spoke_until[-1]
        completed = await caller.wait_for(caller.bye.is_set, PROMPT_LIMIT_S)
        ended = caller.of_type("ended")
        return {"latencies_ms": latencies, "completed": completed and len(latencies) == len(questions),
                "outcome": ended[-1]["outcome"] if ended else "", "nodes": sorted(
                    {m["node"] for m in caller.of_type("state") if m.get("node")})}
    finally:
        caller.hang_up()
        await caller.close()


def start_console(work: Path, port: int, config: str | None) -> tuple[subprocess.Popen[bytes], str]:
    """`ivr console --preload-agent` over a store in `work`, with one supervisor: (the process, the supervisor's
    password), once it answers."""
    password = secrets.token_urlsafe(24)
    env = {**os.environ, "IVR_DB_URL": f"sqlite:///{work}/ivr.db", "IVR_DATA_DIR": str(work / "store"),
           "IVR_RECORDING_KEY_FILE": str(work / "recording.key"), "IVR_NEW_PASSWORD": password}
    subprocess.run([sys.executable, "-m", "ivr", "console", "adduser", USER, "--role", "supervisor"], env=env,
                   check=True, stdout=subprocess.DEVNULL)
    log = (work / "console.log").open("wb")
    extra = ["--config", config] if config else []
    proc = subprocess.Popen([sys.executable, "-m", "ivr", "console", "--port", str(port), "--preload-agent",
                             "--web-calls-dir", str(work / "calls"), "--keep-call-files", "--no-chat", *extra],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).close()
            return proc, password
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise IvrError(f"ivr console did not start: {(work / 'console.log').read_text(errors='replace')[-2000:]}")


def bench_web(n_calls: int, config: str | None = None) -> dict[str, Any]:
    """Web calls one at a time through a console subprocess: {"calls", "completed", "samples", "p50_ms", ...}."""
    from telephony.audio.resample import resample
    from telephony.webrtc import require_aiortc
    from tts.factory import load_synthesizer

    require_aiortc()
    synth = load_synthesizer("piper", "")
    questions = []
    for text in QUESTIONS:
        audio = synth.synthesize(text)
        samples = resample(audio.samples, audio.sample_rate_hz, QUESTION_RATE_HZ)
        questions.append(trim_silence(samples, QUESTION_RATE_HZ))
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        port = free_tcp_port()
        server, password = start_console(Path(tmp), port, config)
        try:
            session = ConsoleSession(f"http://127.0.0.1:{port}", USER, password)
            calls = [asyncio.run(one_call(session, questions)) for _ in range(n_calls)]
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
        agent = [ms for meta in Path(tmp, "calls").glob("*/web.json")
                 for ms in json.loads(meta.read_text(encoding="utf-8"))["voice_to_voice_ms"]]
    measured = [ms for call in calls for ms in call["latencies_ms"]]
    latencies = [ms for ms in measured if not math.isnan(ms)]
    return {"calls": n_calls, "completed": sum(1 for c in calls if c["completed"]), "samples": len(latencies),
            "overlapped": len(measured) - len(latencies),
            "p50_ms": round(percentile(latencies, 0.5), 1), "p95_ms": round(percentile(latencies, 0.95), 1),
            "latencies_ms": [round(ms, 1) for ms in latencies], "outcomes": [c["outcome"] for c in calls],
            "agent_side": {"samples": len(agent), "p50_ms": round(percentile(agent, 0.5), 1),
                           "p95_ms": round(percentile(agent, 0.95), 1),
                           "measured": "the server's own reply latency (its end of the caller's turn to its first "
                                       "agent frame), from the calls' web.json"},
            "measured": "end of the caller's last 20 ms frame of speech (handed to its Opus encoder) to the first "
                        f"agent frame with speech (RMS >= {SPEECH_RMS:.0f}) received, seen from a Python WebRTC "
                        "caller (aiortc) through the console's offer endpoint on loopback"}
