"""Which call updates make which webhook events, and what each event's data holds.

The store's writer calls these inside the transaction that writes the call update, so an event is in
the outbox exactly when its update is in the store:

  call_started                                  -> call.started
  call_ended (every outcome)                    -> call.ended
  call_ended, transferred for an escalation     -> call.escalated   (reason negative-emotion or escalat*)
  emotion, the caller becomes upset (once)      -> call.upset       (ivr.store.upset: the emotion figures only)
  call_ended by a failure                       -> dialog.failed    (no-input, no-match, asr-, tts- or
                                                                     dialog-error; outcome rtp-timeout, error)
  webhook (the serve runner's transfer context) -> call.transferred, call.callback_requested

No caller number is ever in an event; texts are redacted (ivr.call.privacy) whatever the store's setting.
call.escalated and dialog.failed carry a `ticket` (action ticket.create) for a helpdesk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from ivr.call import privacy
from ivr.call.events import CallEnded
from ivr.store.outbox import enqueue
from ivr.webhooks import EVENT_TYPES

ESCALATION_REASONS = frozenset({"negative-emotion"})
FAILURE_REASONS = frozenset({"no-input", "no-match", "asr-failure", "tts-failure", "dialog-error"})
FAILURE_OUTCOMES = frozenset({"rtp-timeout", "error"})
EXCERPT_TURNS = 4
PATH_NODES = 8


@dataclass(frozen=True)
class WebhookOptions:
    """A StoreWriter with these adds webhook events to the outbox (`ivr serve` with a webhook URL)."""

    console_url: str = ""
    """The console's base URL (https://console.example.com) for the call links; empty: a path only."""
    types: frozenset[str] = frozenset(EVENT_TYPES)
    """The events wanted (all by default)."""
    wake: Callable[[], None] | None = None
    """Called after a transaction that added events committed (the delivery worker looks at once)."""

    def call_url(self, call_id: str) -> str:
        return f"{self.console_url.rstrip('/')}/calls/{call_id}"


def is_escalation(event: CallEnded) -> bool:
    return event.outcome == "transferred" and (event.reason in ESCALATION_REASONS or
                                               event.reason.startswith("escalat"))


def is_failure(event: CallEnded) -> bool:
    return event.reason in FAILURE_REASONS or event.outcome in FAILURE_OUTCOMES


@dataclass
class CallFacts:
    """What the writer has seen of a call that the events report (kept as it writes)."""

    source: str = ""
    started_at: datetime | None = None
    intent: str = ""
    emotion: str = ""
    caller_turns: int = 0
    path: list[str] = field(default_factory=list)
    """The dialog's nodes, the last few, without repeats in a row."""
    turns: list[tuple[str, str]] = field(default_factory=list)
    """(speaker, text) of the last few turns, texts as the store has them."""

    def node(self, node: str) -> None:
        if node and (not self.path or self.path[-1] != node):
            self.path = [*self.path, node][-PATH_NODES:]

    def turn(self, speaker: str, text: str) -> None:
        self.turns = [*self.turns, (speaker, text)][-EXCERPT_TURNS:]
        if speaker == "caller":
            self.caller_turns += 1


def started(conn: Connection, options: WebhookOptions, call_id: str, facts: CallFacts, wall: datetime) -> int:
    return _add(conn, options, "call.started", call_id, {
        "started_at": facts.started_at.isoformat() if facts.started_at else None, "source": facts.source,
        "call_url": options.call_url(call_id)}, wall)


def ended(conn: Connection, options: WebhookOptions, call_id: str, facts: CallFacts, event: CallEnded,
          ended_at: datetime, wall: datetime) -> int:
    """call.ended, and call.escalated / dialog.failed with a ticket when the end says so."""
    duration_s = round(event.t_ms / 1000.0, 1)
    data: dict[str, Any] = {
        "outcome": event.outcome, "reason": event.reason, "source": facts.source,
        "node": event.node or (facts.path[-1] if facts.path else ""),
        "intent": facts.intent, "emotion": facts.emotion, "transfer_target": event.target,
        "started_at": facts.started_at.isoformat() if facts.started_at else None,
        "ended_at": ended_at.isoformat(), "duration_s": duration_s, "caller_turns": facts.caller_turns,
        "path": list(facts.path), "call_url": options.call_url(call_id)}
    added = _add(conn, options, "call.ended", call_id, data, wall)
    for kind, wanted in (("call.escalated", is_escalation(event)), ("dialog.failed", is_failure(event))):
        if wanted:
            added += _add(conn, options, kind, call_id, {**data, "ticket": ticket(kind, call_id, data, facts)},
                          wall)
    return added


def upset(conn: Connection, options: WebhookOptions, call_id: str, figures: dict[str, Any], wall: datetime) -> int:
    """call.upset: the call's id, link and emotion figures (label, negativity, threshold, why, when); never
    the caller's words or number."""
    return _add(conn, options, "call.upset", call_id, {**figures, "call_url": options.call_url(call_id)}, wall)


def passed_on(conn: Connection, options: WebhookOptions, call_id: str, name: str, data: dict[str, Any],
              wall: datetime) -> int:
    """An event the serve runner asked for (the transfer context), as it gave it."""
    if name not in EVENT_TYPES:
        return 0
    return _add(conn, options, name, call_id, {**data, "call_url": options.call_url(call_id)}, wall)


def summary(what: str, data: dict[str, Any]) -> str:
    said = f", intent {data['intent']}" if data.get("intent") else ""
    felt = f", caller sounds {data['emotion']}" if data.get("emotion") else ""
    route = " > ".join(data.get("path") or [])
    return (f"{what} ({data.get('reason') or 'no reason'}) at node {data.get('node') or '?'} after "
            f"{data.get('caller_turns', 0)} caller turn(s), {data.get('duration_s', 0):.0f} s{said}{felt}; "
            f"path: {route or '-'}")


def ticket(kind: str, call_id: str, data: dict[str, Any], facts: CallFacts) -> dict[str, Any]:
    """A ticket.create payload a helpdesk can take as it is: no caller number, texts redacted."""
    escalated = kind == "call.escalated"
    what = "Escalated call" if escalated else "Failed call"
    excerpt = [{"speaker": speaker, "text": privacy.redact_text(text, prompt=speaker == "agent")}
               for speaker, text in facts.turns]
    return {"action": "ticket.create", "subject": f"{what}: {data.get('reason') or data.get('outcome')}",
            "priority": "high" if escalated else "normal", "summary": summary(what, data),
            "reason": data.get("reason"), "outcome": data.get("outcome"), "emotion": data.get("emotion"),
            "intent": data.get("intent"), "call_id": call_id, "transcript_url": data.get("call_url"),
            "transcript_excerpt": excerpt, "redacted": True,
            "tags": ["ivr", kind, *([data["reason"]] if data.get("reason") else [])]}


def _add(conn: Connection, options: WebhookOptions, kind: str, call_id: str, data: dict[str, Any],
         wall: datetime) -> int:
    if kind not in options.types:
        return 0
    enqueue(conn, kind, call_id, data, wall)
    return 1
