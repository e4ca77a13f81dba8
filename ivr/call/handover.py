"""What a person taking over a conversation learns about it, whatever the channel (a phone call, a text chat).

The handover holds no transcript, digits or caller number: the dialog's path, the reason, the caller's
last intent and emotion (when the dialog knows them), the turns, the duration and a one-line summary built
from those. A channel adds its own (a call's SIP Call-ID and transfer headers: ivr.serve.transfer; a chat's
`"channel": "chat"`: ivr.chat.handoff); `webhook_payload` is the data of its `call.transferred` webhook event.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from dialog.machine import DialogState
from ivr.call.eventlog import EventLog
from ivr.call.events import CallEnded, DialogStep, Emotion


class Conversation(Protocol):
    """What a handover reads of a session (a CallSession or a ChatSession): its event log and dialog state."""

    @property
    def log(self) -> EventLog: ...

    @property
    def state(self) -> DialogState | None: ...

    @property
    def end_reason(self) -> str: ...

    @property
    def transfer_target(self) -> str: ...


@dataclass(frozen=True)
class Handover:
    call_id: str
    """The conversation's id in the call store (a call's id, or a chat's)."""
    reason: str
    flow_target: str
    """The flow's transfer target (e.g. sip:queue@agents; for a chat, which team should answer)."""
    node: str
    """The dialog node where the caller was handed over."""
    intent: str = ""
    emotion: str = ""
    turns: int = 0
    duration_s: float = 0.0
    path: list[str] = field(default_factory=list)
    """Dialog nodes the conversation went through, in order, without repeats in a row."""

    @property
    def summary(self) -> str:
        said = f", intent {self.intent}" if self.intent else ""
        felt = f", caller sounds {self.emotion}" if self.emotion else ""
        route = " > ".join(self.path[-6:])
        return (f"Transfer ({self.reason or 'no reason'}) from node {self.node or '?'} after {self.turns} "
                f"caller turn(s), {self.duration_s:.0f} s{said}{felt}; path: {route}")

    def webhook_payload(self, uri: str, **extra: Any) -> dict[str, Any]:
        """The webhook event's data (its type and time are the envelope's)."""
        return {"transfer_uri": uri, "summary": self.summary, **asdict(self), **extra}


def handover_of(session: Conversation, call_id: str, duration_s: float) -> Handover:
    """What the session's event log and its dialog state (both public) say about a conversation handed to a
    person."""
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
    return Handover(call_id=call_id, reason=session.end_reason or "", flow_target=session.transfer_target or "",
                    node=node or "", intent=intent or "", emotion=emotion, turns=turns,
                    duration_s=max(0.0, duration_s), path=path)
