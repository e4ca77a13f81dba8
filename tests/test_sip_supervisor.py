"""Self-healing `ivr serve --max-calls N`: the supervisor restarts what dies, the front routes around it.

Fast (no models): the backoff; a child's watchdog (pings over its own notify socket, only from its own
pid); the supervisor restarting a killed child after 1 s, then 2 s; the generated Kamailio configuration
running for real: it answers OPTIONS, its RPC socket marks a worker down and up, and its OPTIONS probing
finds a worker that does not answer.
End to end (models, sipp, Kamailio): two workers behind the front, a call on one, SIGKILL to the other.
The call goes on to its normal end, the supervisor stays up, a call placed right after the kill is
answered, the killed worker is back on its port within seconds, and the front sends calls to it again.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from ivr.serve.bench import free_port, free_port_range
from ivr.serve.children import Backoff, Child, describe_exit
from ivr.serve.front import READY_LINE, Supervisor
from ivr.serve.kamailio import PING_INTERVAL_S, KamailioRpc, dispatcher_list, kamailio_config, sip_ping
from telephony.sip.config import SipConfig
from tests.sip.listener import DatagramListener, udp_socket
from tests.sip.rtp_pcap import quiet_pcap
from tests.sip.serve import call_events, start_server, tear_down
from tests.sip.sipp import finish_sipp, require_sipp, sipp_errors, start_call

REPO = Path(__file__).resolve().parents[1]
KAMAILIO = shutil.which("kamailio", path="/usr/sbin:/usr/bin:/sbin")
BACK_TIMEOUT_S = 180.0
"""A restarted worker loads its models again: seconds on an idle machine, more on a loaded CI runner."""


def test_backoff_doubles_up_to_the_cap_and_resets_after_a_stable_run():
    backoff = Backoff(first_s=1.0, cap_s=30.0, stable_s=60.0)
    assert [backoff.next_delay(up_s=2.0) for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.next_delay(up_s=61.0) == 1  # it had stayed up: a fresh start
    assert backoff.next_delay(up_s=0.5) == 2


def test_describe_exit():
    assert describe_exit(1) == "exit code 1"
    assert describe_exit(-9) == "signal 9 (SIGKILL)"


def _until(predicate, timeout_s: float, step_s: float = 0.05, tick=None) -> float:
    """Seconds until predicate() is true (calling tick() between looks); fails after timeout_s."""
    t0 = time.monotonic()
    while not predicate():
        assert time.monotonic() - t0 < timeout_s, "timed out"
        if tick is not None:
            tick()
        time.sleep(step_s)
    return time.monotonic() - t0


def test_child_watchdog_counts_only_its_own_pings():
    script = ("import time\nfrom ivr.serve.sdnotify import Notifier\nn = Notifier()\nprint('ready', flush=True)\n"
              "for _ in range(5):\n    n.notify('WATCHDOG=1')\n    time.sleep(0.1)\ntime.sleep(60)\n")
    child = Child("pinger", [sys.executable, "-c", script], ready_line="ready", watchdog_s=1.0,
                  popen={"cwd": str(REPO)})
    child.spawn()
    try:
        assert child.notify_socket is not None and child.notify_socket.startswith("@")
        _until(lambda: child.ready, 30)
        time.sleep(0.8)  # its five pings are in
        child.drain_notify(time.monotonic())
        assert child.ready_at is not None and child.last_ping > child.ready_at, "its pings were not counted"
        assert not child.watchdog_expired(time.monotonic())
        time.sleep(1.3)  # it stopped pinging; a ping from another process does not count
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as stranger:
            stranger.sendto(b"WATCHDOG=1", "\0" + child.notify_socket[1:])
        child.drain_notify(time.monotonic())
        assert child.watchdog_expired(time.monotonic())
    finally:
        child.kill(timeout_s=5)
    assert child.proc is None and child.notify_socket is None


def test_supervisor_restarts_a_killed_child_with_backoff_and_leaves_the_others_alone():
    sleeper = f"import time\nprint('ivr serve: {READY_LINE}x', flush=True)\ntime.sleep(120)\n"
    supervisor = Supervisor(SipConfig(bind="127.0.0.1", port=free_port(), max_calls=6), ["serve"])
    supervisor.workers = [Child(f"worker {i}", [sys.executable, "-c", sleeper], ready_line=READY_LINE)
                          for i in range(2)]
    try:
        for worker in supervisor.workers:
            worker.spawn()
        _until(lambda: all(w.ready for w in supervisor.workers), 30)
        other, victim = supervisor.workers
        other_pid = other.pid
        delays = []
        for _ in range(2):
            old = victim.pid
            assert old is not None
            os.kill(old, signal.SIGKILL)
            delays.append(_until(lambda old=old: victim.pid != old and victim.ready and victim.down_since is None, 30,
                                  tick=supervisor.tick))
        assert victim.restarts == 2 and victim.down_since is None
        assert 1.0 <= delays[0] < 2.5 and 2.0 <= delays[1] < 3.5, delays  # 1 s, then 2 s, plus the start
        assert other.pid == other_pid and other.ready
        assert supervisor.status().startswith("2/2 workers up")
    finally:
        supervisor.kill()
    assert all(w.proc is None for w in supervisor.workers)


class _FakeWorker(DatagramListener):
    """Answers OPTIONS with 200 (as pjsua answers the dispatcher's pings) and an INVITE with `invite_status`;
    keeps the Call-ID of each INVITE it got. `host`: the loopback address it stands on (a "machine")."""

    def __init__(self, host: str = "127.0.0.1", invite_status: str = "200 OK") -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((host, 0))
        super().__init__(sock)
        self.port = self.sock.getsockname()[1]
        self.invite_status = invite_status
        self.invites: list[str] = []

    def received(self, data: bytes, address: object) -> None:
        head = data.decode("latin-1").split("\r\n\r\n", 1)[0].split("\r\n")
        keep = [h for h in head[1:] if h.split(":", 1)[0].lower() in ("via", "from", "to", "call-id", "cseq")]
        status = "200 OK"
        if head[0].startswith("INVITE "):
            status = self.invite_status
            self.invites += [h.split(":", 1)[1].strip() for h in head if h.lower().startswith("call-id:")]
        elif head[0].startswith(("ACK ", "SIP/2.0")):
            return
        reply = f"SIP/2.0 {status}\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n"
        self.sock.sendto(reply.encode(), address)


def _invite(front_port: int, call_id: str, timeout_s: float = 15.0) -> int:
    """Sends an INVITE to the front on 127.0.0.1 and returns the final status code it answers."""
    with udp_socket() as sock:
        port = sock.getsockname()[1]
        invite = (f"INVITE sip:agent@127.0.0.1:{front_port} SIP/2.0\r\n"
                  f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{call_id}\r\nMax-Forwards: 70\r\n"
                  f"From: <sip:caller@127.0.0.1>;tag={call_id}\r\nTo: <sip:agent@127.0.0.1>\r\n"
                  f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@127.0.0.1:{port}>\r\n"
                  "Content-Length: 0\r\n\r\n")
        sock.sendto(invite.encode(), ("127.0.0.1", front_port))
        sock.settimeout(timeout_s)
        while True:
            code = int(sock.recv(65535).split(b" ", 2)[1])
            if code >= 200:
                return code


def test_the_front_spreads_calls_over_two_hosts_and_fails_over_between_them(tmp_path):
    """Remote workers (`ivr serve --remote-worker`) on two loopback addresses standing for two machines:
    a host that answers 503 (full) passes the call to the other; a host that stops answering is left out."""
    if KAMAILIO is None:
        pytest.skip("kamailio is not installed (Debian package kamailio; scripts/setup.sh installs it)")
    full = _FakeWorker("127.0.0.2", "503 Service Unavailable")
    other = _FakeWorker("127.0.0.3", "480 Temporarily Unavailable")  # a final answer passed on as it is
    remote = (f"sip:127.0.0.2:{full.port}", f"sip:127.0.0.3:{other.port}")
    config = SipConfig(bind="127.0.0.1", port=free_port_range(1, tcp=True), max_calls=0, remote_workers=remote)
    supervisor = Supervisor(config, ["serve"])
    assert supervisor.workers == []
    kamailio = supervisor._front_child(KAMAILIO)
    kamailio.spawn()
    try:
        _until(lambda: sip_ping("127.0.0.1", config.port, 0.2) == 200, 15)
        codes = [_invite(config.port, f"spread{i}") for i in range(2)]  # round-robin: each host first once
        assert codes == [480, 480] and len(other.invites) == 2 and len(full.invites) == 1, (codes, full.invites)
        full.close()  # the first host goes away: probing marks it inactive, calls go to the other
        _until(lambda: supervisor.rpc.worker_states()[remote[0]].startswith("I"), 15, step_s=0.2)
        assert [_invite(config.port, f"after{i}") for i in range(2)] == [480, 480]
        assert len(other.invites) == 4
        other.invite_status = "503 Service Unavailable"  # every host full: the caller gets 503
        assert _invite(config.port, "full") == 503
    finally:
        kamailio.kill(timeout_s=5)
        supervisor.kill()
        full.close()  # closing twice is harmless
        other.close()


def test_front_config_runs_answers_options_and_follows_rpc_and_probing(tmp_path):
    """Kamailio with the generated configuration (as this user): the supervisor's RPC marks a worker down
    and up, and the dispatcher's probing finds on its own that a worker does not answer."""
    if KAMAILIO is None:
        pytest.skip("kamailio is not installed (Debian package kamailio; scripts/setup.sh installs it)")
    alive = _FakeWorker()
    dead = free_port()  # nothing listens there
    config = SipConfig(bind="127.0.0.1", port=free_port_range(1, tcp=True), max_calls=6)
    (tmp_path / "dispatcher.list").write_text(dispatcher_list("127.0.0.1", [alive.port, dead]))
    (tmp_path / "k.cfg").write_text(kamailio_config(config, [alive.port, dead], tmp_path))
    proc = subprocess.Popen([KAMAILIO, "-DD", "-E", "-f", str(tmp_path / "k.cfg"), "-Y", str(tmp_path),
                             "-P", str(tmp_path / "pid"), "-m", "32", "-M", "8"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    rpc = KamailioRpc(tmp_path / "rpc.sock")
    alive_uri, dead_uri = f"sip:127.0.0.1:{alive.port}", f"sip:127.0.0.1:{dead}"
    try:
        _until(lambda: sip_ping("127.0.0.1", config.port, 0.2) == 200, 15)
        assert set(rpc.worker_states()) == {alive_uri, dead_uri}
        assert rpc.set_worker("127.0.0.1", alive.port, up=False)
        assert rpc.worker_states()[alive_uri].startswith("I")
        # probing: the live worker answers the next ping and is active again; the dead one goes inactive
        # after PROBING_THRESHOLD pings that time out (WORKER_RELAY_TIMEOUT_MS each)
        _until(lambda: rpc.worker_states()[alive_uri].startswith("A"), 10, step_s=0.2)
        _until(lambda: rpc.worker_states()[dead_uri].startswith("I"), 15, step_s=0.2)
        assert rpc.worker_states()[alive_uri].startswith("A")
        assert rpc.set_worker("127.0.0.1", dead, up=True)
        assert rpc.worker_states()[dead_uri].startswith("A")
        # a worker that answers pings but is not ready (/readyz 503) is disabled: the pings keep it out
        assert rpc.set_worker("127.0.0.1", alive.port, up=False, hold=True)
        time.sleep(3 * PING_INTERVAL_S)
        assert rpc.worker_states()[alive_uri].startswith("D"), rpc.worker_states()
        assert rpc.set_worker("127.0.0.1", alive.port, up=True)
        assert rpc.worker_states()[alive_uri].startswith("A")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
        alive.close()
    assert b"does not answer pings" in out, out.decode(errors="replace")[-2000:]
    assert b"ERROR" not in out, out.decode(errors="replace")[-2000:]


# ---- end to end -----------------------------------------------------------------------------------------

class _Output:
    """The supervisor's output (its own lines, and each child's marked [worker i] or [kamailio]), read on
    a thread so that the pipe never fills."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), True)  # _start_server left it non-blocking
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append(line)

    def text(self) -> str:
        return "".join(self.lines)

    def routes(self, sipp_pid: int) -> list[int]:
        """The worker ports the front sent this sipp caller's INVITE to, in order (a failover adds one)."""
        pattern = re.compile(rf"call 1-{sipp_pid}@\S+: INVITE to worker [\d.]+:(\d+)")
        return [int(m.group(1)) for m in pattern.finditer(self.text())]


class _NotifyListener(DatagramListener):
    """A stand-in for systemd's notify socket (an abstract name): every datagram, read on a thread."""

    def __init__(self) -> None:
        self.name = f"ivr-test-notify-{os.getpid()}-{time.monotonic_ns()}"
        self.messages: list[str] = []
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind("\0" + self.name)
        super().__init__(sock)

    def received(self, data: bytes, address: object) -> None:
        self.messages.append(data.decode())

    def statuses(self) -> list[str]:
        return [line[len("STATUS="):] for m in self.messages for line in m.split("\n") if line.startswith("STATUS=")]


def _worker_pids(supervisor_pid: int) -> dict[int, int]:
    """{SIP port: pid} of the supervisor's worker processes, from /proc."""
    pids = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == supervisor_pid and "--worker-of" in argv:
            ports = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--port"]
            pids[int(ports[-1])] = int(entry.name)  # the last --port is the worker's own
    return pids


def _caller(tmp_path: Path, name: str, port: int, pcap: Path, talk_ms: int, after_ms: int):
    log_dir = tmp_path / name
    return start_call(log_dir, "caller_routed.xml", port, PCAP=pcap, INFO_AFTER_MS=talk_ms, INFO_KEY=1,
                      BYE_AFTER_MS=after_ms), log_dir


def _call_meta(calls: Path, sipp_pid: int, timeout_s: float = 15.0) -> dict:
    """The sip.json of this sipp caller's call (written once the call's session has closed)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for meta_path in calls.glob("*/sip.json"):
            meta = json.loads(meta_path.read_text())
            if meta["sip_call_id"].startswith(f"1-{sipp_pid}@"):
                return meta
        time.sleep(0.2)
    raise AssertionError(f"no call folder for sipp {sipp_pid}: {sorted(p.name for p in calls.iterdir())}")


@pytest.mark.models
@pytest.mark.sip
@pytest.mark.slow
def test_a_killed_worker_is_back_and_the_other_workers_calls_go_on(tmp_path, monkeypatch):
    require_sipp()
    if KAMAILIO is None:
        pytest.skip("kamailio is not installed (Debian package kamailio; scripts/setup.sh installs it)")
    quiet_pcap(tmp_path / "quiet.pcap", 30.0)
    pcap = tmp_path / "quiet.pcap"
    calls = tmp_path / "calls"
    port = free_port_range(3, tcp=True)  # the front, then two workers
    notify = _NotifyListener()  # the supervisor talks to "systemd"; its workers talk to the supervisor
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + notify.name)
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    http = free_port_range(3, tcp=True)  # the supervisor's, then each worker's
    server = start_server(calls, port, ["--max-calls", "6", "--allow", "127.0.0.1/32", "--http-port", str(http)])
    output = _Output(server)
    procs: list[subprocess.Popen] = []
    try:
        workers = _worker_pids(server.pid)
        assert sorted(workers) == [port + 1, port + 2], workers
        # a long call; once the front has routed it and the worker answered, kill the *other* worker
        long_call, long_dir = _caller(tmp_path, "long", port, pcap, talk_ms=9000, after_ms=9000)
        procs.append(long_call)
        _until(lambda: output.routes(long_call.pid), 20)
        _until(lambda: any(calls.iterdir()) if calls.exists() else False, 20)
        busy = output.routes(long_call.pid)[-1]
        victim_port = next(p for p in workers if p != busy)
        killed_at = time.time()
        t_kill = time.monotonic()
        os.kill(workers[victim_port], signal.SIGKILL)
        # a call right after the kill, maybe before the supervisor has told the front (then the front fails
        # over once the dead worker does not answer), and one a second later, when the front knows
        new_call, new_dir = _caller(tmp_path, "after-kill", port, pcap, talk_ms=2000, after_ms=1000)
        time.sleep(max(0.0, 1.0 - (time.monotonic() - t_kill)))
        later_call, later_dir = _caller(tmp_path, "1s-after-kill", port, pcap, talk_ms=2000, after_ms=1000)
        later_at = time.time()
        procs += [new_call, later_call]
        for proc, log_dir in ((new_call, new_dir), (later_call, later_dir)):
            rc, err = finish_sipp(proc, 60)
            assert rc == 0, f"a call after the kill failed: {err[-300:]} {sipp_errors(log_dir)}"
            assert output.routes(proc.pid)[-1] == busy, output.routes(proc.pid)
        assert output.routes(later_call.pid) == [busy], "the front still sent a call to the dead worker"
        answered_after_s = _call_meta(calls, new_call.pid)["started_at"] - killed_at
        later_answered_s = _call_meta(calls, later_call.pid)["started_at"] - later_at
        failover = len(output.routes(new_call.pid)) > 1
        # the killed worker is back on its port
        _until(lambda: sip_ping("127.0.0.1", victim_port, 0.3) == 200, BACK_TIMEOUT_S, step_s=0.2)
        back_s = time.monotonic() - t_kill
        new_pid = _worker_pids(server.pid).get(victim_port)
        assert new_pid is not None and new_pid != workers[victim_port]
        _until(lambda: f"is back (pid {new_pid})" in output.text(), 10)
        # the call on the other worker went on to its normal end
        rc, err = finish_sipp(long_call, 60)
        assert rc == 0, f"the call on the other worker failed: {err[-300:]} {sipp_errors(long_dir)}"
        long_s = time.monotonic() - t_kill
        # the front routes to the restarted worker again: of two calls (round-robin), one goes there
        pair = [_caller(tmp_path, f"again{i}", port, pcap, talk_ms=2000, after_ms=1000) for i in range(2)]
        procs.extend(p for p, _ in pair)
        for proc, log_dir in pair:
            rc, err = finish_sipp(proc, 60)
            assert rc == 0, f"a call after the restart failed: {err[-300:]} {sipp_errors(log_dir)}"
        assert victim_port in {output.routes(p.pid)[-1] for p, _ in pair}, [output.routes(p.pid) for p, _ in pair]
        assert server.poll() is None, "the supervisor stopped"
        # one scrape target for all: the supervisor adds up every worker's metrics, the killed one's too
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=5) as reply:
            scraped = reply.read().decode()
        answered = re.search(r"^ivr_calls_answered_total (\S+)$", scraped, re.M)
        assert answered is not None and float(answered.group(1)) >= 5, scraped[-2000:]
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/readyz", timeout=5) as reply:
            assert reply.status == 200
        meta = _call_meta(calls, long_call.pid)
        assert meta["outcome"] == "caller-hangup", meta
        events = call_events(calls / meta["call_id"])
        assert [e["node"] for e in events if e["type"] == "dialog" and e["event"] == "DigitsEntered"] == ["balance"]
    finally:
        tear_down(server, procs)
        time.sleep(0.5)
        notify.close()
    print(f"worker on port {victim_port} back (answers OPTIONS) {back_s:.1f} s after SIGKILL; the call placed "
          f"right after the kill was answered {answered_after_s:.2f} s after it "
          f"({'failed over from the dead worker' if failover else 'routed straight to the live worker'}); one "
          f"placed 1 s after the kill was answered {later_answered_s:.2f} s after it was placed; the other "
          f"worker's call ended normally {long_s:.1f} s after the kill")
    assert server.returncode == 0, output.text()[-3000:]
    assert "restarting it in 1 s" in output.text()
    assert notify.messages[0].startswith("READY=1\nSTATUS=2/2 workers up"), notify.messages[:3]
    statuses = notify.statuses()
    down = next(i for i, status in enumerate(statuses) if status.startswith("1/2 workers up"))
    assert any(status.startswith("2/2 workers up") for status in statuses[down:]), statuses
    assert notify.messages.count("WATCHDOG=1") >= 10, notify.messages
    assert notify.messages[-1].startswith("STOPPING=1"), notify.messages[-3:]
