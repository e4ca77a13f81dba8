"""A CRM/helpdesk receiver for the agent's webhooks: standard library only, copy it and adapt `handle`.

    IVR_WEBHOOK_SECRET=... python examples/webhook_receiver.py --port 8080
    IVR_WEBHOOK_SECRET=... ivr serve --webhook http://127.0.0.1:8080/ivr --webhook-secret-env IVR_WEBHOOK_SECRET

What it does with each POST:
1. checks the IVR-Signature header (HMAC-SHA256 of "<t>.<body>" with the shared secret, t within 5
   minutes): a missing, wrong or stale signature, or a tampered body, gets 401; a body that is not an
   event gets 400;
2. de-duplicates on the Idempotency-Key header (the event's id, the same on every retry): an event seen
   before gets 200 again and is not handled twice (the agent delivers at least once);
3. handles it: prints a line, and for dialog.failed and call.escalated "creates a ticket" from the
   event's data.ticket (the ticket.create payload: summary, reason, emotion, transcript link, redacted
   excerpt) - here printed as JSON; post it to your helpdesk's API instead.
Answer 2xx quickly: anything else (or no answer within the agent's timeout) is retried with backoff.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import sqlite3
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOLERANCE_S = 300
MAX_BODY = 1 << 20


def verify_signature(secret: bytes, header: str | None, body: bytes, tolerance_s: float = TOLERANCE_S) -> bool:
    """IVR-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)> (any v1 may match)."""
    parts = [p.strip().partition("=") for p in (header or "").split(",")]
    stamps = [v for k, _, v in parts if k == "t" and v.isdigit()]
    macs = [v for k, _, v in parts if k == "v1"]
    if not stamps or not macs or abs(time.time() - int(stamps[0])) > tolerance_s:
        return False
    expected = hmac.new(secret, stamps[0].encode() + b"." + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, mac) for mac in macs)


class Seen:
    """Idempotency keys already handled, in SQLite (a file survives the receiver's restarts)."""

    def __init__(self, path: str = ":memory:") -> None:
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS seen (key TEXT PRIMARY KEY, at REAL NOT NULL)")
        self._lock = threading.Lock()

    def first_time(self, key: str) -> bool:
        """True once per key (atomically: two concurrent deliveries of one event, one wins)."""
        with self._lock, self._db:
            return self._db.execute("INSERT OR IGNORE INTO seen VALUES (?, ?)", (key, time.time())).rowcount == 1


def handle(event: dict[str, Any]) -> dict[str, Any] | None:
    """What this receiver does with a new event; returns the ticket it created, if any."""
    data = event.get("data") or {}
    print(f"{event.get('type')}: call {event.get('call_id')} {data.get('outcome') or ''} {data.get('reason') or ''}",
          flush=True)
    if event.get("type") in ("dialog.failed", "call.escalated") and isinstance(data.get("ticket"), dict):
        ticket = data["ticket"]  # {"action": "ticket.create", "subject", "summary", "priority", "reason", ...}
        print("ticket.create " + json.dumps(ticket, ensure_ascii=False), flush=True)
        return dict(ticket)
    return None


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return self._answer(413, "too large")
        body = self.rfile.read(length)
        if not verify_signature(self.server.secret, self.headers.get("IVR-Signature"), body):
            return self._answer(401, "bad signature")
        try:
            event = json.loads(body)
            key = self.headers.get("Idempotency-Key") or event["id"]
        except (ValueError, KeyError, TypeError):
            return self._answer(400, "not an event")
        if not self.server.seen.first_time(key):
            return self._answer(200, "duplicate")
        ticket = handle(event)
        self.server.events.append(event)
        if ticket is not None:
            self.server.tickets.append(ticket)
        return self._answer(200, "ok")

    def _answer(self, status: int, text: str) -> None:
        data = json.dumps({"status": text}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:  # quiet: one line per event from handle()
        pass


class Receiver(ThreadingHTTPServer):
    def __init__(self, secret: bytes, host: str = "127.0.0.1", port: int = 8080, seen: Seen | None = None) -> None:
        super().__init__((host, port), Handler)
        self.secret = secret
        self.seen = seen or Seen()
        self.events: list[dict[str, Any]] = []
        """Events handled, in order (each once)."""
        self.tickets: list[dict[str, Any]] = []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--secret-env", default="IVR_WEBHOOK_SECRET", help="variable holding the shared secret")
    parser.add_argument("--seen-db", default=":memory:", help="SQLite file of handled idempotency keys")
    args = parser.parse_args()
    secret = os.environ.get(args.secret_env, "")
    if not secret:
        print(f"set {args.secret_env} to the secret the agent signs with", file=sys.stderr)
        return 2
    server = Receiver(secret.encode(), args.host, args.port, Seen(args.seen_db))
    print(f"listening on http://{args.host}:{server.server_address[1]}/", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
