"""The shared inference service (`ivr infer`): one set of models for every call worker of a machine.

The protocol parts run on an in-process service over canned models; the calls use the real service
process with the real models: a caller whose service dies mid-call hears a re-prompt, not silence, and two
SIP workers behind the Kamailio front answer their callers from one service.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client
from pathlib import Path

import numpy as np
import pytest

from ivr.call.events import AsrFailed, ReplyStarted, Said, SpeechStarted
from ivr.call.services import Services
from ivr.config import AgentConfig
from ivr.infer import READY_LINE
from ivr.infer.client import InferenceClient, InferenceUnavailable, RemoteRecognizer
from ivr.infer.server import Scheduler
from ivr.simulate import simulate_call
from telephony.wavfile import CallerTurn, ScriptedCaller
from tests.fakes import canned_inference
from tts.factory import load_synthesizer
from tts.stream import speak

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 300


# ---- the protocol, on canned models -------------------------------------------------------------------

@pytest.fixture
def canned_service(tmp_path):
    with canned_inference(tmp_path / "infer.sock", "what is my balance") as service:
        yield service


def test_two_workers_are_answered_by_one_service(canned_service):
    first, second = InferenceClient(canned_service.path), InferenceClient(canned_service.path)
    hello = first.connect()
    assert hello.asr_name == "canned" and hello.tts_engine == "espeak-ng" and hello.pid == os.getpid()
    second.connect()
    samples = np.zeros(8000, np.int16)
    with ThreadPoolExecutor(4) as pool:
        texts = list(pool.map(lambda c: RemoteRecognizer(c, hello).transcribe(samples, 8000).text,
                              [first, second] * 4))
    assert texts == ["what is my balance"] * 8
    audio = np.concatenate([piece.samples for piece in first.stream("tts", "Your balance is ten dollars.")])
    assert audio.size > 8000 and np.abs(audio).max() > 1000  # speech, streamed back in pieces
    stats = first.call("stats")
    assert stats["workers"] == 2 and stats["served"]["asr"] == 8


def test_a_peer_without_the_key_is_refused_and_the_others_go_on(canned_service):
    with pytest.raises(AuthenticationError):
        Client(str(canned_service.path), family="AF_UNIX", authkey=b"not the key")
    client = InferenceClient(canned_service.path)
    client.connect()
    raw = Client(str(canned_service.path), family="AF_UNIX", authkey=canned_service.key)
    raw.send(("not", "a", "request"))  # malformed: that connection is closed, nothing else
    with pytest.raises(EOFError):
        raw.recv()
    assert client.call("stats")["workers"] == 1


def test_a_service_that_goes_away_fails_fast_and_is_reconnected(tmp_path):
    client = InferenceClient(tmp_path / "none.sock")
    started = time.monotonic()
    with pytest.raises(InferenceUnavailable, match="no inference service"):
        client.call("asr", b"", 8000, None)
    assert time.monotonic() - started < 1.0  # a caller hears the fallback at once, not after a timeout
    assert not client.available()


def test_the_nearest_deadline_runs_first():
    order: list[str] = []
    gate = threading.Event()

    def run(job):
        if job.op == "first":
            gate.wait(5)
        order.append(job.op)

    scheduler = Scheduler(run, threads=1)

    class Peer:
        closed = False

    scheduler.submit("first", (), 0.0, Peer(), 1)
    time.sleep(0.1)  # the only thread is busy with it
    scheduler.submit("presynthesis", (), 60.0, Peer(), 2)
    scheduler.submit("emotion", (), 1.5, Peer(), 3)
    scheduler.submit("turn", (), 0.5, Peer(), 4)
    gate.set()
    deadline = time.monotonic() + 5
    while len(order) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    scheduler.stop()
    assert order == ["first", "turn", "emotion", "presynthesis"]


def test_a_turns_nlu_does_not_wait_behind_other_calls_decodes():
    """Both shared threads decode other callers' turns; this caller's NLU and voice emotion still run at
    once, on the short lane, and the next decode waits for a shared thread."""
    done: dict[str, float] = {}
    release = threading.Event()

    def run(job):
        if job.op == "asr":
            release.wait(5)
        done[f"{job.op}-{job.request_id}"] = time.monotonic()

    scheduler = Scheduler(run, threads=2)

    class Peer:
        closed = False

    started = time.monotonic()
    for request_id in (1, 2, 3):
        scheduler.submit("asr", (), 0.5, Peer(), request_id)
    time.sleep(0.1)
    scheduler.submit("nlu", (), 0.05, Peer(), 4)
    scheduler.submit("emotion.voice", (), 0.5, Peer(), 5)
    deadline = time.monotonic() + 2
    while len(done) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert set(done) == {"nlu-4", "emotion.voice-5"}
    assert max(done.values()) - started < 1.0
    release.set()
    deadline = time.monotonic() + 5
    while len(done) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    scheduler.stop()
    assert {"asr-1", "asr-2", "asr-3"} <= set(done)


# ---- the real service ---------------------------------------------------------------------------------

def start_service(sock: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "ivr", "infer", "--socket", str(sock)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if READY_LINE in line:
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return proc
    proc.kill()
    raise AssertionError("ivr infer did not start:\n" + "".join(lines[-20:]))


@pytest.mark.models
def test_killing_the_service_mid_call_ends_in_a_reprompt_not_silence(tmp_path):
    service = start_service(tmp_path / "infer.sock")
    try:
        services = Services.load(AgentConfig(), inference=str(tmp_path / "infer.sock"))
        assert services.inference is not None and services.recognizer.name == "whisper"
        piper = load_synthesizer("piper", "")

        def say(text: str, rate_hz: int) -> np.ndarray:
            return np.concatenate(list(speak(piper, text, rate_hz)))

        turns = [CallerTurn(say="What is my account balance?"), CallerTurn(say="What is my account balance?")]
        killed: list[float] = []

        def kill_at_first_words(event):
            if isinstance(event, SpeechStarted) and not killed:
                service.kill()
                service.wait(10)
                killed.append(event.t_ms)

        call = simulate_call(services, caller=ScriptedCaller(turns, 8000, speak=say), fast=True,
                             listener=kill_at_first_words)
    finally:
        service.kill()
    assert killed, "the caller never spoke"
    assert call.session.log.of_type(AsrFailed)  # the turn could not be recognized: the service was gone
    after = [e for e in call.session.log.of_type(Said) if e.t_ms > killed[0]]
    assert after, "the caller heard nothing after the service died"
    agent = np.concatenate([f.samples() for f in call.caller.agent_frames]).astype(np.float64)
    tail = agent[int(killed[0] / 1000 * 8000):]
    assert np.sqrt(np.mean(tail ** 2)) > 100  # the re-prompt was spoken (the local fallback voice)
    assert "didn't catch that" in after[0].text  # a re-prompt, at once
    replies = [e for e in call.session.log.of_type(ReplyStarted) if e.t_ms > killed[0]]
    assert replies and replies[0].latency_ms < 2000


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("kamailio", path="/usr/sbin:/sbin:" + os.environ.get("PATH", "")) is None
                    or shutil.which("sipp") is None, reason="needs kamailio and sipp (scripts/setup.sh installs both)")
def test_two_sip_workers_behind_the_front_share_one_service(tmp_path):
    report, log = tmp_path / "bench.json", tmp_path / "serve.log"
    proc = subprocess.run([sys.executable, "-m", "ivr", "bench-sip", "--calls", "1", "--ramp", "4",
                           "--shared-inference", "--no-compare", "--json", str(report), "--serve-log", str(log)],
                          cwd=ROOT,
                          capture_output=True, text=True, timeout=900, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    import json

    result = json.loads(report.read_text())
    level = result["ramp"][0]
    assert level["completed"] == 4 and level["right"] == 4, level["errors"]
    assert result["single"]["right"] == 1
    assert re.search(r"4 concurrent: .* 4 right", proc.stdout)
    assert level["peak_pss_mb"] > 0 and level["cpu_cores"] > 0
    served = log.read_text()
    for worker in ("worker 0", "worker 1"):  # both workers answered calls...
        assert re.search(rf"\[{worker}\] .*answering", served)
    stopped = re.search(r"\[inference\] ivr infer: stopped after \d+ requests \((.*)\) from at most (\d+) workers",
                        served)
    assert stopped and int(stopped[2]) == 2  # ...with the models of one service, which both used
    asr = re.search(r"(\d+) asr", stopped[1])
    assert asr and int(asr[1]) >= 10  # every caller turn of the 5 calls was recognized there
