"""The dialog side of a conversation, whatever carries it (a call's audio, a chat's text).

`step` runs the dialog machine on one event and logs it; a dialog error becomes an apology and a
transfer, never a crash. `dispatch_utterance` runs the NLU (intent, FAQ) on the user's words before the
step, and logs an FAQ miss (no user text in the log line). A CallSession and a ChatSession (ivr.chat)
both go through these, so a chat is understood exactly like a call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from dialog.actions import Action, Say, Transfer
from dialog.events import Event, Utterance
from dialog.machine import DialogState, Machine
from dialog.nlu.understand import Nlu
from ivr.call import events as ev
from ivr.call.eventlog import EventLog
from models.errors import AgentError

log = logging.getLogger(__name__)

TRANSFER_ON_FAILURE = "failure"
ACTIONABLE = ("choice", "faq", "slot")
"""Decisions that act on a turn (a "Did you mean ...?" would only ask)."""
FAILURE_PROMPT = "Sorry, something went wrong. Let me transfer you to an agent."


def step(machine: Machine, state: DialogState | None, event: Event, events: EventLog,
         call_id: str) -> tuple[DialogState | None, list[Action]]:
    """The state after `event` (the first state when `state` is None) and the actions to carry out."""
    try:
        if state is None:
            state, actions = machine.start()
        else:
            state, actions = machine.step(state, event)
    except AgentError as exc:
        log.error("call %s: dialog error: %s", call_id, exc)
        events.emit(ev.DialogFailed(error=str(exc)))
        actions = [Say(FAILURE_PROMPT, barge_in=False), Transfer(TRANSFER_ON_FAILURE, "dialog-error")]
    events.emit(ev.DialogStep(event=type(event).__name__, node=state.node if state else ""))
    return state, actions


def dispatch_utterance(nlu: Nlu | None, events: EventLog, text: str, confidence: float,
                       dispatch: Callable[[Utterance], None], state: Callable[[], DialogState | None],
                       alternatives: Sequence[str] = (), judge: Callable[[Utterance], str] | None = None) -> None:
    """Understand the user's words, then `dispatch` the Utterance; an FAQ miss that the flow could not
    place either (`state()` counts one more no-match) is logged as `faq_miss` for review.

    With `alternatives` (a recognizer's next-best hypotheses) and `judge` (Machine.judge where the call is):
    when the words mean nothing there ("none"), the first alternative that the NLU and the node take as a
    choice, an FAQ answer or a slot value not denied already is dispatched instead (N-best rescored by the
    NLU and the dialog)."""
    if nlu is None:
        dispatch(Utterance(text, confidence))
        return
    found = nlu.understand(text)
    utterance = found.utterance(text, confidence)
    rank = 0
    if alternatives and judge is not None and judge(utterance) == "none":
        for number, alternative in enumerate(alternatives, start=1):
            other = nlu.understand(alternative)
            candidate = other.utterance(alternative, confidence)
            if judge(candidate) in ACTIONABLE:
                found, utterance, rank = other, candidate, number
                break
    events.emit(ev.NluResult(intent=found.intent, confidence=round(found.intent_confidence, 3),
                faq=found.faq_id, faq_score=round(found.faq_score, 3), latency_ms=round(found.latency_ms, 2),
                hypothesis=rank))
    before = state()
    misses = before.no_match_count if before else 0
    dispatch(utterance)
    after = state()
    if not found.intent and not found.faq_id and after and after.no_match_count > misses:
        events.emit(ev.FaqMiss(node=after.node))
