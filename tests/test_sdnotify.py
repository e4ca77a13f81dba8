"""systemd's notify protocol (ivr.serve.sdnotify), and `ivr serve` speaking it to a socket the test binds.

Unit tests: the datagrams sent to a path or an abstract ('@') socket, nothing at all without
$NOTIFY_SOCKET, and the watchdog interval read from $WATCHDOG_USEC / $WATCHDOG_PID. The integration test
runs `python -m ivr serve` as systemd would (Type=notify, WatchdogSec=1): READY=1 once it listens (the
listening line is out by then), WATCHDOG=1 every half period, STOPPING=1 on SIGTERM.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from ivr.serve.sdnotify import Notifier, socket_address, watchdog_interval_s

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 180


def _listener(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(2.0)
    return sock


def test_no_notify_socket_is_a_no_op():
    notifier = Notifier({})
    assert not notifier.enabled and notifier.watchdog_s is None
    assert notifier.ready("x") is False and notifier.watchdog() is False and notifier.stopping() is False


def test_datagrams_to_a_socket_path(tmp_path):
    path = str(tmp_path / "notify.sock")
    with _listener(path) as sock:
        notifier = Notifier({"NOTIFY_SOCKET": path})
        assert notifier.enabled
        assert notifier.ready("answering calls")
        assert sock.recv(4096) == b"READY=1\nSTATUS=answering calls"
        assert notifier.status("2/2 workers up")
        assert sock.recv(4096) == b"STATUS=2/2 workers up"
        assert notifier.stopping()
        assert sock.recv(4096) == b"STOPPING=1"


def test_datagrams_to_an_abstract_socket():
    name = f"ivr-test-notify-{uuid.uuid4().hex}"
    with _listener("\0" + name) as sock:
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "2000000"})
        assert notifier.watchdog_s == 1.0
        assert notifier.watchdog(now=100.0)
        assert sock.recv(4096) == b"WATCHDOG=1"
        assert not notifier.watchdog(now=100.5)  # not due yet: nothing sent
        assert notifier.watchdog(now=101.0)
        assert sock.recv(4096) == b"WATCHDOG=1"
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            sock.recv(4096)


def test_a_missing_or_odd_socket_never_raises(tmp_path):
    assert Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")}).ready() is False
    odd = Notifier({"NOTIFY_SOCKET": "relative/path"})
    assert not odd.enabled and odd.ready() is False


def test_socket_address():
    assert socket_address("@name") == "\0name"
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address(None) is None and socket_address("") is None and socket_address("@") is None
    assert socket_address("vsock:2:1234") is None


def test_watchdog_interval():
    assert watchdog_interval_s({}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "500000"}) == 0.25
    for bad in ("", "0", "-5", "abc", "1.5"):
        assert watchdog_interval_s({"WATCHDOG_USEC": bad}) is None, bad
    assert watchdog_interval_s({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "42"}, pid=42) == 1.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "43"}, pid=42) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}) == 1.0
    # without a notify socket there is nobody to ping
    assert Notifier({"WATCHDOG_USEC": "2000000"}).watchdog_s is None


def _unit_settings(text: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_the_systemd_unit(tmp_path):
    text = (REPO / "contrib" / "systemd" / "ivr-serve.service").read_text()
    unit = _unit_settings(text)
    for key, value in {"Type": "notify", "NotifyAccess": "main", "Restart": "on-failure", "KillMode": "mixed",
                       "User": "ivr", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes"}.items():
        assert unit.get(key) == [value], (key, unit.get(key))
    watchdog_s = int(unit["WatchdogSec"][0])
    assert watchdog_s / 2 > 10.0  # the ping interval is longer than SIP_STALL_S: a brief stall does not kill it
    assert int(unit["TimeoutStopSec"][0]) > 30 + 20  # --grace (30 s) and the supervisor's margin
    command = unit["ExecStart"][0].split()
    assert command[1:4] == ["--log-format", "json", "serve"] and "--http-port" in command
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return
    local = tmp_path / "ivr-serve.service"  # verify wants an ExecStart that exists
    local.write_text(text.replace(unit["ExecStart"][0].split()[0], shutil.which("true") or "/bin/true"))
    check = subprocess.run([analyze, "verify", str(local)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and not (check.stdout + check.stderr).strip(), check.stdout + check.stderr


def _messages(sock: socket.socket, timeout_s: float) -> list[tuple[float, bytes]]:
    """Every datagram that arrives within timeout_s, with its arrival time."""
    out = []
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            out.append((time.monotonic(), sock.recv(4096)))
        except TimeoutError:
            break
    return out


@pytest.mark.models
@pytest.mark.sip
@pytest.mark.slow
def test_ivr_serve_notifies_ready_watchdog_and_stopping(tmp_path):
    from ivr.serve.bench import free_port

    name = f"ivr-test-serve-{uuid.uuid4().hex}"
    sock = _listener("\0" + name)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "1000000"}
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ivr", "serve", "--port", str(port), "--out",
                             str(tmp_path / "calls"), "--rtp-port", str(free_port(even=True)), "--http-port", "0"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    try:
        sock.settimeout(START_TIMEOUT_S)
        first = sock.recv(4096)  # nothing from stdout is read before READY=1 arrives
        assert first.split(b"\n")[0] == b"READY=1", first
        assert f"STATUS=answering calls on sip:127.0.0.1:{port}".encode() in first
        printed = b""
        while select.select([proc.stdout], [], [], 0)[0]:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            printed += chunk
        assert b"listening on sip:" in printed, "READY=1 came before the listening line: " + printed.decode()[-800:]
        pings = [t for t, data in _messages(sock, 3.2) if data == b"WATCHDOG=1"]
        assert len(pings) >= 3, f"{len(pings)} watchdog pings in 3.2 s with WatchdogSec=1"
        assert max(b - a for a, b in zip(pings, pings[1:], strict=False)) < 1.0, pings  # within the period
        proc.send_signal(signal.SIGTERM)
        after = [data for _, data in _messages(sock, 5.0)]
        assert any(data.startswith(b"STOPPING=1") for data in after), after
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        sock.close()
