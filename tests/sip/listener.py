"""A datagram socket read on a thread until closed: the base of the tests' stand-ins (the caller's RTP
port, a fake SIP worker, systemd's notify socket)."""

from __future__ import annotations

import socket
import threading
from typing import Any


class DatagramListener:
    """Calls `received(data, address)` for every datagram on `sock` until `close()`."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def received(self, data: bytes, address: Any) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, address = self.sock.recvfrom(65536)
            except OSError:
                continue
            self.received(data, address)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def udp_socket(port: int = 0) -> socket.socket:
    """A UDP socket bound to 127.0.0.1:port (0: any free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    return sock
