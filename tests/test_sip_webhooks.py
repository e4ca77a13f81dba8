"""Webhooks end to end: a real `ivr serve`, a sipp call, a real SQLite store, the example receiver over HTTP.

The receiver is down (nobody listens on its port) while the call happens: the events wait in the store's
outbox while the server retries with (short) backoff. The server is stopped with the events undelivered;
a new `ivr serve` started on the same store delivers them, signed, each once, to the now running receiver.
"""

from __future__ import annotations

import pytest

from ivr.store import Store, outbox
from tests.sip import sipp
from tests.sip.rtp_pcap import quiet_pcap
from tests.sip.serve import start_serve, stop_serve
from tests.test_store_support import TEST_KEY, store_config
from tests.test_webhooks import SECRET, Receiver, free_port, wait_for

pytestmark = [pytest.mark.models, pytest.mark.sip, pytest.mark.slow]

CALL_TIMEOUT_S = 40


def test_events_left_undelivered_by_a_stopped_ivr_serve_are_delivered_after_its_restart(tmp_path):
    sipp.require_sipp()
    quiet_pcap(tmp_path / "quiet.pcap", 8.0)
    hook_port = free_port()  # the receiver's port: refused until the receiver starts
    (tmp_path / "sip.yaml").write_text("sip:\n  webhook_retry_s: 0.2\n  webhook_retry_max_s: 0.5\n"
                                       "  webhook_max_attempts: 1000\n  webhook_timeout_s: 2\n")
    env = {"IVR_DB_URL": f"sqlite:///{tmp_path}/ivr.db", "IVR_DATA_DIR": str(tmp_path / "data"),
           "IVR_RECORDING_KEY": TEST_KEY.hex(), "IVR_WEBHOOK_SECRET": SECRET.decode()}

    def serve(name: str) -> tuple[object, int]:
        port = sipp.free_udp_port()
        args = ["--webhook", f"http://127.0.0.1:{hook_port}/ivr/events", "--webhook-secret-env",
                "IVR_WEBHOOK_SECRET", "--sip-config", str(tmp_path / "sip.yaml"), "--grace", "0",
                "--rtp-port", str(sipp.free_udp_port(even=True)), "--tts", "espeak-ng"]  # quicker to start
        (tmp_path / name).mkdir()
        return start_serve(tmp_path / name / "serve.log", port, args, env), port

    store = Store(store_config(tmp_path))
    receiver = None
    server, port = serve("first")
    try:
        caller, listener = sipp.start_caller(tmp_path / "caller", "caller_hangs_up.xml", port,
                                             PCAP=tmp_path / "quiet.pcap", INFO_AFTER_MS=1000, INFO_KEY=1,
                                             BYE_AFTER_MS=1000)
        try:
            rc, err = sipp.finish_sipp(caller, CALL_TIMEOUT_S)
        finally:
            listener.close()
        assert rc == 0, err[-2000:]

        def call_ended_is_stored() -> bool:
            return any(e["event_type"] == "call.ended" for e in outbox.list_events(store))

        wait_for(call_ended_is_stored, 20)
        assert stop_serve(server) == 0
        first_log = (tmp_path / "first" / "serve.log").read_text(errors="replace")
        assert "Connection refused" in first_log  # it did try
        pending = outbox.list_events(store)
        assert pending and {e["status"] for e in pending} == {"pending"}
        assert {"call.started", "call.ended"} <= {e["event_type"] for e in pending}
        assert all(e["attempts"] >= 1 for e in pending if e["event_type"] == "call.started")

        receiver = Receiver(hook_port)
        server, port = serve("second")
        wait_for(lambda: len(receiver.events) >= len(pending), 20)
        wait_for(lambda: outbox.counts(store)["delivered"] == len(pending), 10)
    finally:
        stop_serve(server)
        if receiver is not None:
            receiver.close()
        store.close()
    assert sorted(e["id"] for e in receiver.events) == sorted(e["event_id"] for e in pending)
    assert set(receiver.posts.values()) == {1}  # each event once (and only signed ones are accepted)
    call_id = pending[0]["call_id"]
    ended = next(e for e in receiver.events if e["type"] == "call.ended")
    assert ended["call_id"] == call_id and ended["data"]["outcome"] == "caller-hangup"
