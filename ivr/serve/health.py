"""The HTTP side of `ivr serve`: /metrics (Prometheus), /healthz (the process is alive), /readyz (it takes calls).

It starts before the models load, so /readyz answers 503 until they are loaded, the SIP transport is up and
the call store answers. GET only, small answers, a short socket timeout: the port may face a scanner, and
nothing it sends reaches a call. Bind it to loopback or a management network (`--http-bind`).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ivr.serve import metrics

log = logging.getLogger(__name__)

Check = Callable[[], bool]


class Readiness:
    """Named checks; ready when every one passes. A check that is not registered yet counts as not ready."""

    def __init__(self, *names: str) -> None:
        self._checks: dict[str, Check | None] = dict.fromkeys(names)

    def set(self, name: str, check: Check | bool) -> None:
        if not callable(check):
            value = check

            def check() -> bool:
                return value
        self._checks[name] = check

    def state(self) -> dict[str, bool]:
        out: dict[str, bool] = {}
        for name, check in self._checks.items():
            try:
                out[name] = bool(check()) if check is not None else False
            except Exception:
                out[name] = False
        return out

    def ready(self) -> bool:
        return all(self.state().values())


class _Handler(BaseHTTPRequestHandler):
    server: _HealthHttpServer
    timeout = 5.0  # a peer that connects and says nothing is dropped
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, generate_latest(metrics.registry()), CONTENT_TYPE_LATEST)
        elif path == "/healthz":
            self._send(200, b"ok\n", "text/plain")
        elif path == "/readyz":
            state = self.server.readiness.state()
            ready = all(state.values())
            metrics.READY.set(1 if ready else 0)
            body = json.dumps({"ready": ready, "checks": state}).encode() + b"\n"
            self._send(200 if ready else 503, body, "application/json")
        else:
            self._send(404, b"not found\n", "text/plain")

    def do_HEAD(self) -> None:  # noqa: N802
        self._send(200 if self.path in ("/healthz", "/metrics") else 404, b"", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's name)
        log.debug("http %s: %s", self.address_string(), format % args)


class _HealthHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    readiness: Readiness

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A peer that breaks off or sends garbage costs one debug line, not a traceback on stderr."""
        log.debug("http %s: request failed", client_address[0] if client_address else "?", exc_info=True)


class HealthServer:
    """/metrics, /healthz and /readyz on bind:port, served from a daemon thread."""

    def __init__(self, bind: str, port: int, readiness: Readiness) -> None:
        self.httpd = _HealthHttpServer((bind, port), _Handler)
        self.httpd.readiness = readiness
        self.readiness = readiness
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.25},
                                        name="http", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
