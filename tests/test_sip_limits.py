"""`ivr serve` under abuse: garbage UDP and malformed INVITEs, then a call above the call limit (503)."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import time

import pytest

from tests.sip import sipp
from tests.sip.rtp_pcap import quiet_pcap
from tests.sip.serve import start_server, tear_down

pytestmark = [pytest.mark.models, pytest.mark.sip, pytest.mark.slow]

MALFORMED = [
    b"INVITE sip:ivr@127.0.0.1 SIP/2.0\r\n\r\n",
    b"INVITE  SIP/2.0\r\nVia: nonsense\r\nContent-Length: 99999\r\n\r\nv=0",
    b"INVITE sip:ivr@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\n"
    b"To: <sip:ivr@127.0.0.1>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n"
    b"Content-Length: 12\r\n\r\nm=audio x y\r\n",
    b"SIP/2.0 200 OK\r\n\r\n",
    b"\x00" * 1400,
]


def _garbage(port: int) -> None:
    rng = random.Random(7)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(200):
            s.sendto(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 1200))), ("127.0.0.1", port))
        for msg in MALFORMED:
            s.sendto(msg, ("127.0.0.1", port))


def _refused_beside_a_call(tmp_path, extra: list[str], before_call=None) -> subprocess.Popen:
    """`ivr serve` with `extra` flags; a caller that stays ~6 s, and 1.5 s into it a second INVITE that must
    get 503 with Retry-After while the first call goes on with RTP. `before_call(port, server)` runs first.
    Returns the stopped server (its output readable)."""
    sipp.require_sipp()
    quiet_pcap(tmp_path / "quiet.pcap", 8.0)
    port = sipp.free_udp_port()
    server = start_server(tmp_path / "calls", port, extra)
    procs: list[subprocess.Popen] = []
    listener = None
    try:
        if before_call is not None:
            before_call(port, server)
        good, listener = sipp.start_caller(tmp_path / "good", "caller_hangs_up.xml", port, PCAP=tmp_path / "quiet.pcap",
                                           INFO_AFTER_MS=3000, INFO_KEY=1, BYE_AFTER_MS=3000)
        procs.append(good)
        time.sleep(1.5)
        over = sipp.start_call(tmp_path / "over", "expect_503.xml", port)
        procs.append(over)
        assert sipp.finish_sipp(over, 30)[0] == 0, "the second call did not get 503 with Retry-After"
        assert sipp.finish_sipp(good, 60)[0] == 0, "the admitted call failed"
        assert listener.packets, "the answered call got no RTP"
    finally:
        tear_down(server, procs)
        if listener is not None:
            listener.close()
    assert server.returncode == 0
    assert os.listdir(tmp_path / "calls")
    return server


def test_garbage_then_good_call_then_503_above_the_limit(tmp_path):
    def garbage(port: int, server: subprocess.Popen) -> None:
        _garbage(port)
        time.sleep(0.5)
        assert server.poll() is None, "the agent died on garbage input"

    _refused_beside_a_call(tmp_path, ["--max-calls", "1"], garbage)


def test_no_headroom_refuses_a_second_call_with_slots_free(tmp_path):
    """--admit-max-cpu 0: with one call up the box counts as saturated, so the next INVITE gets 503 with
    Retry-After although two slots are free; the call that is up goes on."""
    server = _refused_beside_a_call(tmp_path, ["--max-calls", "3", "--admit-budget-ms", "1000",
                                               "--admit-max-cpu", "0"])
    output = server.stdout.read() if server.stdout else ""
    assert "no headroom: CPU" in output, output[-2000:]
