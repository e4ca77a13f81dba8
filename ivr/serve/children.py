"""Child processes of the `ivr serve` supervisor (ivr.serve.front): start, watch, restart with backoff.

Each child runs in its own session (its own process group: what it leaves behind when it dies is killed
with it) and dies with the supervisor (PR_SET_PDEATHSIG). Its output is copied to ours, each line marked
with its name, once it is ready; before that the lines are kept to explain a failed start. A child with a
watchdog gets its own notify socket ($NOTIFY_SOCKET, an abstract name) and $WATCHDOG_USEC, exactly what
systemd would give it (ivr.serve.sdnotify): a child that is ready but stops pinging is hung, and the
supervisor kills it, which makes it restart like a crash.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid (SCM_CREDENTIALS)
NOTIFY_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


@dataclass
class Backoff:
    """Delays before each restart: first_s, doubled on every failure, at most cap_s; a child that stayed up
    for stable_s starts from first_s again."""

    first_s: float = 1.0
    cap_s: float = 30.0
    stable_s: float = 60.0
    failures: int = 0

    def next_delay(self, up_s: float) -> float:
        """The delay before restarting a child that just stopped after up_s seconds."""
        if up_s >= self.stable_s:
            self.failures = 0
        delay = min(self.cap_s, self.first_s * 2 ** self.failures)
        self.failures += 1
        return delay


def describe_exit(code: int) -> str:
    """A Popen return code in words: 'exit code 1', 'signal 9 (SIGKILL)'."""
    if code < 0:
        try:
            return f"signal {-code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Child:
    """One supervised process. The supervisor calls spawn(), then polls: exit_code(), ready, watchdog_expired()."""

    def __init__(self, name: str, cmd: list[str], *, ready_line: str | None = None,
                 watchdog_s: float | None = None, popen: dict[str, Any] | None = None) -> None:
        self.name = name
        self.cmd = cmd
        self.ready_line = ready_line
        """Output line (a substring) that says the child is ready; None: ready is set by mark_ready()."""
        self.watchdog_s = watchdog_s
        self.popen = popen or {}
        self.proc: subprocess.Popen[str] | None = None
        self.backoff = Backoff()
        self.started_at = 0.0
        self.ready_at: float | None = None
        self.down_since: float | None = None
        """When it stopped unexpectedly (time.monotonic()); None while it runs or was never down."""
        self.restart_at: float | None = None
        self.restarts = 0
        self._ready = threading.Event()
        self.last_ping = 0.0
        self._tail: deque[str] = deque(maxlen=40)
        self._notify: socket.socket | None = None
        self.notify_socket: str | None = None
        """The child's $NOTIFY_SOCKET ('@' and an abstract name) while it runs with a watchdog."""
        self._reader: threading.Thread | None = None

    # ---- state --------------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def ready(self) -> bool:
        return self.running and self._ready.is_set()

    def exit_code(self) -> int | None:
        """The return code once the current process has exited; None while it runs (or none was started)."""
        return None if self.proc is None else self.proc.poll()

    def tail(self) -> str:
        """What it printed before it was ready (the reason a start failed)."""
        return "".join(self._tail)

    # ---- start, stop --------------------------------------------------------------------------------

    def spawn(self) -> None:
        env = {k: v for k, v in self.popen.get("env", os.environ).items() if k not in NOTIFY_ENV}
        if self.watchdog_s is not None:
            name = f"ivr-serve-{os.getpid()}-{self.name.replace(' ', '-')}-{self.restarts}"
            self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._notify.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            self._notify.bind("\0" + name)
            self._notify.setblocking(False)
            self.notify_socket = env["NOTIFY_SOCKET"] = "@" + name
            env["WATCHDOG_USEC"] = str(int(self.watchdog_s * 1e6))
        self._ready.clear()
        self._tail.clear()
        self.ready_at = None
        try:
            self.proc = subprocess.Popen(
                self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                start_new_session=True, preexec_fn=_die_with_parent, **{**self.popen, "env": env})
        except BaseException:
            if self._notify is not None:
                self._notify.close()
                self._notify = self.notify_socket = None
            raise
        self.started_at = time.monotonic()
        self._reader = threading.Thread(target=self._read, args=(self.proc,), name=f"out-{self.name}",
                                        daemon=True)
        self._reader.start()

    def mark_ready(self) -> None:
        self._ready.set()
        self.ready_at = time.monotonic()
        self.last_ping = self.ready_at

    def signal(self, sig: int) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(sig)

    def reap(self) -> None:
        """After the process exited: kills what is left of its process group and forgets the process."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self._reader is not None:
            self._reader.join(2)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if self._notify is not None:
            self._notify.close()
            self._notify = self.notify_socket = None
        self.proc = None

    def kill(self, timeout_s: float = 10.0, term: bool = True) -> None:
        """SIGTERM (unless term is False: already sent), SIGKILL if still running after timeout_s; reap()."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            if term:
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.reap()

    # ---- watchdog -----------------------------------------------------------------------------------

    def drain_notify(self, now: float) -> None:
        """Reads the child's notify messages: WATCHDOG=1 from its own pid counts as a ping."""
        if self._notify is None or self.proc is None:
            return
        for _ in range(100):
            try:
                data, ancdata, _flags, _addr = self._notify.recvmsg(4096, socket.CMSG_SPACE(UCRED.size))
            except (BlockingIOError, InterruptedError):
                return
            pid = next((UCRED.unpack(d[:UCRED.size])[0] for level, kind, d in ancdata
                        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS), None)
            if pid != self.proc.pid:
                continue  # only the child itself may ping for it
            if b"WATCHDOG=1" in data.split(b"\n"):
                self.last_ping = now

    def watchdog_expired(self, now: float) -> bool:
        """Ready, with a watchdog, and no ping for longer than watchdog_s."""
        return self.watchdog_s is not None and self.ready and now - self.last_ping > self.watchdog_s

    # ---- output -------------------------------------------------------------------------------------

    def marked(self, line: str) -> str:
        """The line with the child's name: `[worker 0] ...`, or a `process` field in a JSON log line."""
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if isinstance(record, dict):
                return json.dumps({**record, "process": self.name}, ensure_ascii=False) + "\n"
        return f"[{self.name}] {line}"

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                if self._ready.is_set() or self.ready_line is None:
                    sys.stderr.write(self.marked(line))
                elif self.ready_line in line:
                    self.mark_ready()
                else:
                    self._tail.append(line)
        except (OSError, ValueError):  # closed by reap()
            pass
