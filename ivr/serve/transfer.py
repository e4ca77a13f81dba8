"""What a human agent learns about a transferred call: SIP headers and a JSON webhook.

The context holds no transcript, digits or caller number: the dialog's path, the reason, the caller's
last intent and emotion (when the dialog knows them), the call's ids and a one-line summary built
from those. It is the data of the call.transferred webhook event (and call.callback_requested): with a
call store it goes through the store's outbox (ivr.store.outbox, kept and retried); without one
`post_webhook` posts it on a daemon thread with retries in memory. A slow or failing CRM never holds up
a call.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import urllib.parse
from dataclasses import asdict, dataclass, field
from typing import Any

from ivr.call.events import CallEnded, DialogStep, Emotion
from ivr.call.session import CallSession
from ivr.webhooks import RetryPolicy, post_with_retries

log = logging.getLogger(__name__)

HEADER_PREFIX = "X-IVR-"
MAX_HEADER_CHARS = 200
_UNSAFE = re.compile(r"[^\x20-\x7e]")


def header_value(text: str) -> str:
    """One printable ASCII line (no CR/LF injection into SIP), at most MAX_HEADER_CHARS long."""
    return _UNSAFE.sub(" ", text).strip()[:MAX_HEADER_CHARS]


@dataclass(frozen=True)
class TransferContext:
    call_id: str
    sip_call_id: str
    reason: str
    flow_target: str
    """The flow's transfer target (e.g. sip:queue@agents)."""
    node: str
    """The dialog node where the caller was handed over."""
    intent: str = ""
    emotion: str = ""
    turns: int = 0
    duration_s: float = 0.0
    path: list[str] = field(default_factory=list)
    """Dialog nodes the call went through, in order, without repeats in a row."""

    @property
    def summary(self) -> str:
        said = f", intent {self.intent}" if self.intent else ""
        felt = f", caller sounds {self.emotion}" if self.emotion else ""
        route = " > ".join(self.path[-6:])
        return (f"Transfer ({self.reason or 'no reason'}) from node {self.node or '?'} after {self.turns} "
                f"caller turn(s), {self.duration_s:.0f} s{said}{felt}; path: {route}")

    def headers(self) -> dict[str, str]:
        values = {"Call-ID": self.call_id, "Reason": self.reason, "Node": self.node, "Intent": self.intent,
                  "Emotion": self.emotion, "Summary": self.summary}
        return {HEADER_PREFIX + k: header_value(v) for k, v in values.items()}

    def webhook_payload(self, uri: str, **extra: Any) -> dict[str, Any]:
        """The webhook event's data (its type and time are the envelope's)."""
        return {"transfer_uri": uri, "summary": self.summary, **asdict(self), **extra}


def context_from_session(session: CallSession, call_id: str, sip_call_id: str, started_at: float) -> TransferContext:
    """Reads the session's event log and its dialog state's last intent (both public)."""
    events = list(session.log.events)
    path: list[str] = []
    for e in events:
        if isinstance(e, DialogStep) and e.node and (not path or path[-1] != e.node):
            path.append(e.node)
    ended = [e for e in events if isinstance(e, CallEnded)]
    node = (ended[-1].node if ended else "") or (path[-1] if path else "")
    state = session.state
    intent = state.last_intent if state is not None else ""
    turns = state.turn if state is not None else 0
    emotions = [e for e in events if isinstance(e, Emotion)]
    emotion = emotions[-1].label if emotions else ""
    return TransferContext(call_id=call_id, sip_call_id=sip_call_id, reason=session.end_reason or "",
                           flow_target=session.transfer_target or "", node=node or "", intent=intent or "",
                           emotion=emotion, turns=turns, duration_s=max(0.0, time.time() - started_at), path=path)


def refer_to(uri: str, headers: dict[str, str]) -> str:
    """The Refer-To value: the human's URI carrying the context as URI headers (RFC 3261 19.1.1), so the
    caller's phone puts them into its INVITE to the human."""
    base = uri.strip("<>")
    query = "&".join(f"{name}={urllib.parse.quote(value, safe='')}" for name, value in headers.items() if value)
    return f"<{base}{'&' if '?' in base else '?'}{query}>" if query else f"<{base}>"


def post_webhook(url: str, event_type: str, call_id: str | None, data: dict[str, Any],
                 secret: bytes | None = None, policy: RetryPolicy | None = None) -> threading.Thread | None:
    """Without a call store: POST the event on a daemon thread, retried in memory (ivr.webhooks);
    failures are logged, never raised."""
    return post_with_retries(url, event_type, call_id, data, secret, policy or RetryPolicy())
