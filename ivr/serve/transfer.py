"""What a human agent learns about a transferred call: SIP headers and a JSON webhook.

The context is the call's handover (ivr.call.handover, the same as a chat's) with the call's SIP Call-ID:
no transcript, digits or caller number; the dialog's path, the reason, the caller's last intent and
emotion (when the dialog knows them), the call's ids and a one-line summary built from those. It is the
data of the call.transferred webhook event (and call.callback_requested): with a call store it goes
through the store's outbox (ivr.store.outbox, kept and retried); without one `post_webhook` posts it on a
daemon thread with retries in memory. A slow or failing CRM never holds up a call.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import urllib.parse
from dataclasses import asdict, dataclass, field
from typing import Any

from ivr.call.handover import Handover, handover_of
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
class TransferContext(Handover):
    """A call's handover (ivr.call.handover) with its SIP Call-ID, told to the human in SIP headers too."""

    sip_call_id: str = field(kw_only=True)

    def headers(self) -> dict[str, str]:
        values = {"Call-ID": self.call_id, "Reason": self.reason, "Node": self.node, "Intent": self.intent,
                  "Emotion": self.emotion, "Summary": self.summary}
        return {HEADER_PREFIX + k: header_value(v) for k, v in values.items()}


def context_from_session(session: CallSession, call_id: str, sip_call_id: str, started_at: float) -> TransferContext:
    """The call's handover (its event log and dialog state) with its SIP Call-ID."""
    handover = handover_of(session, call_id, time.time() - started_at)
    return TransferContext(**asdict(handover), sip_call_id=sip_call_id)


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
