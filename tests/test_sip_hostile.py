"""`ivr serve` against hostile peers over loopback: each reproducer of a crash or leak found by hand, a
mutation fuzzer of SIP datagrams, and garbage RTP into a live call. After each, the process is alive, its
open files, threads and memory are within bounds, and an ordinary call still reaches `balance`.

One server for the module, with an allow-list of 127.0.0.1 and 127.0.0.2: 127.0.0.3 stands for a stranger.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import struct
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from tests.sip.fuzz import datagrams
from tests.sip.peer import SDP_BROKEN, SipPeer, media_port
from tests.sip.serve import Usage, keyed_call_nodes, start_serve, stop_serve, usage
from tests.sip.sipp import free_udp_port, require_sipp

pytestmark = [pytest.mark.models, pytest.mark.sip, pytest.mark.slow]

ALLOWED = "127.0.0.2"
STRANGER = "127.0.0.3"
RTP_PORT_RANGE = 40
TRANSACTION_TIMEOUT_S = 3.0
FUZZ_DATAGRAMS = 2200
# Bounds on growth after hostile traffic, once transactions have timed out: a few descriptors for a
# transaction still in flight, pjlib's worker threads, and allocator slack.
MAX_EXTRA_FILES = 6
MAX_EXTRA_THREADS = 4
MAX_EXTRA_RSS_MB = 120.0


class Server:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.port = free_udp_port()
        self.rtp_base = free_udp_port(even=True)
        self.log = work / "serve.log"
        self.proc = start_serve(self.log, self.port, [
            "--allow", "127.0.0.1/32", "--allow", f"{ALLOWED}/32", "--rtp-port", str(self.rtp_base),
            "--rtp-port-range", str(RTP_PORT_RANGE), "--transaction-timeout", str(TRANSACTION_TIMEOUT_S),
            "--rtp-timeout", "0", "--grace", "2"])
        self.baseline: Usage | None = None

    @property
    def calls(self) -> Path:
        return self.work / "calls"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def assert_healthy(self, what: str) -> Usage:
        """Alive, answers OPTIONS, and (once settled) back within the resource bounds."""
        assert self.alive(), f"ivr serve died after {what}: exit {self.proc.returncode}\n{self.tail()}"
        with SipPeer(ALLOWED) as peer:
            peer.options(self.port)
            answer = peer.final(5)
        assert answer is not None and answer.status == 200, f"no 200 to OPTIONS after {what}"
        now = self.settled()
        base = self.baseline
        assert base is not None
        assert now.open_files <= base.open_files + MAX_EXTRA_FILES, f"after {what}: {now} (start: {base})"
        assert now.threads <= base.threads + MAX_EXTRA_THREADS, f"after {what}: {now} (start: {base})"
        assert now.rss_mb <= base.rss_mb + MAX_EXTRA_RSS_MB, f"after {what}: {now} (start: {base})"
        return now

    def settled(self, timeout_s: float = 4 * TRANSACTION_TIMEOUT_S + 5) -> Usage:
        """Resource use once the open files stop falling (hostile transactions time out)."""
        deadline = time.monotonic() + timeout_s
        now = usage(self.proc.pid)
        while time.monotonic() < deadline:
            time.sleep(1.0)
            later = usage(self.proc.pid)
            if self.baseline is not None and later.open_files <= self.baseline.open_files:
                return later
            now = later
        return now

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require_sipp()
    srv = Server(tmp_path_factory.mktemp("hostile"))
    try:
        time.sleep(1.0)
        srv.baseline = usage(srv.proc.pid)
        yield srv
    finally:
        stop_serve(srv.proc)


def _fill(server: Server, count: int) -> list[tuple[SipPeer, object]]:
    """`count` confirmed calls from ALLOWED (INVITE, 200, ACK)."""
    calls = []
    for _ in range(count):
        peer = SipPeer(ALLOWED)
        peer.invite(server.port)
        answer = peer.final(5)
        assert answer is not None and answer.status == 200, answer and answer.status
        peer.ack(answer, server.port)
        calls.append((peer, answer))
    return calls


def _open_files(pid: int) -> list[str]:
    return sorted(os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd"))


def _hang_up(server: Server, calls: list) -> None:
    for peer, answer in calls:
        peer.bye(answer, server.port)
        peer.final(3)
        peer.close()


# ---- the reproducers -----------------------------------------------------------------------------------

def test_a_stranger_without_sdp_gets_403_and_the_server_lives(server):
    with SipPeer(STRANGER) as peer:
        peer.invite(server.port, sdp=None)
        answer = peer.final(5)
        assert answer is not None and answer.status == 403
        peer.invite(server.port)
        answer = peer.final(5)
        assert answer is not None and answer.status == 403
    time.sleep(1.0)
    server.assert_healthy("INVITEs from outside the allow-list")


def test_a_full_server_refuses_with_503_and_retry_after_and_leaks_nothing(server):
    calls = _fill(server, 3)
    try:
        time.sleep(2.0)  # the three sessions have started (recordings, event logs open)
        full = usage(server.proc.pid)
        codes = []
        for sdp in (None, SDP_BROKEN, "v=0\r\no=x 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
                    "m=audio {rtp} RTP/AVP 99\r\na=rtpmap:99 opus/48000/2\r\n") * 4:
            with SipPeer(ALLOWED) as peer:
                peer.invite(server.port, sdp=sdp)
                answer = peer.final(5)
                assert answer is not None, "no answer at capacity"
                codes.append(answer.status)
                if answer.status == 503:
                    assert int(answer.header("retry-after")) > 0
        assert 486 not in codes, codes
        assert all(code in (503, 400, 488) for code in codes), codes
        assert codes.count(503) >= 4, codes
        time.sleep(1.0)
        assert server.alive(), server.tail()
        assert usage(server.proc.pid).open_files <= full.open_files, \
            f"refused INVITEs left files open: {_open_files(server.proc.pid)}"
    finally:
        _hang_up(server, calls)
    server.assert_healthy("refusals at capacity")


def test_latin1_display_name_is_answered(server):
    with SipPeer(ALLOWED) as peer:
        peer.invite(server.port, display="Jos\xe9 M\xfcller (\xa9 PBX)".encode("latin-1"))
        answer = peer.final(5)
        assert answer is not None and answer.status == 200, answer and answer.status
        peer.ack(answer, server.port)
        time.sleep(0.5)
        peer.bye(answer, server.port)
    server.assert_healthy("a Latin-1 display name")


def test_invites_nobody_acks_free_their_slots_in_seconds(server):
    peers = [SipPeer(ALLOWED) for _ in range(3)]
    try:
        for peer in peers:
            peer.invite(server.port)
            answer = peer.final(5)
            assert answer is not None and answer.status == 200
        with SipPeer(ALLOWED) as late:
            late.invite(server.port)
            answer = late.final(5)
            assert answer is not None and answer.status == 503  # full, for now
        started = time.monotonic()
        while time.monotonic() - started < 4 * TRANSACTION_TIMEOUT_S:
            with SipPeer(ALLOWED) as late:
                late.invite(server.port)
                answer = late.final(5)
                if answer is not None and answer.status == 200:
                    late.ack(answer, server.port)
                    late.bye(answer, server.port)
                    break
            time.sleep(0.5)
        else:
            pytest.fail("unconfirmed INVITEs kept the server full")
        print(f"a slot held by an INVITE nobody ACKed was free after {time.monotonic() - started:.1f} s")
    finally:
        for peer in peers:
            peer.close()
    server.assert_healthy("INVITEs nobody ACKed")


def test_sustained_invites_at_capacity_get_503_with_retry_after(server):
    """Refusals stay 503 + Retry-After under a steady flood (they were pjsua's own 486, without
    Retry-After, once refused calls held the spare slot)."""
    calls = _fill(server, 3)
    peers = [SipPeer(ALLOWED) for _ in range(10)]
    try:
        for i in range(200):  # 50 INVITEs a second for 4 s
            peers[i % len(peers)].invite(server.port)
            time.sleep(0.02)
        finals = [r for peer in peers for r in peer.responses(1.5) if r.status >= 200]
    finally:
        for peer in peers:
            peer.close()
        _hang_up(server, calls)
    assert finals, "no answers to the flood"
    assert all(r.status == 503 and r.header("retry-after") for r in finals), \
        sorted({(r.status, r.header("retry-after")) for r in finals})
    server.assert_healthy("a flood of INVITEs at capacity")


def test_the_rtp_port_range_is_bounded(server):
    used = set()
    for _ in range(3):
        calls = _fill(server, 3)
        used |= {media_port(answer) for _, answer in calls}
        _hang_up(server, calls)
        time.sleep(0.3)
    assert used and all(server.rtp_base <= p < server.rtp_base + RTP_PORT_RANGE for p in used), sorted(used)


# ---- fuzzing -------------------------------------------------------------------------------------------

def test_mutation_fuzz_of_sip_datagrams(server):
    sent = {"datagrams": 0, "bytes": 0}
    sockets = {ip: socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for ip in ("127.0.0.1", ALLOWED, STRANGER)}
    for ip, sock in sockets.items():
        sock.bind((ip, 0))
    sources = list(sockets.values())

    @settings(max_examples=FUZZ_DATAGRAMS, derandomize=True, database=None, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(datagrams(server.port))
    def send(data: bytes) -> None:
        source = sources[sent["datagrams"] % len(sources)]
        try:
            source.sendto(data, ("127.0.0.1", server.port))
        except OSError:  # larger than a datagram may be
            return
        sent["datagrams"] += 1
        sent["bytes"] += len(data)
        if sent["datagrams"] % 200 == 0:
            assert server.alive(), f"died after {sent['datagrams']} datagrams\n{server.tail()}"
            time.sleep(0.05)  # let the server drain its socket now and then

    try:
        send()
    finally:
        for sock in sockets.values():
            sock.close()
    print(f"fuzz: {sent['datagrams']} datagrams ({sent['bytes'] / 1e6:.1f} MB) sent")
    assert sent["datagrams"] >= 2000
    after = server.assert_healthy(f"{sent['datagrams']} fuzzed datagrams")
    print(f"fuzz: resources at start {server.baseline}, after {after}")
    nodes = keyed_call_nodes(server.work / "after-fuzz", server.port, server.calls)
    assert nodes[:1] == ["balance"], nodes


def test_garbage_rtp_into_a_live_call_and_strangers_hear_nothing(server):
    """Junk RTP and RTCP from the caller's own port and from a stranger: the call goes on, and the
    stranger, who also sends well-formed RTP and RTCP (which pjmedia would latch onto), gets nothing back."""
    calls = _fill(server, 1)
    peer, answer = calls[0]
    agent_rtp = media_port(answer)
    assert agent_rtp
    rnd = random.Random(7)
    heard_by_stranger = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as caller_rtp, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
        caller_rtp.bind((ALLOWED, peer.port + 2))
        stranger.bind((STRANGER, 0))
        stranger.setblocking(False)
        # The media lock is taken when the caller's first RTP arrives; before that a stranger's very first
        # packets can race it (a documented limit; one got through under load). So the caller speaks first.
        for i in range(50):
            seq, stamp = (i - 50) % 2 ** 16, ((i - 50) * 80) % 2 ** 32  # runs on into the loop's 0, 1, 2, ...
            caller_rtp.sendto(struct.pack("!BBHII", 0x80, 0, seq, stamp, 0x1111) + b"\xff" * 160,
                              ("127.0.0.1", agent_rtp))
            time.sleep(0.02)
        for i in range(1500):
            if i % 2 == 0:  # the caller's steady RTP
                caller_rtp.sendto(struct.pack("!BBHII", 0x80, 0, i, i * 80, 0x1111) + b"\xff" * 160,
                                  ("127.0.0.1", agent_rtp))
            size = rnd.choice((0, 1, 11, 12, 13, 172, 1400))
            junk = bytes(rnd.getrandbits(8) for _ in range(size))
            if i % 3 == 0:  # well-formed: RTP, then an RTCP sender report
                junk = struct.pack("!BBHII", 0x80, 0, 5000 + i, i * 80, 0x2222) + b"\xff" * 160
                stranger.sendto(bytes([0x80, 200, 0, 6]) + bytes(24), ("127.0.0.1", agent_rtp + 1))
            for port in (agent_rtp, agent_rtp + 1):
                (caller_rtp if i % 5 == 0 else stranger).sendto(junk, ("127.0.0.1", port))
            try:
                while True:
                    stranger.recvfrom(4096)
                    heard_by_stranger += 1
            except OSError:
                pass
            time.sleep(0.004)
    assert server.alive(), server.tail()
    assert heard_by_stranger == 0, f"the stranger received {heard_by_stranger} packets of the call"
    _hang_up(server, calls)
    server.assert_healthy("garbage RTP and RTCP")


def test_an_ordinary_call_still_reaches_balance(server):
    nodes = keyed_call_nodes(server.work / "ordinary", server.port, server.calls)
    assert nodes[:1] == ["balance"], nodes
    server.assert_healthy("the whole module")


# ---- shutdown --------------------------------------------------------------------------------------------

def test_a_second_sigterm_hangs_up_at_once_and_exits_cleanly(tmp_path):
    require_sipp()
    port = free_udp_port()
    proc = start_serve(tmp_path / "serve.log", port, ["--rtp-port", str(free_udp_port(even=True)),
                                                      "--grace", "60"])
    try:
        with SipPeer(ALLOWED) as peer:
            peer.invite(port)
            answer = peer.final(5)
            assert answer is not None and answer.status == 200
            peer.ack(answer, port)
            time.sleep(2.0)  # the session is up
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            assert proc.poll() is None, "the first signal must let the call go on"
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(30)
    finally:
        stop_serve(proc)
    log = (tmp_path / "serve.log").read_text(errors="replace")
    assert code == 0, f"exit {code}\n{log[-3000:]}"
    import json

    [call_dir] = [d for d in (tmp_path / "calls").iterdir() if d.is_dir()]
    ended = [json.loads(line) for line in (call_dir / "events.jsonl").read_text().splitlines()
             if '"call_ended"' in line]
    assert ended and ended[-1]["outcome"] == "agent-hangup" and ended[-1]["reason"] == "shutdown", ended
    assert json.loads((call_dir / "sip.json").read_text())["outcome"] == "agent-hangup"
    assert os.path.getsize(call_dir / "recording.wav") > 44
