"""The chat's JSON protocol, the same over the WebSocket (/chat/ws) and the HTTP API (POST /api/chat).

Client to server, one JSON object per WebSocket text frame or HTTP request body:
  {"type": "start"}                              a new chat (HTTP: the answer carries its `session`)
  {"type": "resume", "session": S, "after": N}   WebSocket: go on with chat S (after a page reload)
  {"type": "message", "text": T}                 what the user typed (HTTP: with "session": S)
  {"type": "poll", "after": N}                   HTTP: the messages after seq N (with "session": S)
  {"type": "end"}                                the user leaves (HTTP: with "session": S)
Server to client:
  {"type": "started", "session": S, "chat": ID}  S is the chat's secret (keep it to resume or poll)
  {"type": "message", "seq": N, "from": "agent"|"user", "text": T}
  {"type": "handoff", "seq": N, "reason": R}     the flow transferred: a person takes over
  {"type": "ended", "seq": N, "outcome": O, "reason": R}
  {"type": "error", "code": C, "message": M[, "retry_after": s]}
Error codes: bad_json, bad_request, too_large, empty, rate_limited, too_many_sessions, busy, no_session,
ended (a message to a chat that has ended), unavailable (the models did not load), forbidden_origin (a page
of a site the console does not serve the chat to). An error never ends
a WebSocket by itself (but too many of them in a row do).
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

MAX_FRAME_BYTES = 4096
"""A larger frame or body is refused before it is parsed."""
MAX_TEXT_CHARS = 1000
"""A user's message, after trimming."""
MAX_SESSION_CHARS = 64
TYPES = ("start", "resume", "message", "poll", "end")
HTTP_STATUS = {"bad_json": 400, "bad_request": 400, "empty": 400, "forbidden_origin": 403, "no_session": 404,
               "ended": 409, "too_large": 413, "rate_limited": 429, "too_many_sessions": 429, "busy": 503,
               "unavailable": 503}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


class ProtocolError(Exception):
    """A request the server refuses; `to_json` is what the client gets."""

    def __init__(self, code: str, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.retry_after_s = code, message, retry_after_s

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 400)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": "error", "code": self.code, "message": self.message}
        if self.retry_after_s is not None:
            body["retry_after"] = self.retry_after_s
        return body


@dataclass(frozen=True)
class Request:
    type: str
    session: str = ""
    text: str = ""
    after: int = 0


def clean_text(text: str) -> str:
    """The message as stored and understood: NFC, control and direction characters out, spaces collapsed."""
    text = _CONTROL.sub(" ", unicodedata.normalize("NFC", text))
    return " ".join(text.split())


def parse(raw: str | bytes) -> Request:
    """One client frame; ProtocolError when it is too large, not JSON or not a valid request."""
    if len(raw) > MAX_FRAME_BYTES:
        raise ProtocolError("too_large", f"a request is at most {MAX_FRAME_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ProtocolError("bad_json", "send one JSON object, e.g. {\"type\": \"message\", \"text\": \"hi\"}") \
            from None
    if not isinstance(data, dict):
        raise ProtocolError("bad_json", "send one JSON object")
    kind = data.get("type")
    if kind not in TYPES:
        raise ProtocolError("bad_request", f"type is one of {', '.join(TYPES)}")
    session = data.get("session", "")
    if not isinstance(session, str) or len(session) > MAX_SESSION_CHARS:
        raise ProtocolError("bad_request", "session is the text the server gave in 'started'")
    after = data.get("after", 0)
    if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after <= 1_000_000:
        raise ProtocolError("bad_request", "after is a message number (0 for all)")
    text = ""
    if kind == "message":
        raw_text = data.get("text")
        if not isinstance(raw_text, str):
            raise ProtocolError("bad_request", "a message has a 'text'")
        text = clean_text(raw_text)
        if len(text) > MAX_TEXT_CHARS:
            raise ProtocolError("too_large", f"a message is at most {MAX_TEXT_CHARS} characters")
        if not text:
            raise ProtocolError("empty", "the message is empty")
    return Request(kind, session, text, after)
