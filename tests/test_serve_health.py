"""`ivr serve`'s HTTP side without SIP: /healthz, /readyz, /metrics, a hostile peer on that port, the
metrics a call's events produce, and the front routing only to workers whose /readyz is 200."""

from __future__ import annotations

import contextlib
import socket
import sys
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client import REGISTRY

from ivr.call import events as ev
from ivr.call.stages import StageTracker, reply_stages
from ivr.serve import metrics
from ivr.serve.bench import free_port, free_port_range
from ivr.serve.children import Child
from ivr.serve.front import READY_LINE, Supervisor
from ivr.serve.health import HealthServer, Readiness
from telephony.sip.config import SipConfig


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def health():
    readiness = Readiness("models", "sip", "store")
    server = HealthServer("127.0.0.1", 0, readiness).start()
    yield server
    server.stop()


def test_readyz_is_503_until_every_check_passes_and_healthz_always_200(health):
    assert _get(health.url + "/healthz") == (200, b"ok\n")
    status, body = _get(health.url + "/readyz")
    assert status == 503 and b'"models": false' in body
    health.readiness.set("models", True)
    health.readiness.set("sip", lambda: True)
    assert _get(health.url + "/readyz")[0] == 503  # the store has not answered yet
    health.readiness.set("store", lambda: True)
    assert _get(health.url + "/readyz")[0] == 200
    health.readiness.set("sip", lambda: 1 / 0)  # a check that raises counts as not ready
    assert _get(health.url + "/readyz")[0] == 503
    assert _get(health.url + "/nope")[0] == 404


def test_metrics_are_prometheus_text_with_units_and_total_suffixes(health):
    status, body = _get(health.url + "/metrics")
    text = body.decode()
    assert status == 200
    for name in ("ivr_calls_active", "ivr_calls_answered_total", "ivr_voice_to_voice_seconds_bucket",
                 "ivr_asr_seconds_count", "ivr_tts_seconds_count", "ivr_nlu_seconds_count"):
        assert f"\n{name}" in text, name


def test_a_hostile_peer_on_the_http_port_does_not_stop_it(health, capfd):
    host, port = health.httpd.server_address[:2]
    for junk in (b"\x00\xff" * 5000, b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", b"POST /readyz HTTP/1.1\r\n"
                 b"Content-Length: 99999999\r\n\r\nx", b"GET /metrics HTTP/1.1\r\nHost: x\r\n" * 200):
        with socket.create_connection((str(host), port), timeout=5) as sock:
            sock.sendall(junk)
            sock.settimeout(5)
            with contextlib.suppress(OSError):
                sock.recv(100)
    silent = socket.create_connection((str(host), port), timeout=5)  # says nothing: dropped after a timeout
    try:
        assert _get(health.url + "/healthz")[0] == 200
    finally:
        silent.close()
    assert "Traceback" not in capfd.readouterr().err  # garbage costs a debug line, not a stack trace


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _reply_events(t0: float, transcript_after_ms: float) -> list[ev.CallEvent]:
    return [ev.SpeechStarted(onset_ms=t0, t_ms=t0),
            ev.SpeechStopped(onset_ms=t0, end_ms=t0 + 1000, t_ms=t0 + 1300),
            ev.Transcript(text="my balance please", confidence=0.9, t_ms=t0 + 1300 + transcript_after_ms),
            ev.NluResult(intent="balance", confidence=0.9, faq="", faq_score=0.0, latency_ms=15.0,
                         t_ms=t0 + 1320 + transcript_after_ms),
            ev.DialogStep(event="intent", node="balance", t_ms=t0 + 1325 + transcript_after_ms),
            ev.ReplyStarted(turn_end_ms=t0 + 1000, latency_ms=380.0 + transcript_after_ms,
                            t_ms=t0 + 1380 + transcript_after_ms)]


def test_a_calls_events_become_counters_and_latency_histograms():
    before = {name: _value(name) for name in ("ivr_turns_total", "ivr_voice_to_voice_seconds_count",
                                              "ivr_voice_to_voice_seconds_sum", "ivr_rtp_timeouts_total")}
    escalated = _value("ivr_escalations_total", reason="negative-emotion")
    requested = _value("ivr_transfers_total", reason="caller-request")
    asr_fallbacks = _value("ivr_model_fallbacks_total", component="asr")
    tracker = StageTracker()
    events = [*_reply_events(0.0, 0.0), *_reply_events(5000.0, 250.0), ev.AsrFailed(error="boom"),
              ev.RtpTimeout(after_s=30.0),
              ev.CallEnded(outcome="transferred", reason="negative-emotion", target="sip:queue@agents")]
    for event in events:
        metrics.observe(tracker, event)
    metrics.observe(StageTracker(), ev.CallEnded(outcome="transferred", reason="caller-request", target=""))
    assert _value("ivr_turns_total") - before["ivr_turns_total"] == 2
    assert _value("ivr_voice_to_voice_seconds_count") - before["ivr_voice_to_voice_seconds_count"] == 2
    assert _value("ivr_voice_to_voice_seconds_sum") - before["ivr_voice_to_voice_seconds_sum"] == pytest.approx(1.01)
    assert _value("ivr_rtp_timeouts_total") - before["ivr_rtp_timeouts_total"] == 1
    assert _value("ivr_model_fallbacks_total", component="asr") - asr_fallbacks == 1
    assert _value("ivr_escalations_total", reason="negative-emotion") - escalated == 1
    assert _value("ivr_transfers_total", reason="caller-request") - requested == 1  # asked for: no escalation
    assert _value("ivr_escalations_total", reason="caller-request") == 0
    # the live tracker and the report read the same stages
    assert [row["asr"] for row in reply_stages(events)] == [0.0, 250.0]


class _Rpc:
    def __init__(self) -> None:
        self.calls: list[tuple[int, bool, bool]] = []

    def set_worker(self, host: str, port: int, up: bool, hold: bool = False) -> bool:
        self.calls.append((port, up, hold))
        return True


def test_the_front_routes_only_to_workers_whose_readyz_is_200():
    sleeper = f"import time\nprint('ivr serve: {READY_LINE}x', flush=True)\ntime.sleep(120)\n"
    supervisor = Supervisor(SipConfig(bind="127.0.0.1", port=free_port(), max_calls=6), ["serve"])
    checks = [Readiness("models"), Readiness("models")]
    servers = [HealthServer("127.0.0.1", free_port_range(1, tcp=True), r).start() for r in checks]
    supervisor.http_ports = [s.httpd.server_address[1] for s in servers]
    supervisor.workers = [Child(f"worker {i}", [sys.executable, "-c", sleeper], ready_line=READY_LINE)
                          for i in range(2)]
    front = Child("front", [sys.executable, "-c", "import time; time.sleep(120)"])
    rpc = _Rpc()
    supervisor.rpc = rpc  # type: ignore[assignment]
    try:
        for worker in [*supervisor.workers, front]:
            worker.spawn()
        front.mark_ready()
        supervisor.front = front
        deadline = time.monotonic() + 30
        while not all(w.ready for w in supervisor.workers):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert not supervisor.worker_ready(0) and not supervisor.ready()  # listening, models not loaded
        checks[0].set("models", True)
        checks[1].set("models", True)
        supervisor.routable = [False, False]
        supervisor.tick()
        assert supervisor.routable == [True, True] and supervisor.ready()
        checks[1].set("models", False)  # worker 1 runs, answers SIP pings, but is not ready
        supervisor._readiness_checked = 0.0
        supervisor.tick()
        assert supervisor.routable == [True, False]
        assert rpc.calls[-1] == (supervisor.ports[1], False, True)  # disabled: the pings do not bring it back
        assert supervisor.status().startswith("1/2 workers up")
        checks[1].set("models", True)
        supervisor._readiness_checked = 0.0
        supervisor.tick()
        assert rpc.calls[-1] == (supervisor.ports[1], True, False) and supervisor.routable == [True, True]
    finally:
        supervisor.kill()
        front.kill(timeout_s=5)
        for server in servers:
            server.stop()
