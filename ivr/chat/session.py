"""One text chat on the same brain as a call: the user's message goes where a call's transcript goes.

The same dialog Machine (on its text channel: a node's `say_text` where it has one), the same NLU and
the same typed events (ivr.call.events) as a CallSession, so the call store keeps a chat like a call:
the user's messages are `transcript` events (caller turns), the agent's are `say` events (agent turns).
A message of keypad characters only ("1", "427198", "1 2 3") is a key entry (DigitsEntered), as if
keyed on a phone; every other message is an Utterance, with its emotion from the words only.

Time: a chat user reads and types at their own pace, so the flow's no-input timeout (seconds, made for
a phone line) is not used. `no_input_ms` (default 3 minutes) of silence while the agent waits gives the
flow a NoInput ("Are you still there?"; after the flow's max_no_input of them it ends the chat as it
would a silent call); 0 waits forever. A chat with no user message for `idle_s` (15 minutes), or with
`messages` (200) user messages, is ended ("abandoned", reason "idle" or "too-long"): `PerChat`.

Not thread-safe: the hub serializes calls per session.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from dialog.actions import Action, Hangup, Listen, Play, Say, Transfer
from dialog.events import CallStarted, DigitsEntered, Event, NoInput, Utterance
from dialog.machine import DialogState
from ivr.call import dialogturn
from ivr.call import events as ev
from ivr.call.emotionlane import annotate
from ivr.call.eventlog import EventLog
from ivr.chat.brain import ChatBrain
from telephony.clock import Clock

log = logging.getLogger(__name__)

KEYS = re.compile(r"[0-9*#][0-9*# ,.-]*")
"""A message that is a key entry: keypad characters, spaced or grouped ("42 71 98", "4-2-7")."""
DEFAULT_NO_INPUT_MS = 180_000


@dataclass(frozen=True)
class ChatMessage:
    """One line of the chat as its clients see it; `seq` orders them (1, 2, ...)."""

    seq: int
    kind: str
    """"message" (from user or agent), "handoff" (the flow transferred: a person takes over) or "ended"."""
    data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"type": self.kind, "seq": self.seq, **self.data}


@dataclass(frozen=True)
class PerChat:
    """How long one chat may go on (the hub's ChatLimits.per_chat); the session ends it past them."""

    messages: int = 200
    """User messages; then it is ended (outcome "abandoned", reason "too-long")."""
    idle_s: float = 900.0
    """A chat with no message from its user for this long is ended ("abandoned", reason "idle")."""
    no_input_ms: int = DEFAULT_NO_INPUT_MS
    """Silence while the agent waits before the flow's NoInput (0: wait for the user forever)."""


class ChatSession:
    def __init__(self, brain: ChatBrain, clock: Clock, chat_id: str, limits: PerChat | None = None) -> None:
        self.chat_id = chat_id
        self._brain = brain
        self._clock = clock
        self.limits = limits or PerChat()
        self.user_messages = 0
        self._last_user_ms = clock.now_ms()
        self.log = EventLog(clock)
        self.messages: list[ChatMessage] = []
        self._state: DialogState | None = None
        self._listening: Listen | None = None
        self._deadline_ms: float | None = None
        self.ended = False
        self.outcome = ""
        self.end_reason = ""
        self.transfer_target = ""

    @property
    def state(self) -> DialogState | None:
        return self._state

    @property
    def listening(self) -> bool:
        return self._listening is not None

    def start(self) -> None:
        self.log.emit(ev.CallStarted(call_id=self.chat_id, flow=self._brain.machine.flow.name))
        self._dispatch(CallStarted())

    def send(self, text: str) -> None:
        """The user's message (checked and trimmed by the caller: ivr.chat.protocol)."""
        if self.ended:
            return
        self.user_messages += 1
        self._last_user_ms = self._clock.now_ms()
        self._understand(text)
        if self.user_messages >= self.limits.messages and not self.ended:
            self._end("abandoned", "too-long")

    def tick(self) -> None:
        """Check the idle and no-input timers (the hub calls this about once a second)."""
        if self.ended:
            return
        if self._clock.now_ms() - self._last_user_ms >= self.limits.idle_s * 1000.0:
            self._end("abandoned", "idle")
            return
        if self._deadline_ms is None or self._clock.now_ms() < self._deadline_ms:
            return
        self.log.emit(ev.NoInput(timeout_ms=self.limits.no_input_ms))
        self._listening, self._deadline_ms = None, None
        self._dispatch(NoInput())

    def close(self, outcome: str, reason: str) -> None:
        """Ended from outside (the user left, the chat expired, the server stops)."""
        if not self.ended:
            self._end(outcome, reason)

    def after(self, seq: int) -> list[ChatMessage]:
        """The messages after `seq` (0: all)."""
        return self.messages[max(0, seq):]

    # ---- dialog ---------------------------------------------------------------------------------

    def _understand(self, text: str) -> None:
        self._post("message", {"from": "user", "text": text})
        self.log.emit(ev.Transcript(text=text, confidence=1.0))
        if self._listening is None:
            self.log.emit(ev.SpeechIgnored(reason="agent not listening"))
            return
        self._listening, self._deadline_ms = None, None
        if KEYS.fullmatch(text):
            self._dispatch(DigitsEntered(re.sub(r"[ ,.-]", "", text)))
            return
        dialogturn.dispatch_utterance(self._brain.nlu, self.log, text, 1.0, self._dispatch, lambda: self._state)

    def _dispatch(self, event: Event) -> None:
        if isinstance(event, Utterance) and self._brain.emotion is not None:
            event = annotate(self._brain.emotion, event, self.log)
        self._state, actions = dialogturn.step(self._brain.machine, self._state, event, self.log, self.chat_id)
        for action in actions:
            if self.ended:
                break
            self._carry_out(action)

    def _carry_out(self, action: Action) -> None:
        if isinstance(action, Say):
            self.log.emit(ev.Said(text=action.text, barge_in=action.barge_in))
            self._post("message", {"from": "agent", "text": action.text})
        elif isinstance(action, Play):
            log.warning("chat %s: a recording cannot be shown in a chat; left out", self.chat_id)
        elif isinstance(action, Listen):
            self._listening = action
            self._deadline_ms = self._clock.now_ms() + self.limits.no_input_ms if self.limits.no_input_ms > 0 else None
            self.log.emit(ev.Listening(node=self._state.node if self._state else "", timeout_ms=self.limits.no_input_ms,
                                       asks=action.kind, about=action.about))
        elif isinstance(action, Transfer):
            self._post("handoff", {"reason": action.reason})
            self._end("transferred", action.reason, action.target)
        elif isinstance(action, Hangup):
            self._end("completed", action.reason)

    def _end(self, outcome: str, reason: str, target: str = "") -> None:
        self.ended = True
        self._listening, self._deadline_ms = None, None
        self.outcome, self.end_reason, self.transfer_target = outcome, reason, target
        self.log.emit(ev.CallEnded(outcome=outcome, reason=reason, target=target,
                                   node=self._state.node if self._state else "",
                                   slots=dict(self._state.slots) if self._state else {}))
        self._post("ended", {"outcome": outcome, "reason": reason})

    def _post(self, kind: str, data: dict[str, Any]) -> None:
        self.messages.append(ChatMessage(len(self.messages) + 1, kind, data))
