"""Reliable webhooks: events written to the store's outbox with the call update, delivered over real HTTP on
loopback by the outbox worker (signed, retried with backoff, dead-lettered), to the example receiver in
examples/webhook_receiver.py (signature check, de-duplication, tickets). Stores are real SQLite files in a
temporary directory (and a real PostgreSQL server where the dialect is a parameter).

The restart test here works at the outbox worker's level (a worker and its store closed, a new store and
worker opened on the same file); tests/test_sip_webhooks.py restarts a real `ivr serve` after a sipp call.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import select

from ivr import webhooks
from ivr.call.events import WebhookRequested
from ivr.store import Store, StoreWriter, outbox, schema
from ivr.store.hookevents import WebhookOptions
from ivr.store.outbox import OutboxWorker
from tests.test_store_support import call_events, postgres_server, store_config

REPO = Path(__file__).resolve().parents[1]
SECRET = b"whsec-test-0123456789"
FAST = webhooks.RetryPolicy(base_s=0.05, cap_s=0.2, max_attempts=40, timeout_s=2.0)
WAIT_S = 15.0


def load_example() -> ModuleType:
    """examples/webhook_receiver.py, as a user would copy it (it imports nothing of the agent)."""
    spec = importlib.util.spec_from_file_location("webhook_receiver", REPO / "examples" / "webhook_receiver.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["webhook_receiver"] = module
    spec.loader.exec_module(module)
    return module


example = load_example()


class Receiver(example.Receiver):  # type: ignore[misc,name-defined]
    """The example receiver, answering 503 to its first `down_for` POSTs, counting the POSTs that reached
    its real handler by idempotency key (a healthy receiver must see each event once)."""

    def __init__(self, port: int = 0, down_for: int = 0, broken: bool = False) -> None:
        super().__init__(SECRET, "127.0.0.1", port)
        self.down_for = down_for
        self.broken = broken
        self.refused_503 = 0
        self.posts: Counter[str] = Counter()
        self.signed: list[tuple[str, bytes]] = []
        outer = self

        class Handler(example.Handler):  # type: ignore[misc,name-defined]
            def do_POST(self) -> None:  # noqa: N802
                if outer.broken or outer.refused_503 < outer.down_for:
                    outer.refused_503 += 1
                    self.rfile.read(int(self.headers.get("Content-Length") or 0))
                    return self._answer(503, "down")
                outer.posts[self.headers.get("Idempotency-Key") or ""] += 1
                return super().do_POST()

        self.RequestHandlerClass = Handler
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/ivr/events"

    def close(self) -> None:
        self.shutdown()
        self.server_close()


def free_port() -> int:
    """A loopback port nobody listens on (the receiver is 'down': connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Any, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {getattr(check, '__name__', check)}")


def write_calls(store: Store, options: WebhookOptions) -> int:
    """Two calls through the live writer: one that fails (no input), one escalated for the caller's anger and
    transferred (with the runner's transfer context). Returns how many webhook events they make."""
    failed = call_events("call-failed", ["my card number is 4111 1111 1111 1111"], outcome="completed",
                         reason="no-input")
    angry = call_events("call-angry", ["this is ridiculous, I want a person"], outcome="transferred",
                        reason="negative-emotion", emotions=[{"angry": 0.9, "neutral": 0.1}], intents=["agent"])
    context = {"transfer_uri": "sip:desk@10.0.0.5", "summary": "Transfer (negative-emotion) from node agent",
               "sip_call_id": "abc@host", "reason": "negative-emotion", "flow_target": "sip:queue@agents",
               "node": "agent", "intent": "agent", "emotion": "angry", "turns": 1, "duration_s": 7.0,
               "path": ["main_menu", "agent"]}
    for call_id, events in (("call-failed", failed), ("call-angry", angry)):
        writer = StoreWriter(store, source="sip", caller="+1 555 010 4477", webhooks=options)
        for event in events:
            writer(event)
        if call_id == "call-angry":
            writer(WebhookRequested(name="call.transferred", data=context, t_ms=9000.0))
        writer.finish([], None)
        assert not writer.failed
    return 3 + 5  # started, ended, failed; started, upset (an angry turn), ended, escalated, transferred


def bodies(store: Store) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [json.loads(b) for b in conn.execute(select(schema.outbox.c.body).order_by(schema.outbox.c.id))
                .scalars()]


@pytest.fixture
def store(tmp_path):
    s = Store(store_config(tmp_path))
    yield s
    s.close()


def test_events_are_in_the_outbox_with_the_call_update(store):
    options = WebhookOptions(console_url="https://console.example.com")
    count = write_calls(store, options)
    events = bodies(store)
    assert len(events) == count and len({e["id"] for e in events}) == count
    types = [(e["call_id"], e["type"]) for e in events]
    assert types == [("call-failed", "call.started"), ("call-failed", "call.ended"), ("call-failed", "dialog.failed"),
                     ("call-angry", "call.started"), ("call-angry", "call.upset"), ("call-angry", "call.ended"),
                     ("call-angry", "call.escalated"), ("call-angry", "call.transferred")]
    by = {(e["call_id"], e["type"]): e["data"] for e in events}
    ended = by[("call-angry", "call.ended")]
    assert ended["outcome"] == "transferred" and ended["reason"] == "negative-emotion"
    assert ended["emotion"] == "angry" and ended["intent"] == "agent" and ended["caller_turns"] == 1
    ticket = by[("call-angry", "call.escalated")]["ticket"]
    assert ticket["action"] == "ticket.create" and ticket["priority"] == "high"
    assert ticket["transcript_url"] == "https://console.example.com/calls/call-angry"
    assert ticket["emotion"] == "angry" and ticket["reason"] == "negative-emotion" and "caller sounds angry" in \
        ticket["summary"]
    failed = by[("call-failed", "dialog.failed")]["ticket"]
    assert failed["reason"] == "no-input" and failed["priority"] == "normal"
    caller_said = [t["text"] for t in failed["transcript_excerpt"] if t["speaker"] == "caller"]
    assert caller_said == ["my card number is [card number]"]  # redacted
    transferred = by[("call-angry", "call.transferred")]
    assert transferred["transfer_uri"] == "sip:desk@10.0.0.5" and transferred["sip_call_id"] == "abc@host"
    # the callers' digits nowhere (the random event ids and the times are left out: they may hold any digits)
    times = ("started_at", "ended_at", "upset_at")
    everything = json.dumps([{**e, "id": "", "created": 0,
                              "data": {k: v for k, v in e["data"].items() if k not in times}} for e in events])
    assert "4111" not in everything and "4477" not in everything and "555" not in everything
    # a failed write loses the events with the update: the call's transaction is all or nothing
    assert outbox.counts(store) == {"pending": count, "delivered": 0, "dead": 0}
    store.erase_caller("+1 555 010 4477")
    assert outbox.counts(store) == {"pending": 0, "delivered": 0, "dead": 0}


def test_a_receiver_down_at_first_gets_every_event_once_signed(store):
    port = free_port()
    url = f"http://127.0.0.1:{port}/ivr/events"
    worker = OutboxWorker(store, url, SECRET, FAST, poll_s=0.05)
    worker.start()
    receiver = None
    try:
        count = write_calls(store, WebhookOptions(wake=worker.wake))
        wait_for(lambda: worker.failed_attempts >= 3)  # connection refused: nobody listens yet
        receiver = Receiver(port, down_for=3)  # then up, but answering 503 three times
        wait_for(lambda: len(receiver.events) == count)
        wait_for(lambda: outbox.counts(store)["delivered"] == count)
    finally:
        worker.stop()
        if receiver is not None:
            receiver.close()
    assert receiver.refused_503 == 3
    ids = [e["id"] for e in receiver.events]
    assert len(set(ids)) == count == len(ids)  # every event, each handled once
    assert all(n == 1 for n in receiver.posts.values()) and len(receiver.posts) == count  # and posted once when up
    assert {e["type"] for e in receiver.events} == {"call.started", "call.ended", "call.transferred",
                                                    "call.escalated", "dialog.failed", "call.upset"}
    assert [t["subject"] for t in receiver.tickets] == ["Failed call: no-input", "Escalated call: negative-emotion"] \
        or sorted(t["subject"] for t in receiver.tickets) == ["Escalated call: negative-emotion",
                                                               "Failed call: no-input"]
    rows = outbox.list_events(store)
    assert all(r["status"] == "delivered" and r["last_status"] == 200 for r in rows)
    assert max(r["attempts"] for r in rows) > 1


def test_the_example_receiver_rejects_tampered_and_unsigned_bodies():
    receiver = Receiver()
    try:
        body = webhooks.envelope("evt_1", "dialog.failed", "c1", {"reason": "no-input", "ticket": {
            "action": "ticket.create", "subject": "Failed call: no-input"}}, time.time())
        head = webhooks.headers("evt_1", "dialog.failed", body, SECRET, 1)

        def post(data: bytes, headers: dict[str, str]) -> int:
            request = urllib.request.Request(receiver.url, data=data, method="POST", headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    return int(response.status)
            except urllib.error.HTTPError as exc:
                return exc.code

        tampered = body.replace(b"no-input", b"completed")
        assert post(tampered, head) == 401  # the signature no longer matches the body
        assert post(body, {k: v for k, v in head.items() if k != webhooks.SIGNATURE_HEADER}) == 401
        other = webhooks.headers("evt_1", "dialog.failed", body, b"another-secret", 1)
        assert post(body, other) == 401
        stale = {**head, webhooks.SIGNATURE_HEADER: webhooks.sign(SECRET, body, int(time.time()) - 3600)}
        assert post(body, stale) == 401  # a replay of an old request
        assert receiver.events == []
        assert post(body, head) == 200
        assert post(body, webhooks.headers("evt_1", "dialog.failed", body, SECRET, 2)) == 200  # a retry: a duplicate
        assert [e["id"] for e in receiver.events] == ["evt_1"] and len(receiver.tickets) == 1
        junk = b"not json"
        assert post(junk, webhooks.headers("evt_2", "x", junk, SECRET, 1)) == 400
    finally:
        receiver.close()
    # the library's check agrees with the example's
    assert webhooks.verify_signature(SECRET, head[webhooks.SIGNATURE_HEADER], body)
    assert not webhooks.verify_signature(SECRET, head[webhooks.SIGNATURE_HEADER], tampered)
    assert example.verify_signature(SECRET, head[webhooks.SIGNATURE_HEADER], body)
    assert not example.verify_signature(SECRET, head[webhooks.SIGNATURE_HEADER], tampered)


def test_undelivered_events_are_delivered_by_the_next_worker_after_a_restart(tmp_path):
    """Worker level: events written while the receiver is down, the worker and its store closed (one row
    even claimed by a worker that died mid-delivery), then a new store and worker on the same file."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/ivr/events"
    first = Store(store_config(tmp_path))
    worker = OutboxWorker(first, url, SECRET, webhooks.RetryPolicy(base_s=0.05, cap_s=0.1, max_attempts=40),
                          poll_s=0.05)
    worker.start()
    count = write_calls(first, WebhookOptions(wake=worker.wake))
    wait_for(lambda: worker.failed_attempts >= count)
    worker.stop()
    assert not worker.is_alive() and worker.delivered == 0
    with first.engine.connect() as conn:  # a stopped worker holds no lease: the next one need not wait
        assert conn.execute(select(schema.outbox.c.claimed_by).where(
            schema.outbox.c.claimed_by.is_not(None))).first() is None
    held: list[outbox.Claimed] = []  # a row a worker claimed, then died: its lease runs out by itself
    wait_for(lambda: held.extend(outbox.claim(first, "a-worker-that-died", lease_s=0.5, limit=1)) or held)
    first.close()

    receiver = Receiver(port)
    second = Store(store_config(tmp_path))
    again = OutboxWorker(second, url, SECRET, FAST, poll_s=0.05)
    try:
        assert outbox.counts(second)["pending"] == count
        again.start()
        wait_for(lambda: len(receiver.events) == count)
        wait_for(lambda: outbox.counts(second)["delivered"] == count)
    finally:
        again.stop()
        receiver.close()
        second.close()
    assert sorted(receiver.posts.values()) == [1] * count


@pytest.fixture(scope="module")
def pg():
    with postgres_server() as server:
        yield server


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_workers_sharing_a_store_post_each_event_once(dialect, tmp_path, request):
    """Two workers, each with its own engine (as two `ivr serve` worker processes have), claim from one
    store: the conditional UPDATE of the lease lets one of them take each row."""
    url = request.getfixturevalue("pg").new_database() if dialect == "postgresql" else None
    stores = [Store(store_config(tmp_path, url)) for _ in range(2)]
    receiver = Receiver()
    n = 40
    with stores[0].engine.begin() as conn:
        for i in range(n):
            outbox.enqueue(conn, "call.ended", f"c{i}", {"outcome": "completed"})
    workers = [OutboxWorker(s, receiver.url, SECRET, FAST, poll_s=0.02, name=f"w{i}") for i, s in enumerate(stores)]
    try:
        for w in workers:
            w.start()
        wait_for(lambda: len(receiver.events) == n)
        wait_for(lambda: outbox.counts(stores[0])["delivered"] == n)
    finally:
        for w in workers:
            w.stop()
        receiver.close()
        for s in stores:
            s.close()
    assert len(receiver.posts) == n and set(receiver.posts.values()) == {1}
    assert sum(w.delivered for w in workers) == n


WORKER_PROCESS = """
import sys, time
from pathlib import Path
from ivr import webhooks
from ivr.store import Store, outbox
from tests.test_store_support import store_config
tmp, url, name, n, go = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), Path(sys.argv[5])
store = Store(store_config(tmp, sys.argv[6] or None))
worker = outbox.OutboxWorker(store, url, b"__SECRET__", webhooks.RetryPolicy(base_s=0.05, cap_s=0.2, max_attempts=40),
                             poll_s=0.02, name=name)
print("ready", flush=True)
while not go.exists():
    time.sleep(0.01)
worker.start()
deadline = time.monotonic() + 20
while time.monotonic() < deadline and outbox.counts(store)["delivered"] < n:
    time.sleep(0.02)
worker.stop()
print("delivered", worker.delivered, flush=True)
""".replace("__SECRET__", SECRET.decode())


def test_worker_processes_sharing_a_sqlite_store_post_each_event_once(tmp_path):
    """The same with two real processes (as `ivr serve` workers behind the Kamailio front)."""
    import os
    import subprocess

    store = Store(store_config(tmp_path))
    receiver = Receiver()
    n = 40
    with store.engine.begin() as conn:
        for i in range(n):
            outbox.enqueue(conn, "call.ended", f"c{i}", {"outcome": "completed"})
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", WORKER_PROCESS, str(tmp_path), receiver.url, f"p{i}", str(n),
                               str(go), ""], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
             for i in range(2)]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        go.touch()
        outs = [proc.communicate(timeout=30)[0] for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        receiver.close()
    delivered = [int(out.split()[-1]) for out in outs]
    print("delivered by each process", delivered)
    assert sum(delivered) == n and outbox.counts(store)["delivered"] == n
    assert len(receiver.posts) == n and set(receiver.posts.values()) == {1}
    store.close()


def test_backoff_doubles_to_a_cap_then_dead_letters_and_retry_sends_again(store):
    assert webhooks.RetryPolicy().schedule() == [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600]
    policy = webhooks.RetryPolicy(base_s=0.05, cap_s=0.1, max_attempts=3, timeout_s=2.0)
    receiver = Receiver(broken=True)  # 503 to everything
    with store.engine.begin() as conn:
        event_id = outbox.enqueue(conn, "dialog.failed", "c1", {"reason": "no-input"})
    times: list[float] = []

    def post(*args: Any) -> webhooks.Result:
        times.append(time.monotonic())
        return webhooks.post(*args)

    worker = OutboxWorker(store, receiver.url, SECRET, policy, poll_s=0.01, post=post)
    worker.start()
    try:
        wait_for(lambda: outbox.counts(store)["dead"] == 1)
        assert len(times) == 3 and worker.dead == 1
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert gaps[0] >= 0.05 and gaps[1] >= 0.1  # 0.05 s, then doubled (0.1 s, the cap)
        row = outbox.list_events(store, status="dead")[0]
        assert row["event_id"] == event_id and row["attempts"] == 3 and row["last_status"] == 503
        receiver.broken = False
        time.sleep(0.2)
        assert receiver.events == []  # a dead event stays dead...
        assert outbox.retry(store, [event_id]) == 1  # ...until retried
        wait_for(lambda: [e["id"] for e in receiver.events] == [event_id])
        wait_for(lambda: outbox.counts(store)["delivered"] == 1)
    finally:
        worker.stop()
        receiver.close()


def test_without_a_store_a_transfer_is_retried_in_memory():
    from ivr.serve.transfer import post_webhook

    receiver = Receiver(down_for=2)
    try:
        thread = post_webhook(receiver.url, "call.transferred", "c1", {"reason": "caller-request"}, SECRET, FAST)
        assert thread is not None
        thread.join(WAIT_S)
        assert [e["type"] for e in receiver.events] == ["call.transferred"] and receiver.refused_503 == 2
        assert receiver.events[0]["data"] == {"reason": "caller-request"}
    finally:
        receiver.close()
    assert post_webhook("", "call.transferred", "c1", {}) is None


def test_a_version_3_store_gets_the_outbox(tmp_path, monkeypatch):
    import ivr.store.migrations as migrations

    with monkeypatch.context() as m:
        def v1_as_released(conn: Any) -> None:  # step 1 of a store made before the outbox existed
            schema.metadata.create_all(conn, tables=[t for t in schema.metadata.sorted_tables
                                                     if t.name not in ("schema_version", "outbox")])

        m.setattr(migrations, "MIGRATIONS", [(1, "initial", v1_as_released), *migrations.MIGRATIONS[1:3]])
        m.setattr(migrations, "LATEST", 3)
        old = Store(store_config(tmp_path))
        with old.engine.connect() as conn:
            assert not conn.dialect.has_table(conn, "outbox")
        old.close()
    store = Store(store_config(tmp_path))
    try:
        with store.engine.begin() as conn:
            outbox.enqueue(conn, "call.started", "c1", {}, datetime.now(UTC))
        assert outbox.counts(store)["pending"] == 1
    finally:
        store.close()


def test_ivr_store_outbox_lists_and_retries_dead_letters(tmp_path, monkeypatch, capsys):
    from ivr.cli import main

    monkeypatch.setenv("IVR_RECORDING_KEY", bytes(range(32)).hex())
    db = f"sqlite:///{tmp_path}/ivr.db"
    store = Store(store_config(tmp_path))
    try:
        with store.engine.begin() as conn:
            dead = outbox.enqueue(conn, "dialog.failed", "c1", {"reason": "no-input"})
            outbox.enqueue(conn, "call.started", "c2", {})
        item = outbox.claim(store, "w", 30.0, limit=1)[0]
        outbox.record(store, item, "w", webhooks.Result(500, "HTTP 500"), webhooks.RetryPolicy(max_attempts=1))
        assert main(["store", "outbox", "list", "--status", "dead", "--db", db]) == 0
        out = capsys.readouterr().out
        assert "1 pending, 0 delivered, 1 dead" in out and dead in out and "HTTP 500" in out
        assert main(["store", "outbox", "retry", "--db", db]) == 1  # which ones?
        assert main(["store", "outbox", "retry", dead, "--db", db]) == 0
        assert outbox.counts(store) == {"pending": 2, "delivered": 0, "dead": 0}
    finally:
        store.close()


def test_ivr_serve_starts_the_worker_counts_deliveries_and_stops_it(store, monkeypatch, caplog):
    from prometheus_client import REGISTRY

    from ivr.serve.webhooks import start_webhooks, stop_webhooks
    from ivr.store.hook import SipStoreObserver
    from telephony.sip.config import SipConfig

    def delivered() -> float:
        return REGISTRY.get_sample_value("ivr_webhook_deliveries_total",
                                         {"event": "call.ended", "result": "delivered"}) or 0.0

    receiver = Receiver()
    monkeypatch.setenv("TEST_HOOK_SECRET", SECRET.decode())
    config = SipConfig(webhook_url=receiver.url, webhook_secret_env="TEST_HOOK_SECRET", webhook_retry_s=0.05,
                       webhook_console_url="https://console.example.com")
    observer = SipStoreObserver(store)
    assert start_webhooks(SipConfig(), store, [observer]) is None and observer.webhooks is None  # no URL
    assert start_webhooks(config, None, [observer]) is None  # no store: the runner posts transfers itself
    before = delivered()
    worker = start_webhooks(config, store, [observer])
    try:
        assert worker is not None and worker.is_alive() and worker.secret == SECRET
        assert observer.webhooks is not None and observer.webhooks.wake == worker.wake
        assert observer.webhooks.call_url("c1") == "https://console.example.com/calls/c1"
        with store.engine.begin() as conn:
            outbox.enqueue(conn, "call.ended", "c1", {})
        worker.wake()
        wait_for(lambda: len(receiver.events) == 1)
        wait_for(lambda: delivered() == before + 1)
    finally:
        stop_webhooks(worker)
        receiver.close()
    assert not worker.is_alive()
    unsigned = SipConfig(webhook_url=receiver.url)
    with caplog.at_level("WARNING"):
        stop_webhooks(start_webhooks(unsigned, store, []))
    assert "not signed" in caplog.text


def test_the_signing_secret_comes_from_an_environment_variable_never_the_command_line(monkeypatch):
    from telephony.errors import TelephonyError
    from telephony.sip.config import SipConfig

    with pytest.raises(TelephonyError, match="NAME of an environment variable"):
        SipConfig(webhook_url="http://x", webhook_secret_env="s3cr3t-value!")
    with pytest.raises(TelephonyError, match="needs webhook_url"):
        SipConfig(webhook_secret_env="IVR_WEBHOOK_SECRET")
    with pytest.raises(TelephonyError, match="webhook retries"):
        SipConfig(webhook_url="http://x", webhook_retry_s=10, webhook_retry_max_s=5)
    monkeypatch.delenv("IVR_WEBHOOK_SECRET", raising=False)
    config = SipConfig(webhook_url="http://x", webhook_secret_env="IVR_WEBHOOK_SECRET")
    with pytest.raises(TelephonyError, match="is not set"):
        config.webhook_secret()
    monkeypatch.setenv("IVR_WEBHOOK_SECRET", "abc")
    assert config.webhook_secret() == b"abc" and SipConfig().webhook_secret() is None


def test_delivered_events_are_kept_a_week_then_purged(store):
    from datetime import timedelta

    from sqlalchemy import update

    with store.engine.begin() as conn:
        ids = [outbox.enqueue(conn, "call.ended", f"c{i}", {}) for i in range(3)]
    for item in outbox.claim(store, "w", 30.0, limit=2):
        outbox.record(store, item, "w", webhooks.Result(204), FAST)
    with store.engine.begin() as conn:
        conn.execute(update(schema.outbox).where(schema.outbox.c.event_id == ids[0]).values(
            delivered_at=datetime.now(UTC) - timedelta(days=outbox.KEEP_DELIVERED_DAYS + 1)))
    assert outbox.purge_delivered(store, outbox.KEEP_DELIVERED_DAYS) == 1
    assert [r["event_id"] for r in outbox.list_events(store)] == [ids[2], ids[1]]  # a pending one is never purged
