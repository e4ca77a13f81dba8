"""The dialog state machine: a pure function of (state, event) -> (state, actions). No I/O, no clock.

Behaviour, in short:
- Entering a node says its prompt; a `next` node goes straight on, so one step may say several prompts.
  A listening (expect) node ends the actions with Listen; transfer/hangup nodes end the call.
- In a listening node the caller's turn is matched against the node's choices, then the flow's
  global choices (see `dialog.matching`); a match enters the choice's `goto` node.
- No-input (NoInput, or an utterance with no words) and no-match (nothing understood, an utterance
  below settings.min_confidence, RecognitionFailed, a "no" to "Did you mean ...?") are counted per node.
  Up to max_no_input / max_no_match times the node reprompts; the next one ends the call per
  settings.on_max_no_input / on_max_no_match (or enters the node's own `on_max_no_input` node: silence
  after "Anything else?" ends a served call as a goodbye) with the reason "no-input", "no-match" or, when a
  RecognitionFailed tipped it, "asr-failure". Counters reset whenever a node is entered. More than
  max_asr_failures RecognitionFailed in a row (call-wide) transfer at once with "asr-failure".
- Repair: after a miss a node with `repair` prompts says the n-th of them (the last one again after
  that) after the settings' no-match prefix (`repeat_no_match_prefix` from the second miss): a flow
  names the options first, then offers keys, so each retry is narrower than the last. A node without
  them says its `reprompt`, or the prefix and its prompt again.
- MaxDurationReached says settings.max_duration_prompt and transfers or hangs up ("max-duration").
- Once the call has ended (a Transfer or Hangup was returned), step returns the state unchanged
  and no actions: a late timer event is harmless.
- A state naming a node the flow does not have raises FlowError("unknown flow state ...").

Understanding a turn in a listening node (the session runs the NLU before the step and puts its results
on the Utterance, so the machine stays pure): `dialog.decide` weighs the NLU's intent probabilities, the
FAQ candidates and the node's keywords, and says one of:
1. a choice: taken, unless the recognizer's confidence in the turn is below
   settings.confirm_below_asr_confidence, or the choice would hang up on a caller who has not chosen or
   heard anything yet (settings.confirm_early_hangup): then "Did you mean ...?" first;
2. a doubtful choice: "Did you mean {choice}?" (the choice's `name`);
3. a FAQ entry: its answer, then "Did that answer your question?"; yes ("Good.") goes to
   settings.after_faq (or the node's prompt again), no counts as a miss;
4. nothing: a no-match (repair, above).
Answers to a yes/no question (did you mean, did that answer, a read-back): yes/no words ("yeah", "yep",
"correct", "that's right", "nope", "not really"), the NLU's yes/no intents, or keys 1/2. A turn that also
clearly asks for something else takes that instead: "no, I said statement" goes to the statement, "yes
thanks, that's all" ends the call, "no, it's 4 2 7 1 9 8" reads the new number back. A turn that is
neither yes nor no is understood afresh.
A `collect` node takes a slot by keypad (Listen.max_digits) or voice (`dialog.nlu.slots`), reads it
back for a yes/no confirmation when asked to, stores it in DialogState.slots and goes to `next`. A
digit string said twice in a row ("4 2 7 1 9 3, 4 2 7 1 9 3") counts once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from dialog.actions import Action, Hangup, Listen, Say, Transfer
from dialog.decide import Decision, decide
from dialog.emotion.policy import REASON_NEGATIVE_EMOTION, EmotionTrack, is_upset, should_escalate
from dialog.emotion.policy import update as update_emotion
from dialog.errors import FlowError
from dialog.events import CallStarted, DigitsEntered, Event, MaxDurationReached, NoInput, RecognitionFailed, Utterance
from dialog.flow import Choice, CollectSpec, Flow, Node
from dialog.matching import match_digits, normalize
from dialog.nlu.slots import parse_amount, parse_digits, parse_yes_no, read_back_digits, say_amount

YES_NO_INTENTS = ("yes", "no")

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
    asr_failures: int = 0
    """Failed recognitions in a row, call-wide (reset by any turn that was recognized)."""
    turn: int = 0
    """Caller turns handled so far (utterances, digits, no-inputs, failed recognitions)."""
    ended: bool = False
    end_reason: str | None = None
    """The reason of the final Transfer or Hangup."""
    last_choice: str | None = None
    """The label (intent, else goto) of the last choice the caller made."""
    last_intent: str | None = None
    slots: tuple[tuple[str, str], ...] = ()
    """Values the caller gave in `collect` nodes, as (slot, value) pairs in the order given."""
    pending: str = ""
    """What the next yes/no answers: "choice:N" (did you mean), "slot:VALUE" (read-back), "faq:ID"."""
    last_faq: str = ""
    """The id of the last FAQ entry answered in the call ("" for none, or an answer without an id)."""
    emotion: EmotionTrack = EmotionTrack()
    """The caller's emotion smoothed over the call (dialog.emotion.policy)."""
    rejected: tuple[str, ...] = ()
    """Values read back in this `collect` node that the caller said no to."""

    def slot(self, name: str) -> str | None:
        return dict(self.slots).get(name)


CHANNELS = ("voice", "text")


class Machine:
    """Runs one flow; holds no per-call data, so one Machine serves every call of a channel.

    `channel`: "voice" (calls: a node's `say`) or "text" (chat: a node's `say_text` where it has one)."""

    def __init__(self, flow: Flow, channel: str = "voice") -> None:
        if channel not in CHANNELS:
            raise ValueError(f"channel is one of {CHANNELS}, not {channel!r}")
        self._flow = flow
        self.channel = channel

    @property
    def flow(self) -> Flow:
        return self._flow

    def _say(self, node: Node) -> tuple[str, ...]:
        """The node's prompt for this channel."""
        return node.say_text if self.channel == "text" and node.say_text else node.say

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
        if node.kind not in ("expect", "collect"):
            raise FlowError(f"flow state '{node.name}' is a '{node.kind}' node and does not wait for "
                            "the caller")
        state = replace(state, turn=state.turn + 1)
        if isinstance(event, Utterance) and event.emotion:
            settings = self._flow.settings
            state = replace(state, emotion=update_emotion(state.emotion, event.emotion, event.negativity,
                                                          settings.emotion_smoothing,
                                                          settings.escalate_on_negative_emotion))
            if should_escalate(state.emotion, settings.escalate_on_negative_emotion):
                return self._fallback(state, "transfer", REASON_NEGATIVE_EMOTION,
                                      [Say(settings.negative_emotion_prompt, barge_in=False)], prompt=False)
        if isinstance(event, NoInput):
            return self._no_input(state, node)
        if isinstance(event, RecognitionFailed):
            state = replace(state, asr_failures=state.asr_failures + 1)
            if state.asr_failures > self._flow.settings.max_asr_failures:
                return self._fallback(state, "transfer", REASON_ASR_FAILURE, [])
            return self._no_match(state, node, REASON_ASR_FAILURE)
        if state.asr_failures and isinstance(event, Utterance):
            state = replace(state, asr_failures=0)
        if state.pending and isinstance(event, Utterance | DigitsEntered):
            answered = self._answer_pending(state, node, event)
            if answered is not None:
                return answered
            state = replace(state, pending="")
        if node.collect is not None and isinstance(event, Utterance | DigitsEntered):
            return self._collect(state, node, node.collect, event)
        if isinstance(event, DigitsEntered):
            if not event.digits:
                return self._no_input(state, node)
            return self._choose(state, node, match_digits(event.digits, self._choices(node)))
        if isinstance(event, Utterance):
            if not normalize(event.text):
                return self._no_input(state, node)
            if event.confidence < self._flow.settings.min_confidence:
                return self._no_match(state, node, REASON_NO_MATCH)
            return self._understand(state, node, event)
        raise FlowError(f"the dialog cannot handle the event {type(event).__name__}")

    def judge(self, state: DialogState, event: Utterance) -> str:
        """What `event` would mean where the call is, without stepping: "choice", "confirm", "faq" or "none"
        in a node that offers choices; in a `collect` node "slot" for a whole value the caller has not said
        no to (so a misheard number read back and denied is not taken again when another hypothesis has
        one), else what it means among the global choices; "" where a turn is not judged so (a pending
        yes/no, an ended call). For picking among a recognizer's hypotheses (ivr.call.dialogturn)."""
        node = self._flow.nodes.get(state.node)
        if state.ended or state.pending or node is None:
            return ""
        if node.collect is not None:  # a whole value not said no to already, or a global choice
            instead = self._global_instead_of_digits(node.collect, event)
            if instead is not None:
                return instead.kind
            value = self._slot_value(node.collect, event.text)[0]
            return "slot" if value is not None and value not in state.rejected else "none"
        return decide(event, self._choices(node), self._flow.settings).kind if node.kind == "expect" else ""

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

    def _understand(self, state: DialogState, node: Node, event: Utterance) -> tuple[DialogState, list[Action]]:
        choices = self._choices(node)
        settings = self._flow.settings
        decision = decide(event, choices, settings)
        if decision.kind == "choice" and decision.choice is not None:
            if event.confidence < settings.confirm_below_asr_confidence and decision.confidence < 1.0:
                return self._did_you_mean(state, node, decision.choice)
            if self._hangs_up_unserved(state, decision.choice):
                return self._did_you_mean(state, node, decision.choice)
            return self._choose(state, node, decision.choice)
        if decision.kind == "confirm" and decision.choice is not None:
            return self._did_you_mean(state, node, decision.choice)
        if decision.kind == "faq" and decision.faq is not None:
            state = replace(state, last_faq=decision.faq.id)
            return self._ask(state, node, f"faq:{decision.faq.id}",
                             [Say(decision.faq.answer), Say(settings.faq_followup_prompt)])
        return self._no_match(state, node, REASON_NO_MATCH)

    def _hangs_up_unserved(self, state: DialogState, choice: Choice) -> bool:
        """Whether `choice` would end the call before the caller chose or heard anything, in a flow that
        asks first then (settings.confirm_early_hangup)."""
        return self._flow.settings.confirm_early_hangup and self._flow.node(choice.goto).hangup is not None \
            and state.last_choice is None and not state.last_faq and not state.slots

    def _did_you_mean(self, state: DialogState, node: Node, choice: Choice) -> tuple[DialogState, list[Action]]:
        choices = self._choices(node)
        prompt = self._flow.settings.did_you_mean_prompt.format(choice=choice.spoken)
        return self._ask(state, node, f"choice:{choices.index(choice)}", [Say(prompt)])

    def _ask(self, state: DialogState, node: Node, pending: str,
             says: list[Say]) -> tuple[DialogState, list[Action]]:
        """Say `says`, then wait for a yes/no answer about `pending` (keys: 1 yes, 2 no)."""
        kind, _, value = pending.partition(":")
        about = self._choices(node)[int(value)].label if kind == "choice" else ""
        listen = replace(self._listen(node), max_digits=1, phrases=("yes", "no"),
                         kind={"choice": "confirm", "slot": "yes_no"}.get(kind, kind), about=about)
        return replace(state, pending=pending), [*says, listen]

    def _answer_pending(self, state: DialogState, node: Node,
                        event: Utterance | DigitsEntered) -> tuple[DialogState, list[Action]] | None:
        """The step for an answer to state.pending; None when the turn is neither yes nor no (nor a
        correction), so that it is understood afresh."""
        settings = self._flow.settings
        kind, _, value = state.pending.partition(":")
        if kind == "slot" and node.collect is not None:
            corrected = self._corrected_slot(state, node, node.collect, event, value)
            if corrected is not None:
                return corrected
        if isinstance(event, DigitsEntered):
            yes = {"1": True, "2": False}.get(event.digits.rstrip("#"))
        else:
            yes = self._yes_no(event)
        if yes is None:
            return None
        state = replace(state, pending="")
        if isinstance(event, Utterance) and kind in ("choice", "faq"):
            instead = self._instead(node, event, yes, int(value) if kind == "choice" else None)
            if instead is not None:
                return self._choose(state, node, instead)
        if kind == "choice" and yes:
            return self._choose(state, node, self._choices(node)[int(value)])
        if kind == "slot" and yes and node.collect is not None:
            return self._store(state, node, node.collect, value)
        if kind == "faq" and yes:
            actions: list[Action] = [Say(settings.confirm_yes_prompt)]
            if settings.after_faq:
                return self._enter(state, settings.after_faq, actions), actions
            actions += [Say(text, barge_in=self._barge_in(node)) for text in node.reprompt or self._say(node)]
            return state, [*actions, self._listen(node)]
        if kind == "slot":
            state = replace(state, rejected=(*state.rejected, value))
        return self._no_match(state, node, REASON_NO_MATCH, settings.confirm_no_prompt)

    def _yes_no(self, event: Utterance) -> bool | None:
        """Yes (True), no (False) or neither (None): the words first, then a confident yes/no intent."""
        yes = parse_yes_no(event.text)
        if yes is None and event.intent in YES_NO_INTENTS and \
                event.intent_confidence >= self._flow.settings.intent_threshold:
            yes = event.intent == "yes"
        return yes

    def _instead(self, node: Node, event: Utterance, yes: bool, asked: int | None) -> Choice | None:
        """A choice the answer clearly asks for besides its yes or no ("no, I said statement", "yes
        thanks, that's all"): one that is not a yes/no choice, not the one asked about after a yes, and
        taken with full confidence; None when there is none."""
        choices = self._choices(node)
        others = [c for c in choices if c.intent not in YES_NO_INTENTS]
        if not others:
            return None
        decision = decide(event, others, self._flow.settings)
        if decision.kind != "choice" or decision.choice is None:
            return None
        if asked is not None and decision.choice.goto == choices[asked].goto:
            return None if yes else decision.choice
        return decision.choice

    def _corrected_slot(self, state: DialogState, node: Node, spec: CollectSpec, event: Utterance | DigitsEntered,
                        pending: str) -> tuple[DialogState, list[Action]] | None:
        """A read-back answered with another value ("no, it's 4 2 7 1 9 8", or keyed again): read that one
        back instead; the same value again counts as a yes. None when the turn gives no whole value."""
        text = event.digits if isinstance(event, DigitsEntered) else event.text
        if isinstance(event, DigitsEntered) and len(text.rstrip("#")) <= 1:
            return None
        value = self._slot_value(spec, text)[0]
        if value is None:
            return None
        state = replace(state, pending="")
        if value == pending:
            return self._store(state, node, spec, value)
        return self._collect(state, node, spec, event)

    def _global_instead_of_digits(self, spec: CollectSpec, event: Utterance) -> Decision | None:
        """A spoken turn with no digits where digits are collected: what it means among the global choices
        ("agent please", "I'll ring back"); None when it has digits (or the slot is not digits)."""
        if spec.type != "digits" or parse_digits(event.text) is not None:
            return None
        return decide(event, self._flow.global_choices, self._flow.settings)

    def _collect(self, state: DialogState, node: Node, spec: CollectSpec,
                 event: Utterance | DigitsEntered) -> tuple[DialogState, list[Action]]:
        text = event.digits if isinstance(event, DigitsEntered) else event.text
        if isinstance(event, Utterance):
            decision = self._global_instead_of_digits(spec, event)
            if decision is not None and decision.kind == "choice" and decision.choice is not None:
                return self._choose(state, node, decision.choice)
        value, spoken = self._slot_value(spec, text)
        if value is None:
            return self._no_match(state, node, REASON_NO_MATCH)
        if not spec.confirm:
            return self._store(state, node, spec, value)
        prompt = self._flow.settings.read_back_prompt.format(value=spoken)
        return self._ask(state, node, f"slot:{value}", [Say(prompt)])

    @staticmethod
    def _slot_value(spec: CollectSpec, text: str) -> tuple[str | None, str]:
        """(the value in `text`, how it is read back), or (None, "") when there is no whole one."""
        if spec.type == "amount":
            amount = parse_amount(text)
            return (None, "") if amount is None else (str(amount), say_amount(amount))
        value = parse_digits(text)
        if value is not None and spec.length is not None and len(value) == 2 * spec.length \
                and value[:spec.length] == value[spec.length:]:
            value = value[:spec.length]  # said twice
        if value is None or (spec.length is not None and len(value) != spec.length):
            return None, ""
        return value, read_back_digits(value)

    def _store(self, state: DialogState, node: Node, spec: CollectSpec,
               value: str) -> tuple[DialogState, list[Action]]:
        slots = tuple((k, v) for k, v in state.slots if k != spec.slot) + ((spec.slot, value),)
        actions: list[Action] = []
        assert node.next is not None
        state = replace(state, slots=slots, last_choice=spec.slot)
        return self._enter(state, node.next, actions), actions

    def _no_input(self, state: DialogState, node: Node) -> tuple[DialogState, list[Action]]:
        settings = self._flow.settings
        state = replace(state, no_input_count=state.no_input_count + 1)
        if state.no_input_count > settings.max_no_input:
            if node.on_max_no_input is not None:  # e.g. nothing more after "Anything else?": done
                actions: list[Action] = []
                return self._enter(state, node.on_max_no_input, actions), actions
            return self._fallback(state, settings.on_max_no_input, REASON_NO_INPUT, [])
        return state, self._reprompt(node, settings.no_input_prefix, self._upset(state))

    def _no_match(self, state: DialogState, node: Node, reason: str,
                  prefix: str | None = None) -> tuple[DialogState, list[Action]]:
        settings = self._flow.settings
        state = replace(state, no_match_count=state.no_match_count + 1, pending="")
        if state.no_match_count > settings.max_no_match:
            return self._fallback(state, settings.on_max_no_match, reason, [])
        if node.repair and not (self._upset(state) and node.say_upset):
            if prefix is None:
                again = state.no_match_count > 1 and settings.repeat_no_match_prefix
                prefix = settings.repeat_no_match_prefix if again else settings.no_match_prefix
            text = node.repair[min(state.no_match_count, len(node.repair)) - 1]
            barge_in = self._barge_in(node)
            listen = replace(self._listen(node), kind="reprompt")
            return state, [Say(prefix, barge_in=barge_in), Say(text, barge_in=barge_in), listen]
        actions = self._reprompt(node, settings.no_match_prefix if prefix is None else prefix, self._upset(state))
        if prefix is not None and node.reprompt:
            actions.insert(0, Say(prefix, barge_in=self._barge_in(node)))
        return state, actions

    def _upset(self, state: DialogState) -> bool:
        return is_upset(state.emotion, self._flow.settings.upset_threshold)

    def _reprompt(self, node: Node, prefix: str, upset: bool = False) -> list[Action]:
        texts = (prefix, *node.say_upset) if upset and node.say_upset else node.reprompt or (prefix, *self._say(node))
        actions: list[Action] = [Say(text, barge_in=self._barge_in(node)) for text in texts]
        actions.append(replace(self._listen(node), kind="reprompt"))
        return actions

    def _fallback(self, state: DialogState, how: str, reason: str,
                  actions: list[Action], prompt: bool = True) -> tuple[DialogState, list[Action]]:
        settings = self._flow.settings
        if how == "transfer":
            actions += [Say(settings.transfer_prompt, barge_in=False)] if prompt else []
            actions.append(Transfer(settings.transfer_target, reason))
        else:
            actions += [Say(settings.goodbye_prompt, barge_in=False), Hangup(reason)]
        return replace(state, ended=True, end_reason=reason), actions

    # --- nodes

    def _enter(self, state: DialogState, name: str, actions: list[Action]) -> DialogState:
        """Enters `name` and every `next` after it, appending their actions; the state where it stops."""
        while True:
            node = self._flow.node(name)
            texts = node.say_upset if node.say_upset and self._upset(state) else self._say(node)
            actions.extend(Say(text, barge_in=self._barge_in(node)) for text in texts)
            state = replace(state, node=name, no_input_count=0, no_match_count=0, pending="", rejected=())
            if node.next is not None and node.collect is None:
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
        timeout_ms = node.no_input_timeout_ms or self._flow.settings.no_input_timeout_ms
        if node.collect is not None:
            return Listen(no_input_timeout_ms=timeout_ms, max_digits=node.collect.length or 32, kind="collect")
        choices = self._choices(node)
        phrases = tuple(dict.fromkeys(keyword for choice in choices for keyword in choice.keywords))
        max_digits = max((len(choice.digits.rstrip("#")) for choice in choices if choice.digits), default=1)
        return Listen(no_input_timeout_ms=timeout_ms, phrases=phrases, max_digits=max_digits)

    def _barge_in(self, node: Node) -> bool:
        if node.barge_in is not None:
            return node.barge_in
        return node.kind in ("expect", "collect", "next")
