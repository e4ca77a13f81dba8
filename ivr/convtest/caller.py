"""The reactive test caller: plays a scenario's turns and answers what the agent asks on the way.

It listens to the call's events (it is subscribed to the session's event log). When the agent starts
listening after a question of its own, the `listening` event says which (`asks`):
- confirm ("Did you mean X?", X in `about`): the scenario's react.confirm yes when X is what the current
  scripted turn `means`, else no;
- yes_no (a slot read back): yes (react.yes_no) when the digits read back are a value the scenario expects
  in `expect.slots`, else no (react.confirm_no, or a plain "no"), and when the agent then asks for the
  value again, the last scripted turn is said again; without expected slots, react.yes_no;
- faq ("Did that answer your question?" after an FAQ answer): yes (react.yes_no) when the entry answered
  is what the current turn `means`, else no; when the turn means no FAQ entry, react.yes_no;
- reprompt after a no-match (not after a no-input): the next item of react.reprompt.
A reaction is played next, before the rest of the script, and consumes no scripted turn. Without a
reaction configured, or after MAX_REACTIONS_IN_A_ROW reactions since the last scripted turn (a caller
asked the same thing again and again gives up answering), the script just goes on.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ivr.call.events import (
    CallEvent,
    DialogStep,
    Listening,
    NluResult,
    Said,
    SpeechDropped,
    SpeechStarted,
    SpeechStopped,
)
from ivr.convtest.scenario import React, Reply, ScenarioTurn
from telephony.wavfile import CallerTurn, ScriptedCaller

MAX_REACTIONS_IN_A_ROW = 4
NO = Reply(say="no, that's not right")


@dataclass(frozen=True)
class StartedTurn:
    """A caller turn as it was played."""

    t_ms: float
    turn: CallerTurn
    role: str
    """"script", or the reaction: "confirm", "yes_no", "reprompt"."""
    means: str = ""


class ReactiveCaller(ScriptedCaller):
    def __init__(self, turns: list[tuple[CallerTurn, ScenarioTurn]], react: React, sample_rate_hz: int,
                 speak: Callable[[str, int], np.ndarray], meanings: Callable[[str], set[str]],
                 expected_slots: dict[str, str] | None = None) -> None:
        """`turns`: what to play, each with its scenario turn (a wav turn may point at a line-processed copy);
        `meanings(about)`: the names that a confirmed choice `about` answers to (its intent, its goto);
        `expected_slots`: the slot values the caller means to give (to judge what is read back)."""
        super().__init__([t for t, _ in turns], sample_rate_hz, speak=speak)
        self._scripted = {id(turn): spec for turn, spec in turns}
        self._reactions: dict[int, str] = {}
        self._react = react
        self._reprompts = list(react.reprompt)
        self._meanings = meanings
        self._in_speech = False
        self._last_dialog_event = ""
        self._last_said = ""
        self._last_faq = ""
        self._expected_values = {str(v) for v in (expected_slots or {}).values()}
        self._say_again = False

    def turns_played(self) -> list[StartedTurn]:
        played = []
        for t_ms, turn in self.started:
            spec = self._scripted.get(id(turn))
            role = "script" if spec is not None else self._reactions.get(id(turn), "reaction")
            played.append(StartedTurn(t_ms, turn, role, spec.means if spec is not None else ""))
        return played

    def _current(self) -> ScenarioTurn | None:
        """The last scripted turn begun: the one the agent's question is about."""
        for _, turn in reversed(self.started):
            spec = self._scripted.get(id(turn))
            if spec is not None:
                return spec
        return None

    def on_event(self, event: CallEvent) -> None:
        """An event of the call (subscribed to the session's log)."""
        match event:
            case SpeechStarted():
                self._in_speech = True
            case SpeechStopped() | SpeechDropped():
                self._in_speech = False
            case DialogStep():
                self._last_dialog_event = event.event
            case Said():
                self._last_said = event.text
            case NluResult(faq=faq) if faq:
                self._last_faq = faq
            case Listening() if not self._in_speech and self._in_a_row() < MAX_REACTIONS_IN_A_ROW:
                # (a caller already talking answers nothing)
                role, reply = self._reaction(event.asks, event.about)
                if reply is not None:
                    self._play_next(role, reply)

    def _in_a_row(self) -> int:
        """Reactions played since the last scripted turn."""
        count = 0
        for _, turn in reversed(self.started):
            if id(turn) in self._scripted:
                break
            count += 1
        return count

    def _reaction(self, asks: str, about: str) -> tuple[str, Reply | None]:
        react = self._react
        if asks == "confirm" and react.confirm_yes is not None and react.confirm_no is not None:
            current = self._current()
            if current is None or not current.means:
                return asks, None
            agreed = current.means in self._meanings(about) | {about}
            return asks, react.confirm_yes if agreed else react.confirm_no
        if asks == "yes_no":
            heard = "".join(re.findall(r"\d", self._last_said))
            if not heard or not self._expected_values:
                return asks, react.yes_no
            if heard in self._expected_values:
                return asks, react.yes_no
            self._say_again = True
            return asks, react.confirm_no or NO
        if asks == "faq":
            current = self._current()
            if current is None or not current.means or not self._last_faq:
                return asks, react.yes_no
            return asks, react.yes_no if self._last_faq == current.means else (react.confirm_no or NO)
        if asks == "collect" and self._say_again:
            self._say_again = False
            return asks, Reply(repeat=True)
        if asks == "reprompt" and self._last_dialog_event != "NoInput" and self._reprompts:
            return asks, self._reprompts.pop(0)
        return asks, None

    def _play_next(self, role: str, reply: Reply) -> None:
        turn: CallerTurn | None
        if reply.repeat:
            last = next((t for _, t in reversed(self.started) if id(t) in self._scripted), None)
            turn = None if last is None else dataclasses.replace(last, barge_in_after_ms=None, silence_ms=0)
        else:
            turn = CallerTurn(say=reply.say, dtmf=reply.dtmf)
        if turn is not None:
            self._reactions[id(turn)] = role
            self.insert_turn(turn)
