"""`ivr serve` at its call limit and behind an allow-list: simultaneous keying callers (as many as one
process can answer: pjsua2-python's wheels allow 4 call slots, one kept for refusing) all complete their
dialog; the next call above --max-calls gets 503 with Retry-After; a call from a source outside the
allow-list (127.0.0.2, outside --allow 127.0.0.1/32) gets 403."""

from __future__ import annotations

import json
import socket
import subprocess
import time

import pytest

from tests.sip import sipp
from tests.sip.rtp_pcap import CallerTrack
from tests.sip.serve import call_events, start_server, tear_down

pytestmark = [pytest.mark.models, pytest.mark.sip, pytest.mark.slow]

CALLS = 3  # what one pjsua2-python process can answer (PJSUA_MAX_CALLS 4 in its wheels)
CALL_TIMEOUT_S = 60


def _loopback_alias_works(ip: str) -> bool:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((ip, 0))
        return True
    except OSError:
        return False


def test_simultaneous_calls_complete_the_next_gets_503_and_a_stranger_403(tmp_path):
    sipp.require_sipp()
    if not _loopback_alias_works("127.0.0.2"):
        pytest.skip("127.0.0.2 cannot be bound here (no 127.0.0.0/8 loopback routing)")
    track = CallerTrack()
    track.silence(7.5)
    track.key("1")
    track.silence(12.0)
    track.write_pcap(tmp_path / "keys.pcap")
    port = sipp.free_udp_port()
    server = start_server(tmp_path / "calls", port, ["--max-calls", str(CALLS), "--allow", "127.0.0.1/32",
                                                      "--grace", "0"])
    procs: list[subprocess.Popen] = []
    listeners: list[sipp.RtpListener] = []
    try:
        started = time.monotonic()
        dirs = sipp.start_callers(tmp_path, CALLS, "caller_hangs_up.xml", port, procs, listeners,
                                  PCAP=tmp_path / "keys.pcap", INFO_AFTER_MS=12500, INFO_KEY=3, BYE_AFTER_MS=3000)
        time.sleep(3.0)  # all answered
        over = sipp.start_call(tmp_path / "over", "expect_503.xml", port)
        procs.append(over)
        stranger = sipp.start_call(tmp_path / "stranger", "expect_403.xml", port, local_ip="127.0.0.2")
        procs.append(stranger)
        rc, err = sipp.finish_sipp(stranger, 30)
        assert rc == 0, f"the call from outside the allow-list did not get 403: {err[-800:]}"
        rc, err = sipp.finish_sipp(over, 30)
        assert rc == 0, f"the call above the limit did not get 503 with Retry-After: {err[-800:]}"
        failures = sipp.finish_callers(procs[:CALLS], dirs, CALL_TIMEOUT_S)
        wall_s = time.monotonic() - started
        time.sleep(1.0)
    finally:
        tear_down(server, procs, listeners)
    assert not failures, "\n".join(failures)
    assert server.returncode == 0
    call_dirs = [d for d in (tmp_path / "calls").iterdir() if (d / "sip.json").exists()]
    assert len(call_dirs) == CALLS, f"{len(call_dirs)} calls recorded, expected {CALLS} (no 503/403 call answered)"
    for d in call_dirs:
        events = call_events(d)
        methods = [e["method"] for e in events if e["type"] == "dtmf_received"]
        nodes = [e["node"] for e in events if e["type"] == "dialog" and e["event"] == "DigitsEntered"]
        assert methods == ["rfc4733", "sip-info"] and nodes == ["balance", "hours"], (d.name, methods, nodes)
        assert json.loads((d / "sip.json").read_text())["outcome"] == "caller-hangup"
    assert all(listener.packets for listener in listeners), "a caller got no RTP"
    print(f"{CALLS} simultaneous calls done in {wall_s:.1f} s")
