"""Handing a chat over to a person: what the hub knows when the flow transfers, and the one place that
tells the outside.

The user is told in the chat itself (the flow's transfer prompt, then a `handoff` message). The
operations side is told at the one place a chat ends (ChatHub._after): with webhooks configured
(`ivr console --webhook URL`) a `call.transferred` event goes into the store's outbox (`webhook_data`:
the data a call's event has, plus `"channel": "chat"`; written with the chat's last update, delivered with
retries like a call's), and the hub's `on_handoff` hook gets the chat's Handover (ivr.call.handover, the
same as a call's; by default one log line, no user text). Like a call's it holds no user text, digits or
address: the path, the reason, the last intent and emotion, the turns and the chat's duration.
"""

from __future__ import annotations

import logging
from typing import Any

from ivr.call.handover import Handover, handover_of
from ivr.chat.session import ChatSession

log = logging.getLogger(__name__)

WEBHOOK_EVENT = "call.transferred"
CHANNEL = "chat"


def handoff_of(session: ChatSession) -> Handover:
    """The handover of a transferred chat; its duration is the time of its last event on the chat's clock."""
    events = session.log.events
    return handover_of(session, session.chat_id, events[-1].t_ms / 1000.0 if events else 0.0)


def webhook_data(handover: Handover) -> dict[str, Any]:
    """The data of the chat's `call.transferred` webhook event: a call's, with the flow's target as the
    transfer URI (a chat is not routed to a SIP address), and `"channel": "chat"`."""
    return handover.webhook_payload(handover.flow_target, channel=CHANNEL)


def log_handoff(handover: Handover) -> None:
    """The default hook: one log line, no user text."""
    log.info("chat %s: %s", handover.call_id, handover.summary)
