"""The dialog state machine: a pure function of (state, event) -> (state, actions). No I/O, no clock.

Behaviour, in short:
- Entering a node says its prompt; a `next` node goes straight on, so one step may say several prompts.
  A listening (expect) node ends the actions with Listen; transfer/hangup nodes end the call.
- In a listening node the caller's turn is matched against the node's choices, then the flow's
  global choices (see `dialog.matching`); a match enters the choice's `goto` node.
- No-input (NoInput, or an utterance with no words) and no-match (no choice matched, an utterance
  below settings.min_confidence, RecognitionFailed) are counted per node. Up to max_no_input /
  max_no_match times the node reprompts; the next one ends the call per settings.on_max_no_input /
  on_max_no_match with the reason "no-input", "no-match" or, when a RecognitionFailed tipped it,
  "asr-failure". Counters reset whenever a node is entered.
- MaxDurationReached says settings.max_duration_prompt and transfers or hangs up ("max-duration").
- Once the call has ended (a Transfer or Hangup was returned), step returns the state unchanged
  and no actions: a late timer event is harmless.
- A state naming a node the flow does not have raises FlowError("unknown flow state ...").
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from dialog.actions import Action, Hangup, Listen, Say, Transfer
from dialog.events import (
    CallStarted,
    DigitsEntered,
    Event,
    MaxDurationReached,
    NoInput,
    RecognitionFailed,
    Utterance,
)
from dialog.flow import Choice, Flow, Node
from dialog.matching import match_choice, match_digits, normalize
from ivr.errors import FlowError

REASON_NO_INPUT = "no-input"
REASON_NO_MATCH = "no-match"
REASON_ASR_FAILURE = "asr-failure"
REASON_MAX_DURATION = "max-duration"


@dataclass(frozen=True)
class DialogState:
    """Where a call is in its flow. Immutable: every step returns a new one."""

    node: str
    """The current node: the one listening, or the one where the call ended."""
    no_input_count: int = 0
    """No-inputs in a row since the node was entered."""
    no_match_count: int = 0
    """No-matches (and failed recognitions) since the node was entered."""
    turn: int = 0
    """Caller turns handled so far (utterances, digits, no-inputs, failed recognitions)."""
    ended: bool = False
    end_reason: str | None = None
    """The reason of the final Transfer or Hangup."""
    last_choice: str | None = None
    """The label (intent, else goto) of the last choice the caller made."""
    last_intent: str | None = None


class Machine:
    """Runs one flow; holds no per-call data, so one Machine serves every call."""

    def __init__(self, flow: Flow) -> None:
        self._flow = flow

    @property
    def flow(self) -> Flow:
        return self._flow

    def start(self) -> tuple[DialogState, list[Action]]:
        """The first state and the actions that open the call (greeting, first question)."""
        actions: list[Action] = []
        state = self._enter(DialogState(node=self._flow.start), self._flow.start, actions)
        return state, actions

    def step(self, state: DialogState, event: Event) -> tuple[DialogState, list[Action]]:
        """The next state and what to do after `event`; `state` is left as it was."""
        node = self._flow.node(state.node)
        if state.ended or isinstance(event, CallStarted):
            return state, []
        if isinstance(event, MaxDurationReached):
            actions: list[Action] = [Say(self._flow.settings.max_duration_prompt, barge_in=False)]
            return self._fallback(state, self._flow.settings.on_max_duration, REASON_MAX_DURATION, actions)
        if node.kind != "expect":
            raise FlowError(f"flow state '{node.name}' is a '{node.kind}' node and does not wait for "
                            "the caller")
        state = replace(state, turn=state.turn + 1)
        if isinstance(event, NoInput):
            return self._no_input(state, node)
        if isinstance(event, RecognitionFailed):
            return self._no_match(state, node, REASON_ASR_FAILURE)
        if isinstance(event, DigitsEntered):
            if not event.digits:
                return self._no_input(state, node)
            return self._choose(state, node, match_digits(event.digits, self._choices(node)))
        if isinstance(event, Utterance):
            if not normalize(event.text):
                return self._no_input(state, node)
            if event.confidence < self._flow.settings.min_confidence:
                return self._no_match(state, node, REASON_NO_MATCH)
            return self._choose(state, node, match_choice(event.text, self._choices(node)))
        raise FlowError(f"the dialog cannot handle the event {type(event).__name__}")

    # --- turns

    def _choices(self, node: Node) -> tuple[Choice, ...]:
        return node.expect + self._flow.global_choices

    def _choose(self, state: DialogState, node: Node,
                choice: Choice | None) -> tuple[DialogState, list[Action]]:
        if choice is None:
            return self._no_match(state, node, REASON_NO_MATCH)
        actions: list[Action] = []
        state = replace(state, last_choice=choice.label, last_intent=choice.intent)
        return self._enter(state, choice.goto, actions), actions

    def _no_input(self, state: DialogState, node: Node) -> tuple[DialogState, list[Action]]:
        settings = self._flow.settings
        state = replace(state, no_input_count=state.no_input_count + 1)
        if state.no_input_count > settings.max_no_input:
            return self._fallback(state, settings.on_max_no_input, REASON_NO_INPUT, [])
        return state, self._reprompt(node, settings.no_input_prefix)

    def _no_match(self, state: DialogState, node: Node, reason: str) -> tuple[DialogState, list[Action]]:
        settings = self._flow.settings
        state = replace(state, no_match_count=state.no_match_count + 1)
        if state.no_match_count > settings.max_no_match:
            return self._fallback(state, settings.on_max_no_match, reason, [])
        return state, self._reprompt(node, settings.no_match_prefix)

    def _reprompt(self, node: Node, prefix: str) -> list[Action]:
        texts = node.reprompt or (prefix, *node.say)
        actions: list[Action] = [Say(text, barge_in=self._barge_in(node)) for text in texts]
        actions.append(self._listen(node))
        return actions

    def _fallback(self, state: DialogState, how: str, reason: str,
                  actions: list[Action]) -> tuple[DialogState, list[Action]]:
        settings = self._flow.settings
        if how == "transfer":
            actions += [Say(settings.transfer_prompt, barge_in=False),
                        Transfer(settings.transfer_target, reason)]
        else:
            actions += [Say(settings.goodbye_prompt, barge_in=False), Hangup(reason)]
        return replace(state, ended=True, end_reason=reason), actions

    # --- nodes

    def _enter(self, state: DialogState, name: str, actions: list[Action]) -> DialogState:
        """Enters `name` and every `next` after it, appending their actions; the state where it stops."""
        while True:
            node = self._flow.node(name)
            actions.extend(Say(text, barge_in=self._barge_in(node)) for text in node.say)
            state = replace(state, node=name, no_input_count=0, no_match_count=0)
            if node.next is not None:
                name = node.next
                continue
            if node.transfer is not None:
                target = node.transfer.target or self._flow.settings.transfer_target
                actions.append(Transfer(target, node.transfer.reason))
                return replace(state, ended=True, end_reason=node.transfer.reason)
            if node.hangup is not None:
                actions.append(Hangup(node.hangup.reason))
                return replace(state, ended=True, end_reason=node.hangup.reason)
            actions.append(self._listen(node))
            return state

    def _listen(self, node: Node) -> Listen:
        choices = self._choices(node)
        phrases = tuple(dict.fromkeys(keyword for choice in choices for keyword in choice.keywords))
        max_digits = max((len(choice.digits.rstrip("#")) for choice in choices if choice.digits), default=1)
        timeout_ms = node.no_input_timeout_ms or self._flow.settings.no_input_timeout_ms
        return Listen(no_input_timeout_ms=timeout_ms, phrases=phrases, max_digits=max_digits)

    def _barge_in(self, node: Node) -> bool:
        if node.barge_in is not None:
            return node.barge_in
        return node.kind in ("expect", "next")
