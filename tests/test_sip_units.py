"""Hermetic tests of the SIP bridge's pieces: allow-list, serve config, transfer context and webhook."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from ivr.call.events import CallEnded, DialogStep, Emotion
from ivr.serve.transfer import TransferContext, context_from_session, header_value, post_webhook, refer_to
from ivr.webhooks import RetryPolicy
from models.errors import AgentError
from telephony.sip.config import SipConfig, load_sip_config
from telephony.sip.security import AllowList, source_ip


def test_allow_list_matches_sources_by_cidr():
    allow = AllowList(["127.0.0.1/32", "10.1.0.0/16", "2001:db8::/32"])
    assert allow.allows("127.0.0.1:5060") and allow.allows("10.1.200.3:5080")
    assert not allow.allows("127.0.0.2:5060") and not allow.allows("10.2.0.1:5060")
    assert allow.allows("[2001:db8::7]:5060") and not allow.allows("[2001:db9::7]:5060")
    assert allow.allows("[::ffff:10.1.0.9]:5060")  # IPv4-mapped IPv6
    assert not allow.allows("garbage") and not allow.allows("")
    assert AllowList([]).allows("198.51.100.1:5060")  # no list: anyone
    assert source_ip("[::1]:5060") == "::1" and source_ip("192.0.2.1:5060") == "192.0.2.1"


def test_sip_config_from_yaml_and_flags(tmp_path):
    path = tmp_path / "sip.yaml"
    path.write_text("sip:\n  allow: 203.0.113.0/24\n  transfer_targets: {'sip:queue@agents': 'sip:desk@10.0.0.5'}\n"
                    "  rtp_timeout_s: 12\n")
    config = load_sip_config(path, port=5070, rtp_timeout_s=None)
    assert config.allow == ("203.0.113.0/24",) and config.port == 5070 and config.rtp_timeout_s == 12
    assert config.resolve_transfer("sip:queue@agents") == "sip:desk@10.0.0.5"
    assert config.resolve_transfer("sip:cards@agents") == "sip:cards@agents"  # unmapped SIP URI as is
    assert config.resolve_transfer("failure") == ""
    assert SipConfig(transfer_default="sip:desk@h").resolve_transfer("failure") == "sip:desk@h"
    path.write_text("alow: [1.2.3.4]\n")
    with pytest.raises(AgentError, match="unknown SIP setting"):
        load_sip_config(path)
    with pytest.raises(AgentError, match="not an address or CIDR"):
        load_sip_config(None, allow=["10.0.0.0/33"])
    with pytest.raises(AgentError, match="not a sip: URI"):
        load_sip_config(None, transfer_targets={"sip:queue@agents": "http://x"})


def test_transfer_context_headers_are_single_safe_lines():
    ctx = TransferContext(call_id="abc123", sip_call_id="x@y", reason="caller-request\r\nX-Evil: 1",
                          flow_target="sip:queue@agents", node="transfer_agent", intent="agent", turns=2,
                          duration_s=31.4, path=["main_menu", "transfer_agent"])
    headers = ctx.headers()
    assert all("\r" not in v and "\n" not in v for v in headers.values())
    assert headers["X-IVR-Call-ID"] == "abc123" and headers["X-IVR-Intent"] == "agent"
    assert "main_menu > transfer_agent" in headers["X-IVR-Summary"] and "31 s" in headers["X-IVR-Summary"]
    assert header_value("é\r\nx").isascii() and len(header_value("a" * 500)) == 200
    uri = refer_to("sip:desk@10.0.0.5:5060", headers)
    assert uri.startswith("<sip:desk@10.0.0.5:5060?X-IVR-Call-ID=abc123&") and uri.endswith(">")
    assert " " not in uri and "\r" not in uri


def test_context_from_session_reads_the_event_log():
    events = [DialogStep("CallStarted", "main_menu"), DialogStep("Utterance", "main_menu"),
              Emotion("angry", {"angry": 0.9}, 0.9), DialogStep("Utterance", "transfer_agent"),
              CallEnded("transferred", "caller-request", "sip:queue@agents", "transfer_agent")]
    session = SimpleNamespace(log=SimpleNamespace(events=events), end_reason="caller-request",
                              transfer_target="sip:queue@agents",
                              state=SimpleNamespace(last_intent="agent", turn=3))
    ctx = context_from_session(session, "c1", "s1", time.time() - 5)  # type: ignore[arg-type]
    assert ctx.path == ["main_menu", "transfer_agent"] and ctx.node == "transfer_agent"
    assert ctx.intent == "agent" and ctx.emotion == "angry" and ctx.turns == 3
    assert "caller sounds angry" in ctx.summary


def test_webhook_posts_json_and_a_dead_one_never_blocks():
    got: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        thread = post_webhook(f"http://127.0.0.1:{server.server_address[1]}/hook", "call.transferred", "c1",
                              {"reason": "caller-request"})
        assert thread is not None
        thread.join(5)
        assert [(e["type"], e["call_id"], e["data"]) for e in got] == [("call.transferred", "c1",
                                                                         {"reason": "caller-request"})]
    finally:
        server.shutdown()
        server.server_close()
    started = time.monotonic()
    dead = post_webhook("http://127.0.0.1:9/nothing", "call.transferred", "c1", {},
                        policy=RetryPolicy(base_s=0.05, max_attempts=2, timeout_s=0.5))
    assert time.monotonic() - started < 0.2  # returns at once; the failures are only logged
    assert dead is not None
    dead.join(5)
    assert post_webhook("", "call.transferred", "c1", {}) is None


def test_strict_media_locks_only_to_a_source_the_signalling_vouches_for():
    from telephony.sip.strict import caller_media, host_port

    assert host_port("10.0.0.5:4000") == ("10.0.0.5", 4000)
    assert host_port("") is None and host_port("10.0.0.5:0") is None
    # the caller's RTP from its SDP address: RTCP to where it came from, else the SDP's RTCP port
    assert caller_media("10.0.0.5:4000", "10.0.0.5:4001", "10.0.0.5:4000", "10.0.0.5:4001", "10.0.0.9") == \
        (("10.0.0.5", 4000), ("10.0.0.5", 4001))
    assert caller_media("10.0.0.5:4000", "", "10.0.0.5:4000", "10.0.0.5:5001", "10.0.0.9") == \
        (("10.0.0.5", 4000), ("10.0.0.5", 5001))
    # behind NAT: RTP from the INVITE's public address on another port is the caller; RTCP goes to RTP + 1
    assert caller_media("203.0.113.7:61000", "", "192.168.1.20:4000", "192.168.1.20:4001", "203.0.113.7") == \
        (("203.0.113.7", 61000), ("203.0.113.7", 61001))
    # a stranger heard first is never locked in, nor a stranger's RTCP
    assert caller_media("198.51.100.66:5000", "", "10.0.0.5:4000", "10.0.0.5:4001", "10.0.0.9") is None
    assert caller_media("10.0.0.5:4000", "198.51.100.66:9", "10.0.0.5:4000", "10.0.0.5:4001", "10.0.0.9") == \
        (("10.0.0.5", 4000), ("10.0.0.5", 4001))
    assert caller_media("", "", "10.0.0.5:4000", "10.0.0.5:4001", "10.0.0.9") is None


def test_media_lock_drops_datagrams_from_others_and_unlocks():
    import socket

    from ivr.serve.bench import free_port
    from telephony.sip.strict import MediaLock

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtp, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as caller, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
        rtp.bind(("127.0.0.1", free_port()))  # an explicit port, as pjsua binds (an ephemeral one is lost on unlock)
        caller.bind(("127.0.0.2", 0))
        stranger.bind(("127.0.0.3", 0))
        rtp.settimeout(0.3)
        lock = MediaLock()
        assert lock.lock(rtp.getsockname(), caller.getsockname(), caller.getsockname())
        stranger.sendto(b"stranger", rtp.getsockname())
        caller.sendto(b"caller", rtp.getsockname())
        assert rtp.recvfrom(100)[0] == b"caller"
        lock.unlock()
        stranger.sendto(b"stranger", rtp.getsockname())
        assert rtp.recvfrom(100)[0] == b"stranger"


def test_media_frames_read_as_the_same_bytes_fast_or_slow():
    """The caller's 20 ms frames come out of pjsua2's ByteVector byte for byte (direct read or SWIG's
    iterator), so what the agent hears is what arrived; an empty frame is empty, not an error."""
    import pjsua2 as pj

    from telephony.sip import media

    frame = bytes((i * 37) % 256 for i in range(media.FRAME_BYTES))
    assert media._DIRECT_READ, "this pjsua2 build should allow the direct read (the slow path costs ~0.5 ms a frame)"
    assert media.vector_bytes(pj.ByteVector(frame)) == frame
    assert media.vector_bytes(pj.ByteVector()) == b""
    carrier = pj.MediaFrame()
    carrier.buf = pj.ByteVector(frame)
    assert media.vector_bytes(carrier.buf) == frame  # what onFrameReceived reads
    resized = pj.ByteVector(frame)
    resized.resize(10)
    assert media.vector_bytes(resized) == frame[:10]
