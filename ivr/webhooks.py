"""Webhooks to a CRM or helpdesk: event envelope, Stripe-style signatures, one POST, the retry schedule.

Standard library only (a receiver may import `verify_signature` without the agent's dependencies).
The store's outbox (ivr.store.outbox) keeps events and retries them across restarts; without a store,
`post_with_retries` retries in memory, on a daemon thread, best effort.

Every POST carries:
  Content-Type: application/json
  Idempotency-Key: evt_...     the event's id: the same on every retry of that event (de-duplicate on it)
  IVR-Event: call.ended        the event's type
  IVR-Delivery-Attempt: 1      1 on the first try
  IVR-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>   (when a secret is set)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

EVENT_TYPES = ("call.started", "call.ended", "call.transferred", "call.escalated", "dialog.failed",
               "call.callback_requested", "call.upset")
"""What the agent sends (see the README's Webhooks section for each one's meaning and data)."""
SIGNATURE_HEADER = "IVR-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
EVENT_HEADER = "IVR-Event"
ATTEMPT_HEADER = "IVR-Delivery-Attempt"
SIGNATURE_TOLERANCE_S = 300
USER_AGENT = "ivr-agent"
MAX_ERROR_CHARS = 200


def new_event_id() -> str:
    return "evt_" + uuid.uuid4().hex


def envelope(event_id: str, event_type: str, call_id: str | None, data: dict[str, Any], created: float) -> bytes:
    """The JSON body of an event; kept as bytes so every retry sends (and signs) the very same body."""
    body = {"id": event_id, "type": event_type, "created": round(created, 3), "call_id": call_id, "data": data}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The IVR-Signature value: t=<timestamp>,v1=<hex HMAC-SHA256(secret, b"<timestamp>." + body)>."""
    mac = hmac.new(secret, str(timestamp).encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(secret: bytes | str, header: str | None, body: bytes, tolerance_s: float = SIGNATURE_TOLERANCE_S,
                     now: float | None = None) -> bool:
    """Whether `header` (IVR-Signature) signs `body` with `secret` and its timestamp is within tolerance_s
    of now (a replayed old request fails). Any v1 entry may match (several during a secret rotation)."""
    if not header:
        return False
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    timestamp, macs = None, []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            macs.append(value)
    if timestamp is None or not macs:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = sign(key, body, timestamp).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected, mac) for mac in macs)


def headers(event_id: str, event_type: str, body: bytes, secret: bytes | None, attempt: int,
            now: float | None = None) -> dict[str, str]:
    out = {"Content-Type": "application/json", "User-Agent": USER_AGENT, IDEMPOTENCY_HEADER: event_id,
           EVENT_HEADER: event_type, ATTEMPT_HEADER: str(attempt)}
    if secret:
        out[SIGNATURE_HEADER] = sign(secret, body, int(time.time() if now is None else now))
    return out


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: the n-th failed attempt waits base_s * 2**(n-1), at most cap_s; after
    max_attempts failed attempts the event is dead-lettered. Defaults: 5 s, 10 s, 20 s ... 1 h, 12 attempts
    (about 2.4 hours from the first to the last)."""

    base_s: float = 5.0
    cap_s: float = 3600.0
    max_attempts: int = 12
    timeout_s: float = 5.0
    """One POST's time limit."""

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.cap_s < self.base_s or self.max_attempts < 1 or self.timeout_s <= 0:
            raise ValueError("webhook retry: base_s > 0, cap_s >= base_s, max_attempts >= 1 and timeout_s > 0")

    def delay_s(self, failed_attempts: int) -> float:
        """How long to wait after the n-th failed attempt (n >= 1)."""
        return min(self.cap_s, self.base_s * 2.0 ** max(0, failed_attempts - 1))

    def schedule(self) -> list[float]:
        """Every wait between attempts, in order."""
        return [self.delay_s(n) for n in range(1, self.max_attempts)]


@dataclass(frozen=True)
class Result:
    status: int | None
    """The HTTP status, None when there was no answer (refused, timed out)."""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def post(url: str, body: bytes, head: dict[str, str], timeout_s: float) -> Result:
    """One POST; never raises. 2xx is delivered, anything else (a 3xx too: redirects are not followed
    with the body) is a failure to retry."""
    request = urllib.request.Request(url, data=body, method="POST", headers=head)
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout_s) as response:
            response.read(1024)
            return Result(response.status)
    except urllib.error.HTTPError as exc:
        return Result(exc.code, f"HTTP {exc.code}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Result(None, f"{type(exc).__name__}: {reason}"[:MAX_ERROR_CHARS])


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def post_with_retries(url: str, event_type: str, call_id: str | None, data: dict[str, Any],
                      secret: bytes | None, policy: RetryPolicy) -> threading.Thread | None:
    """Without a store: the event POSTed on a daemon thread, retried in memory per `policy` (lost if the
    process stops first). Failures are logged (the call id and event type only), never raised."""
    if not url:
        return None
    event_id = new_event_id()
    body = envelope(event_id, event_type, call_id, data, time.time())

    def send() -> None:
        for attempt in range(1, policy.max_attempts + 1):
            result = post(url, body, headers(event_id, event_type, body, secret, attempt), policy.timeout_s)
            if result.ok:
                log.info("call %s: webhook %s delivered (attempt %d)", call_id, event_type, attempt)
                return
            if attempt < policy.max_attempts:
                wait = policy.delay_s(attempt)
                log.warning("call %s: webhook %s failed (%s); retry %d in %.1f s (in memory: no call store)",
                            call_id, event_type, result.error or result.status, attempt + 1, wait)
                time.sleep(wait)
        log.error("call %s: webhook %s not delivered after %d attempts; dropped (no call store to keep it)",
                  call_id, event_type, policy.max_attempts)

    thread = threading.Thread(target=send, name="webhook", daemon=True)
    thread.start()
    return thread
