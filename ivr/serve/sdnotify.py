"""systemd's notify protocol (sd_notify) without libsystemd: READY, STATUS, WATCHDOG, STOPPING.

systemd (Type=notify, WatchdogSec=) passes $NOTIFY_SOCKET, a unix datagram socket (a path, or an abstract
name written with a leading '@'), and $WATCHDOG_USEC, the watchdog period in microseconds ($WATCHDOG_PID,
when set, names the one process meant to ping). Each message is one datagram of KEY=VALUE lines. Without
$NOTIFY_SOCKET everything here is a no-op, so `ivr serve` behaves the same with or without systemd.

`ivr serve --max-calls N` in front mode plays systemd's part for its workers: it gives each one its own
notify socket and watchdog period (ivr.serve.front) and restarts a worker whose pings stop.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


def socket_address(value: str | None) -> str | None:
    """$NOTIFY_SOCKET as an AF_UNIX address ('@name' is the abstract name '\\0name'), or None if unusable."""
    if not value:
        return None
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None  # systemd also allows vsock addresses; `ivr serve` does not need them


def watchdog_interval_s(env: Mapping[str, str], pid: int | None = None) -> float | None:
    """How often to ping: half of $WATCHDOG_USEC, in seconds; None when there is no watchdog for us
    (unset, not a positive integer, or $WATCHDOG_PID names another process)."""
    usec = env.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) <= 0:
        return None
    owner = env.get("WATCHDOG_PID", "")
    if owner and owner != str(os.getpid() if pid is None else pid):
        return None
    return int(usec) / 1e6 / 2


class Notifier:
    """Sends notify messages to $NOTIFY_SOCKET; does nothing when it is not set."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        raw = env.get("NOTIFY_SOCKET")
        self.address = socket_address(raw)
        if raw and self.address is None:
            log.warning("NOTIFY_SOCKET=%r is not a unix socket path or @abstract name; not notifying", raw)
        self.watchdog_s = watchdog_interval_s(env) if self.address else None
        """Seconds between watchdog pings (half the period systemd allows), or None: no watchdog."""
        self._last_ping = float("-inf")
        self._failed = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *fields: str) -> bool:
        """One datagram with these KEY=VALUE lines; False if it could not be sent (never raises)."""
        if self.address is None:
            return False
        data = "\n".join(fields).encode("utf-8", errors="replace")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.setblocking(False)  # a full queue (a listener that does not read) must not stall us
                sock.sendto(data, self.address)
        except OSError as exc:
            if not self._failed:  # once: a missing socket would otherwise log at every ping
                log.warning("sd_notify to %s failed: %s", self.address.replace("\0", "@"), exc)
            self._failed = True
            return False
        self._failed = False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def stopping(self, status: str | None = None) -> bool:
        return self.notify("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self, now: float | None = None) -> bool:
        """WATCHDOG=1 if a ping is due (every watchdog_s); call it as often as you like from a healthy loop."""
        if self.watchdog_s is None:
            return False
        now = time.monotonic() if now is None else now
        if now - self._last_ping < self.watchdog_s:
            return False
        self._last_ping = now
        return self.notify("WATCHDOG=1")
