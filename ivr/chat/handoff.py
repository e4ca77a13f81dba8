"""Handing a chat over to a person: what the hub knows when the flow transfers, and the one place that
tells the outside.

The user is told in the chat itself (the flow's transfer prompt, then a `handoff` message). The
operations side is told at the one place a chat ends (ChatHub._after): with webhooks configured
(`ivr console --webhook URL`) a `call.transferred` event with `"channel": "chat"` goes into the store's
outbox (`Handoff.webhook_data()`, written with the chat's last update, delivered with retries like a
call's), and the hub's `on_handoff` hook gets the `Handoff` (by default one log line, no user text). Like
a call's transfer context it holds no user text, digits or address: the path, the reason, the last intent
and emotion.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from ivr.call.events import Emotion
from ivr.chat.session import ChatSession

log = logging.getLogger(__name__)

WEBHOOK_EVENT = "call.transferred"
CHANNEL = "chat"


@dataclass(frozen=True)
class Handoff:
    chat_id: str
    reason: str
    """Why the flow transferred (caller-request, lost-card, no-match, negative-emotion, ...)."""
    target: str
    """The flow's transfer target (a queue's SIP URI for calls; for chat, which team should answer)."""
    node: str = ""
    intent: str = ""
    emotion: str = ""
    path: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        said = f", intent {self.intent}" if self.intent else ""
        felt = f", user seems {self.emotion}" if self.emotion else ""
        return f"chat handed to a person ({self.reason}) at node {self.node or '?'}{said}{felt}"

    def webhook_data(self) -> dict[str, Any]:
        """The data of the `call.transferred` webhook event for this chat."""
        return {"channel": CHANNEL, "source": CHANNEL, "transfer_uri": self.target, "summary": self.summary,
                **asdict(self)}


def handoff_of(session: ChatSession) -> Handoff:
    """What the chat's dialog and event log say about a transferred chat."""
    state = session.state
    emotions = session.log.of_type(Emotion)
    path: list[str] = []
    for event in session.log.events:
        node = event.get("node")
        if isinstance(node, str) and node and (not path or path[-1] != node):
            path.append(node)
    return Handoff(chat_id=session.chat_id, reason=session.end_reason, target=session.transfer_target,
                   node=state.node if state else "", intent=(state.last_intent or "") if state else "",
                   emotion=emotions[-1].label if emotions else "", path=path[-8:])


def log_handoff(handoff: Handoff) -> None:
    """The default hook: one log line, no user text."""
    log.info("chat %s: %s", handoff.chat_id, handoff.summary)
