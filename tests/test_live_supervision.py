"""Live supervision without a browser: when a caller counts as upset (stored as it happens), the call.upset
alert through the webhook outbox (once per upset call, none for a calm one, no caller words or number), the
live audio spool the console tails (encrypted, bounded, never blocking the call), and the listen socket's
refusals (no login, another site's page, no CSRF token)."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from ivr.console.app import create_app
from ivr.store import CallFilter, Store, StoreWriter
from ivr.store.hookevents import WebhookOptions
from ivr.store.liveaudio import QUEUE_TICKS, LiveSpool, LiveTail, is_spooling, spool_path
from ivr.store.outbox import OutboxWorker
from ivr.store.upset import UpsetRule
from telephony.audio.frame import Frame
from tests.console_client import PASSWORD, csrf_of, login
from tests.test_store_support import TEST_KEY, call_events, console_store, postgres_server, store_config

RATE_HZ = 8000


def emotion_call(call_id: str, turns: list[tuple[str, float]], ended: bool = True) -> list[dict[str, Any]]:
    """A call whose caller turns have these (label, negativity) emotions, as CallSession logs them."""
    events = call_events(call_id, ["my account is 12345678, +1 555 010 4477"] * len(turns), ended=ended)
    out: list[dict[str, Any]] = []
    left = list(turns)
    for event in events:
        out.append(event)
        if event["type"] == "transcript":
            label, negativity = left.pop(0)
            out.append({"t_ms": event["t_ms"] + 10, "type": "emotion", "label": label, "negativity": negativity,
                        "scores": {label: 0.9}})
    return out


def write(store: Any, events: list[dict[str, Any]], **options: Any) -> StoreWriter:
    writer = StoreWriter(store, source="sip", caller="+1 555 010 4477", background=False, **options)
    writer.apply([(datetime.now(UTC), e) for e in events])
    assert not writer.failed
    return writer


@pytest.fixture
def store(tmp_path):
    with console_store(tmp_path, PASSWORD) as s:
        yield s


def test_a_caller_becomes_upset_at_the_flows_threshold_or_on_an_angry_turn(store):
    write(store, emotion_call("calm", [("neutral", 0.1), ("sad", 0.4), ("neutral", 0.2)], ended=False))
    # smoothed 0.5 then 0.5 + 0.5 * (0.9 - 0.5) = 0.7 >= 0.6 on the second turn
    write(store, emotion_call("rising", [("sad", 0.5), ("sad", 0.9)], ended=False))
    write(store, emotion_call("angry", [("angry", 0.3)], ended=False))
    strict = UpsetRule(threshold=0.8, smoothing=0.5)
    write(store, emotion_call("below-strict", [("sad", 0.5), ("sad", 0.9)], ended=False), upset=strict)
    calls = {c["id"]: c for c in store.list_calls(CallFilter())}
    # smoothed over the turns: 0.1, 0.25, 0.225
    assert calls["calm"]["upset_at"] is None and calls["calm"]["smoothed_negativity"] == pytest.approx(0.225)
    assert calls["rising"]["upset_at"] is not None and calls["rising"]["smoothed_negativity"] == pytest.approx(0.7)
    assert calls["angry"]["upset_at"] is not None
    assert calls["below-strict"]["upset_at"] is None  # 0.7 is under this flow's 0.8


def test_the_rule_comes_from_the_flow():
    from dialog.flow import load_default_flow

    flow = load_default_flow()
    rule = UpsetRule.from_flow(flow)
    escalation = flow.settings.escalate_on_negative_emotion
    assert rule.threshold == (escalation.threshold if escalation else 0.6)
    assert rule.smoothing == flow.settings.emotion_smoothing
    assert UpsetRule.from_flow(None) == UpsetRule()


class Receiver(ThreadingHTTPServer):
    """A local webhook receiver that keeps every body it gets."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                outer.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/alerts"


def test_the_alert_webhook_fires_once_for_an_upset_call_and_not_for_a_calm_one(store):
    receiver = Receiver()
    worker = OutboxWorker(store, receiver.url, b"secret", poll_s=0.05)
    worker.start()
    try:
        options = WebhookOptions(console_url="https://console.example.com", wake=worker.wake)
        write(store, emotion_call("upset-call", [("angry", 0.9), ("angry", 0.95), ("sad", 0.8)]), webhooks=options)
        write(store, emotion_call("calm-call", [("neutral", 0.1), ("happy", 0.0)]), webhooks=options)
        deadline = time.monotonic() + 20
        while sum(b["type"] == "call.ended" for b in receiver.bodies) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
        receiver.shutdown()
    alerts = [b for b in receiver.bodies if b["type"] == "call.upset"]
    assert [a["call_id"] for a in alerts] == ["upset-call"]  # once, though three turns were upset
    data = alerts[0]["data"]
    assert data["label"] == "angry" and data["negativity"] == pytest.approx(0.9) and data["threshold"] == 0.6
    assert data["call_url"] == "https://console.example.com/calls/upset-call"
    assert set(data) == {"label", "negativity", "threshold", "why", "upset_at", "caller_turns", "call_url"}
    body = json.dumps(alerts)
    assert "account" not in body and "4477" not in body and "555" not in body and "12345678" not in body


def frame(value: int, n: int = 160) -> Frame:
    return Frame(np.full(n, value, dtype="<i2").tobytes(), RATE_HZ)


def test_the_spool_is_encrypted_tailed_from_the_live_edge_and_deleted_when_the_call_ends(tmp_path):
    data_dir = tmp_path / "data"
    spool = LiveSpool(data_dir, TEST_KEY, "call-7", RATE_HZ)
    tail = LiveTail(data_dir, TEST_KEY, "call-7")
    for _ in range(5):
        spool(frame(1000), frame(234))  # caller and agent mixed: 1234
    wait_until(lambda: spool.written_bytes > 0)
    first = tail.read()  # starts at the newest record
    assert first and first[0][0] == RATE_HZ
    assert set(np.frombuffer(b"".join(pcm for _, pcm in first), dtype="<i2")) == {1234}
    for _ in range(10):
        spool(frame(-30000), frame(-30000))  # clipped, not wrapped
    wait_until(lambda: spool.written_bytes > 5 * 320 + 400)
    later = b"".join(pcm for _, pcm in tail.read() or [])
    assert len(later) == 10 * 320 and set(np.frombuffer(later, dtype="<i2")) == {-32768}
    path = spool_path(data_dir, "call-7")
    assert path.stat().st_mode & 0o777 == 0o600 and "call-7" not in str(path)
    assert is_spooling(data_dir, "call-7") and not is_spooling(data_dir, "call-6")
    os.utime(path, (time.time() - 60, time.time() - 60))
    assert not is_spooling(data_dir, "call-7")  # left by a process that died: no Listen button
    assert np.full(160, 1234, dtype="<i2").tobytes()[:64] not in path.read_bytes()  # no plain audio on disk
    spool.close()
    assert not path.exists() and tail.read() is None


def test_a_stalled_spool_never_blocks_the_call_and_a_slow_listener_skips_ahead(tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    spool = LiveSpool(data_dir, TEST_KEY, "call-8", RATE_HZ)
    gate = threading.Event()
    write_pending = spool._write_pending
    monkeypatch.setattr(spool, "_write_pending", lambda: (gate.wait(), write_pending()))  # a stalled disk
    started = time.perf_counter()
    for i in range(QUEUE_TICKS * 4):
        spool(frame(i % 30000), frame(0))
    per_tick_us = (time.perf_counter() - started) / (QUEUE_TICKS * 4) * 1e6
    assert per_tick_us < 200, per_tick_us  # the call's thread only queued
    assert spool.dropped_ticks == QUEUE_TICKS * 3  # the oldest went
    gate.set()
    wait_until(lambda: spool.written_bytes > QUEUE_TICKS * 320)  # the newest 5 s, once the disk is back
    tail = LiveTail(data_dir, TEST_KEY, "call-8")
    tail.read()
    for _ in range(QUEUE_TICKS):  # 5 s more while the listener reads nothing
        spool(frame(7), frame(0))
        time.sleep(0.001)
    wait_until(lambda: spool.written_bytes > QUEUE_TICKS * 2 * 320)
    time.sleep(0.3)
    caught_up = b"".join(pcm for _, pcm in tail.read() or [])
    assert tail.skipped_bytes > 0 and len(caught_up) < 2 * RATE_HZ * 2  # at most about the last 2 s
    spool.close()


def wait_until(check: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_the_listen_socket_refuses_strangers_and_streams_to_a_supervisor(store, tmp_path):
    writer = write(store, emotion_call("live-1", [("neutral", 0.1)], ended=False))
    spool = LiveSpool(Path(store.config.data_dir), store.config.key(), "live-1", RATE_HZ)
    app = create_app(store)
    path = "/api/live/live-1/listen"
    own = {"origin": "http://testserver"}
    try:
        with pytest.raises(WebSocketDisconnect) as refused, TestClient(app).websocket_connect(path, headers=own):
            pass
        assert refused.value.code == 1008  # no session: refused at the handshake (HTTP 403)
        client, _ = login(app, "sam")
        csrf = csrf_of(client)
        with pytest.raises(WebSocketDisconnect), client.websocket_connect(
                path, headers={"origin": "https://evil.example"}):
            pass  # another site's page, with the supervisor's cookie
        with client.websocket_connect(path, headers=own) as ws:
            ws.send_text(json.dumps({"csrf": "wrong"}))
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_bytes()
            assert closed.value.code == 1008
        with client.websocket_connect(path, headers=own) as ws:
            ws.send_text(json.dumps({"csrf": csrf}))
            for _ in range(20):
                spool(frame(500), frame(0))
            assert ws.receive_json() == {"type": "format", "rate": RATE_HZ, "encoding": "s16le", "channels": 1}
            audio = ws.receive_bytes()
            assert len(audio) >= 320 and set(np.frombuffer(audio, dtype="<i2")) == {500}
            spool.close()  # the call ends: its process deletes the spool, the writer ends the call
            writer.apply([(datetime.now(UTC), {"t_ms": 9000.0, "type": "call_ended", "outcome": "completed",
                                               "reason": "completed", "target": "", "node": "goodbye"})])
            while (message := ws.receive()).get("bytes") is not None:
                pass  # the last audio
            assert json.loads(message["text"]) == {"type": "ended"}
        assert ("sam", "listen-live", "live-1") in [(e["user_name"], e["action"], e["call_id"])
                                                     for e in store.audit_log(limit=5)]
    finally:
        spool.close()


@pytest.fixture(scope="module")
def pg():
    with postgres_server() as server:
        yield server


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_version_4_store_gets_the_upset_columns(dialect, tmp_path, request):
    from sqlalchemy import text

    url = request.getfixturevalue("pg").new_database() if dialect == "postgresql" else None
    old = Store(store_config(tmp_path, url))
    with old.engine.begin() as conn:  # as a store made before step 7 has it
        conn.execute(text("ALTER TABLE calls DROP COLUMN smoothed_negativity"))
        conn.execute(text("ALTER TABLE calls DROP COLUMN upset_at"))
        conn.execute(text("DELETE FROM schema_version WHERE version >= 7"))
    old.close()
    store = Store(store_config(tmp_path, url))
    try:
        write(store, emotion_call("after", [("angry", 0.9)], ended=False))
        call = store.get_call("after")
        assert call is not None and call["upset_at"] is not None and call["smoothed_negativity"] == pytest.approx(0.9)
        assert call["upset_at"].tzinfo is not None
    finally:
        store.close()


def test_the_listener_hears_caller_and_agent_mixed_the_same_in_one_pass_or_tick_by_tick():
    """A supervisor listening in hears both sides summed and clipped, whether the spool mixes its queued
    ticks in one pass (equal frames, as on a call) or one by one (a short frame among them)."""
    from ivr.store.liveaudio import mix, mix_ticks

    rng = np.random.default_rng(3)

    def tick(n_caller, n_agent):
        return (Frame.from_samples(rng.integers(-30000, 30000, n_caller).astype(np.int16), 8000, 0),
                Frame.from_samples(rng.integers(-30000, 30000, n_agent).astype(np.int16), 8000, 0))

    equal = [tick(160, 160) for _ in range(25)]
    uneven = [*equal[:3], tick(160, 80), *equal[3:6]]
    for ticks in (equal, uneven):
        one_by_one = np.concatenate([mix(caller, agent) for caller, agent in ticks])
        assert np.array_equal(mix_ticks(ticks), one_by_one)
    loud = mix_ticks(equal)
    assert loud.dtype == np.dtype("<i2") and loud.max() == 32767 and loud.min() == -32768  # clipped, not wrapped
