"""Call flows as data: frozen dataclasses, and `load_flow` that reads and checks a YAML flow.

A flow file looks like this (see `flows/bank.yaml` for a full one):

    name: demo
    start: menu
    settings:                       # every setting is optional
      no_input_timeout_ms: 6000
      max_no_input: 2               # reprompts after silence; one more silence -> on_max_no_input
      max_no_match: 2               # repairs after a miss; one more miss -> on_max_no_match
      on_max_no_input: hangup       # transfer | hangup
      on_max_no_match: transfer     # transfer | hangup
      on_max_duration: transfer     # transfer | hangup
      transfer_target: sip:queue@agents
    global:                         # choices that apply in every listening node
      - {keywords: [agent, operator], digits: "0", goto: agent}
    nodes:
      menu:
        say: Say balance, or press one.      # one text, or a list of sentences
        say_text: Type balance, or 1.        # optional: shown instead of `say` on a text channel (chat)
        reprompt: Please say balance, or press one.   # optional: said after silence (and misses)
        repair:                                        # optional: said after the 1st, 2nd, ... miss
          - I can tell you your balance. Would you like that?
          - Please press one for your balance.
        expect:
          - {keywords: [balance], digits: "1", intent: balance, name: your balance, goto: balance}
      balance:
        say: Your balance is ten dollars. Anything else?
        expect:
          - {keywords: ["no"], goto: bye}
        on_max_no_input: bye                  # optional: silence here after the answer ends the call as done
      agent:
        say: Connecting you now.
        transfer: {reason: caller-request}   # target defaults to settings.transfer_target
      bye:
        say: Goodbye.
        hangup: {reason: completed}

Every problem is one FlowError line that names the file, the line, the node and the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from dialog._yaml import line_of, parse_yaml
from dialog.emotion.policy import EmotionEscalation
from dialog.errors import FlowError

Fallback = Literal["transfer", "hangup"]
FALLBACKS: tuple[str, ...] = ("transfer", "hangup")
DEFAULT_TRANSFER_TARGET = "sip:queue@agents"
_DIGITS_RE = re.compile(r"[0-9*#]+")


@dataclass(frozen=True)
class Settings:
    """Flow-wide behaviour; every field has a default, so `settings:` may be left out."""

    no_input_timeout_ms: int = 6000
    """How long a listening node waits for the caller before a NoInput."""
    max_no_input: int = 2
    """Reprompts after silence in one node; the silence after the last reprompt triggers on_max_no_input."""
    max_no_match: int = 2
    """Reprompts after a miss (or a failed recognition); the next miss triggers on_max_no_match."""
    max_asr_failures: int = 2
    """Failed recognitions in a row (a broken recognizer, not a caller we misheard) that are reprompted; the
    next one transfers the call whatever on_max_no_match says, so a caller never waits out every repair
    of a component that is down."""
    on_max_no_input: Fallback = "transfer"
    on_max_no_match: Fallback = "transfer"
    on_max_duration: Fallback = "transfer"
    transfer_target: str = DEFAULT_TRANSFER_TARGET
    """Where fallbacks and `transfer:` nodes without a target send the call."""
    min_confidence: float = 0.0
    """Utterances below this ASR confidence count as a no-match (0 accepts every utterance)."""
    no_match_prefix: str = "Sorry, I didn't catch that."
    no_input_prefix: str = "Are you still there?"
    transfer_prompt: str = "Please hold while I connect you to an agent."
    """Said before a fallback transfer."""
    goodbye_prompt: str = "Thank you for calling. Goodbye."
    """Said before a fallback hangup."""
    max_duration_prompt: str = "I'm sorry, we have reached the time limit for this call."
    intent_threshold: float = 0.6
    """A choice with at least this share of the evidence is taken (see dialog.decide)."""
    intent_confirm_threshold: float = 0.3
    """Between this and intent_threshold the caller is asked "Did you mean ...?" (yes/no)."""
    faq_threshold: float = 0.5
    """A FAQ entry with at least this share of the evidence is answered."""
    keyword_weight: float = 4.0
    """How much a matched keyword multiplies its choice's weight (at least 1; 1: keywords only count for
    choices the NLU does not know)."""
    keyword_prior: float = 0.3
    """The weight of a choice the NLU does not know when one of its keywords matches (before keyword_weight)."""
    confirm_below_asr_confidence: float = 0.0
    """A choice understood from a turn the recognizer was less sure of than this is confirmed first
    ("Did you mean ...?"); 0 never asks for that reason."""
    confirm_early_hangup: bool = False
    """A choice that would hang up before the caller chose or heard anything is confirmed first ("Did you
    mean that you're all done?"): Whisper writes "Thank you." for speech it cannot make out."""
    did_you_mean_prompt: str = "Did you mean {choice}?"
    """{choice}: the choice's `name`, else its intent (or target node) with spaces for underscores."""
    faq_followup_prompt: str = "Did that answer your question?"
    read_back_prompt: str = "I heard {value}. Is that right?"
    """A `collect` node's confirmation; {value}: the digits one by one, or the amount."""
    after_faq: str = ""
    """The node a caller goes to once a FAQ answer helped ("yes"); empty: the node that asked is said again."""
    repeat_no_match_prefix: str = ""
    """Said before a node's `repair` prompt from the second miss on (empty: no_match_prefix again)."""
    confirm_yes_prompt: str = "Good."
    confirm_no_prompt: str = "Sorry about that."
    escalate_on_negative_emotion: EmotionEscalation | None = None
    """`{turns: 2, threshold: 0.6}`: transfer ("negative-emotion") once the caller's smoothed negativity
    stays at or above threshold for that many turns in a row (see dialog.emotion.policy). None: never."""
    emotion_smoothing: float = 0.5
    """Weight of each new turn in the call's moving average of negativity."""
    upset_threshold: float = 0.5
    """A caller whose smoothed negativity reaches this hears nodes' `say_upset` variants."""
    negative_emotion_prompt: str = "I'm sorry this has been frustrating. Let me connect you to one of our agents."


@dataclass(frozen=True)
class CollectSpec:
    """A slot a `collect` node asks for: keypad or voice, read back for confirmation."""

    slot: str
    type: Literal["digits", "amount"] = "digits"
    length: int | None = None
    """digits: exactly this many (None: any number); keypad entry ends at this many or '#'."""
    confirm: bool = True
    """Read the value back ("I heard 1 2 3, is that right?") and wait for yes/no (or keys 1/2)."""


@dataclass(frozen=True)
class Choice:
    """One way out of a listening node: keywords and regex are evidence for it (dialog.decide), digits
    (keyed or spoken alone) select it, and so does the NLU's intent."""

    goto: str
    keywords: tuple[str, ...] = ()
    """Phrases matched on word boundaries after `normalize` (case and punctuation do not matter)."""
    regex: str | None = None
    """Searched in the normalized utterance (lower case, no punctuation, number words as digits)."""
    digits: str | None = None
    """Keypad entry (e.g. "1"); the spoken digit ("one", "press one") selects it too."""
    intent: str | None = None
    """The NLU intent that selects the choice; reported in DialogState.last_intent."""
    name: str | None = None
    """How the agent names the choice in a question ("your balance" in "Did you mean your balance?")."""

    @property
    def spoken(self) -> str:
        """The name, else the intent (or target node) with spaces for underscores."""
        return self.name or (self.intent or self.goto).replace("_", " ")

    @property
    def label(self) -> str:
        """The intent when there is one, else the target node."""
        return self.intent or self.goto


@dataclass(frozen=True)
class TransferSpec:
    reason: str
    target: str | None = None
    """None: the flow's settings.transfer_target."""


@dataclass(frozen=True)
class HangupSpec:
    reason: str


NodeKind = Literal["expect", "collect", "next", "transfer", "hangup"]


@dataclass(frozen=True)
class Node:
    """A step of the flow: says `say`, then listens (expect), goes on (next), transfers or hangs up."""

    name: str
    say: tuple[str, ...] = ()
    reprompt: tuple[str, ...] = ()
    """Said instead of `say` on retries; empty: the settings' prefix + `say`."""
    repair: tuple[str, ...] = ()
    """After the first, second, ... miss (no-match): the settings' prefix + this prompt (the last one again
    for later misses), narrower each time (name the options, then offer keys); empty: as `reprompt`."""
    expect: tuple[Choice, ...] = ()
    next: str | None = None
    transfer: TransferSpec | None = None
    hangup: HangupSpec | None = None
    no_input_timeout_ms: int | None = None
    """None: the flow's settings.no_input_timeout_ms."""
    barge_in: bool | None = None
    """Whether the caller may interrupt this node's prompt; None: yes, except before a transfer or hangup."""
    collect: CollectSpec | None = None
    """Ask for a slot, then go to `next` once it is given (and confirmed)."""
    say_upset: tuple[str, ...] = ()
    """Said instead of `say` (and on retries) to an upset caller: an empathetic, shorter variant."""
    say_text: tuple[str, ...] = ()
    """Written instead of `say` on a text channel (chat), where the spoken wording does not fit a screen
    ("press one" -> "type 1"); empty: `say`. Only `say` has a text variant (it is also what a retry without
    `reprompt` repeats); `reprompt`, `repair` and `say_upset` are shown as written."""
    on_max_no_input: str | None = None
    """The node entered when the no-inputs here run out, instead of the settings' on_max_no_input: after an
    answer's "Anything else?", a caller who says nothing more was served and is done (goodbye, completed).
    It must end the call (a hangup or transfer node, or `next` steps to one)."""

    @property
    def kind(self) -> NodeKind:
        if self.expect:
            return "expect"
        if self.collect is not None:
            return "collect"
        if self.next is not None:
            return "next"
        if self.transfer is not None:
            return "transfer"
        return "hangup"


@dataclass(frozen=True)
class Flow:
    name: str
    start: str
    nodes: Mapping[str, Node] = field(hash=False)
    """Read-only, in file order."""
    settings: Settings = Settings()
    global_choices: tuple[Choice, ...] = ()
    """Choices every listening node accepts besides its own (its own win a tie)."""
    source: str = "<flow>"

    def node(self, name: str) -> Node:
        """The node called `name`; FlowError when the flow has none."""
        try:
            return self.nodes[name]
        except KeyError:
            raise FlowError(f"unknown flow state '{name}': flow '{self.name}' has no such node") from None


# ---------------------------------------------------------------------------------------------- loading


def default_flow_path() -> Path:
    """The bank demo flow shipped with the package."""
    return Path(__file__).resolve().parent / "flows" / "bank.yaml"


def load_default_flow() -> Flow:
    return load_flow(default_flow_path())


def spoken_texts(flow: Flow) -> list[str]:
    """Everything the flow may say word for word: its nodes' prompts and its settings' fixed prompts and
    prefixes (templates with `{...}` are said with values, so they are left out)."""
    settings = flow.settings
    texts = [getattr(settings, f.name) for f in dataclasses.fields(settings)
             if f.name.endswith(("_prompt", "_prefix")) and isinstance(getattr(settings, f.name), str)]
    for node in flow.nodes.values():
        texts.extend((*node.say, *node.reprompt, *node.repair, *node.say_upset))
    return [t for t in dict.fromkeys(texts) if t and "{" not in t]


def load_flow(path_or_text: str | Path) -> Flow:
    """A checked Flow from a YAML file (a Path, or a one-line str naming a .yaml/.yml or existing file)
    or from YAML text (a str with a newline)."""
    if isinstance(path_or_text, Path) or _looks_like_path(path_or_text):
        path = Path(path_or_text)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FlowError(f"flow file not found: {path}") from None
        except (OSError, UnicodeDecodeError) as error:
            raise FlowError(f"cannot read flow file {path}: {error}") from None
        return parse_flow(text, source=path.name)
    return parse_flow(path_or_text)


def _looks_like_path(text: str) -> bool:
    if "\n" in text:
        return False
    return text.endswith((".yaml", ".yml")) or Path(text).is_file()


def parse_flow(text: str, source: str = "<flow text>") -> Flow:
    """A checked Flow from YAML text; `source` names it in error messages."""
    data = parse_yaml(text, source)
    return _Parser(source).flow(data)


_TOP_KEYS = ("name", "start", "settings", "global", "nodes")
_NODE_KEYS = ("say", "reprompt", "expect", "next", "transfer", "hangup", "no_input_timeout_ms", "barge_in",
              "collect", "say_upset", "repair", "say_text", "on_max_no_input")
_COLLECT_KEYS = ("slot", "type", "length", "confirm")
_CHOICE_KEYS = ("keywords", "regex", "digits", "intent", "goto", "name")
_SETTING_KEYS = tuple(Settings.__dataclass_fields__)


def _ends_the_call(flow: Flow, name: str) -> bool:
    """Whether entering `name` ends the call: it, or the node its `next` steps lead to, hangs up or transfers."""
    node, passed = flow.nodes[name], {name}
    while node.next is not None and node.collect is None and node.next in flow.nodes and node.next not in passed:
        node = flow.nodes[node.next]
        passed.add(node.name)
    return node.hangup is not None or node.transfer is not None


class _Parser:
    """Turns parsed YAML into a Flow, with errors that say where."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: object, message: str, key: str | None = None) -> FlowError:
        line = line_of(where, key)
        at = f", line {line}" if line else ""
        return FlowError(f"{self.source}{at}: {message}")

    # --- structure

    def flow(self, data: Any) -> Flow:
        if not isinstance(data, dict):
            raise self.fail(data, "a flow must be a mapping with 'start' and 'nodes'")
        self.check_keys(data, _TOP_KEYS, "the flow")
        for key in ("start", "nodes"):
            if key not in data:
                raise self.fail(data, f"the flow has no '{key}'")
        name = self.text(data, data.get("name", self.source), "the flow's 'name'")
        start = self.text(data, data["start"], "the flow's 'start'")
        settings = self.settings(data.get("settings") or {})
        raw_nodes = data["nodes"]
        if not isinstance(raw_nodes, dict) or not raw_nodes:
            raise self.fail(data, "'nodes' must be a mapping of node names to nodes, with at least one node")
        nodes = {str(node_name): self.node(str(node_name), raw) for node_name, raw in raw_nodes.items()}
        raw_globals = data.get("global") or []
        if not isinstance(raw_globals, list):
            raise self.fail(data, "'global' must be a list of choices")
        global_choices = tuple(self.choice(raw, "the 'global' list") for raw in raw_globals)
        flow = Flow(name=name, start=start, nodes=MappingProxyType(nodes), settings=settings,
                    global_choices=global_choices, source=self.source)
        self.check_references(flow, data, raw_nodes, raw_globals)
        return flow

    def settings(self, raw: Any) -> Settings:
        if not isinstance(raw, dict):
            raise self.fail(raw, "'settings' must be a mapping")
        self.check_keys(raw, _SETTING_KEYS, "'settings'")
        values: dict[str, Any] = {}
        for key, value in raw.items():
            what = f"setting '{key}'"
            if key in ("no_input_timeout_ms", "max_no_input", "max_no_match", "max_asr_failures"):
                values[key] = self.count(raw, value, what, minimum=1 if key.endswith("_ms") else 0)
            elif key.startswith("on_max_"):
                if value not in FALLBACKS:
                    raise self.fail(raw, f"{what} must be 'transfer' or 'hangup', not {value!r}")
                values[key] = value
            elif key == "escalate_on_negative_emotion":
                values[key] = self.escalation(raw, value, what)
            elif key in ("min_confidence", "intent_threshold", "intent_confirm_threshold", "emotion_smoothing",
                         "upset_threshold", "faq_threshold", "keyword_prior", "confirm_below_asr_confidence"):
                if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                    raise self.fail(raw, f"{what} must be a number from 0 to 1, not {value!r}")
                values[key] = float(value)
            elif key == "confirm_early_hangup":
                if not isinstance(value, bool):
                    raise self.fail(raw, f"{what} must be true or false, not {value!r}")
                values[key] = value
            elif key == "keyword_weight":
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 1:
                    raise self.fail(raw, f"{what} must be a number of at least 1, not {value!r}")
                values[key] = float(value)
            else:
                values[key] = self.text(raw, value, what)
        return Settings(**values)

    def escalation(self, at: object, value: Any, what: str) -> EmotionEscalation | None:
        if value is None or value is False:
            return None
        if not isinstance(value, dict) or set(value) - {"turns", "threshold"}:
            raise self.fail(at, f"{what} must be a mapping like {{turns: 2, threshold: 0.6}}")
        turns = self.count(value, value.get("turns", 2), f"{what} 'turns'", 1)
        threshold = value.get("threshold", 0.6)
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold <= 1:
            raise self.fail(value, f"{what} 'threshold' must be a number above 0 and at most 1")
        return EmotionEscalation(turns=turns, threshold=float(threshold))

    def node(self, name: str, raw: Any) -> Node:
        where = f"node '{name}'"
        if not isinstance(raw, dict):
            raise self.fail(raw, f"{where} must be a mapping with 'say' and one of "
                                 "expect/next/transfer/hangup")
        self.check_keys(raw, _NODE_KEYS, where)
        ways = [key for key in ("expect", "next", "transfer", "hangup") if key in raw]
        if not ways:
            raise self.fail(raw, f"{where} needs one of 'expect', 'next', 'transfer' or 'hangup'")
        if len(ways) > 1:
            raise self.fail(raw, f"{where} has both '{ways[0]}' and '{ways[1]}'; give it only one")
        kind = ways[0]
        if "collect" in raw and kind != "next":
            raise self.fail(raw, f"{where} 'collect' needs 'next' (where to go once the slot is given)")
        say = self.prompt(raw, raw.get("say"), f"{where} 'say'") if "say" in raw else ()
        if not say and kind in ("expect", "next"):
            raise self.fail(raw, f"{where} has no 'say' prompt")
        reprompt = self.prompt(raw, raw["reprompt"], f"{where} 'reprompt'") if "reprompt" in raw else ()
        timeout = raw.get("no_input_timeout_ms")
        barge_in = raw.get("barge_in")
        if barge_in is not None and not isinstance(barge_in, bool):
            raise self.fail(raw, f"{where} 'barge_in' must be true or false")
        say_upset = self.prompt(raw, raw["say_upset"], f"{where} 'say_upset'") if "say_upset" in raw else ()
        repair = self.prompt(raw, raw["repair"], f"{where} 'repair'") if "repair" in raw else ()
        say_text = self.prompt(raw, raw["say_text"], f"{where} 'say_text'") if "say_text" in raw else ()
        if say_text and not say:
            raise self.fail(raw, f"{where} has 'say_text' but no 'say' (say_text is the text variant of say)",
                            "say_text")
        node = Node(
            name=name, say=say, reprompt=reprompt, say_upset=say_upset, repair=repair, say_text=say_text,
            no_input_timeout_ms=None if timeout is None else self.count(raw, timeout, f"{where} "
                                                                        "'no_input_timeout_ms'", 1),
            barge_in=barge_in,
            on_max_no_input=self.text(raw, raw["on_max_no_input"], f"{where} 'on_max_no_input'")
            if "on_max_no_input" in raw else None,
        )
        if kind == "expect":
            choices = raw["expect"]
            if not isinstance(choices, list) or not choices:
                raise self.fail(raw, f"{where} 'expect' must be a non-empty list of choices")
            return replace(node, expect=tuple(self.choice(choice, where) for choice in choices))
        if kind == "next":
            collect = self.collect(raw["collect"], where) if "collect" in raw else None
            return replace(node, next=self.text(raw, raw["next"], f"{where} 'next'"), collect=collect)
        spec = raw[kind]
        if not isinstance(spec, dict):
            raise self.fail(raw, f"{where} '{kind}' must be a mapping with a 'reason'")
        allowed = ("reason", "target") if kind == "transfer" else ("reason",)
        self.check_keys(spec, allowed, f"{where} '{kind}'")
        if "reason" not in spec:
            raise self.fail(spec, f"{where} '{kind}' has no 'reason'")
        reason = self.text(spec, spec["reason"], f"{where} '{kind}' reason")
        if kind == "hangup":
            return replace(node, hangup=HangupSpec(reason=reason))
        target = self.text(spec, spec["target"], f"{where} transfer target") if "target" in spec else None
        return replace(node, transfer=TransferSpec(reason=reason, target=target))

    def collect(self, raw: Any, where: str) -> CollectSpec:
        if not isinstance(raw, dict) or "slot" not in raw:
            raise self.fail(raw, f"{where} 'collect' must be a mapping with a 'slot' name")
        self.check_keys(raw, _COLLECT_KEYS, f"{where} 'collect'")
        kind = raw.get("type", "digits")
        if kind not in ("digits", "amount"):
            raise self.fail(raw, f"{where} 'collect' type must be 'digits' or 'amount', not {kind!r}")
        length = raw.get("length")
        confirm = raw.get("confirm", True)
        if not isinstance(confirm, bool):
            raise self.fail(raw, f"{where} 'collect' confirm must be true or false")
        return CollectSpec(slot=self.text(raw, raw["slot"], f"{where} 'collect' slot"), type=kind,
                           length=None if length is None else self.count(raw, length, f"{where} length", 1),
                           confirm=confirm)

    def choice(self, raw: Any, where: str) -> Choice:
        if not isinstance(raw, dict):
            raise self.fail(raw, f"a choice in {where} must be a mapping with 'goto' and "
                                 "keywords/regex/digits")
        self.check_keys(raw, _CHOICE_KEYS, f"a choice in {where}")
        if "goto" not in raw:
            raise self.fail(raw, f"a choice in {where} has no 'goto'")
        goto = self.text(raw, raw["goto"], f"'goto' in {where}")
        where = f"the choice '{goto}' in {where}"
        keywords = raw.get("keywords", [])
        if isinstance(keywords, str):
            keywords = [keywords]
        if not isinstance(keywords, list):
            raise self.fail(raw, f"'keywords' of {where} must be a list of phrases")
        phrases = tuple(self.keyword(raw, keyword, where) for keyword in keywords)
        regex = raw.get("regex")
        if regex is not None:
            regex = self.text(raw, regex, f"'regex' of {where}")
            try:
                re.compile(regex)
            except re.error as error:
                raise self.fail(raw, f"'regex' of {where} is not a valid regular expression: "
                                     f"{error}") from None
        digits = raw.get("digits")
        if digits is not None:
            if isinstance(digits, int) and not isinstance(digits, bool) and digits >= 0:
                digits = str(digits)
            if not isinstance(digits, str) or not _DIGITS_RE.fullmatch(digits):
                raise self.fail(raw, f"'digits' of {where} must be keypad keys like \"1\", not {digits!r}")
        intent = raw.get("intent")
        if intent is not None:
            intent = self.text(raw, intent, f"'intent' of {where}")
        if not phrases and regex is None and digits is None and intent is None:
            raise self.fail(raw, f"{where} needs 'keywords', 'regex', 'digits' or 'intent'")
        name = self.text(raw, raw["name"], f"'name' of {where}") if "name" in raw else None
        return Choice(goto=goto, keywords=phrases, regex=regex, digits=digits, intent=intent, name=name)

    def check_references(self, flow: Flow, data: dict[str, Any], raw_nodes: dict[str, Any],
                         raw_globals: list[Any]) -> None:
        def need(target: str, where: str, at: object, key: str = "goto") -> None:
            if target not in flow.nodes:
                close = difflib.get_close_matches(target, list(flow.nodes), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise self.fail(at, f"{where} goes to unknown node '{target}'{hint}", key)

        need(flow.start, "'start'", data, "start")
        if flow.settings.after_faq:
            need(flow.settings.after_faq, "setting 'after_faq'", data.get("settings") or data, "after_faq")
        for choice, raw in zip(flow.global_choices, raw_globals, strict=True):
            need(choice.goto, "a choice in 'global'", raw)
        for node in flow.nodes.values():
            raw = raw_nodes[node.name]
            if node.next is not None:
                need(node.next, f"node '{node.name}' 'next'", raw, "next")
            if node.on_max_no_input is not None:
                need(node.on_max_no_input, f"node '{node.name}' 'on_max_no_input'", raw, "on_max_no_input")
                if not _ends_the_call(flow, node.on_max_no_input):  # a silent line must not loop between nodes
                    raise self.fail(raw, f"node '{node.name}' 'on_max_no_input' must lead to a node that ends the "
                                         "call (hangup or transfer)", "on_max_no_input")
            for choice, raw_choice in zip(node.expect, raw.get("expect") or [], strict=False):
                need(choice.goto, f"a choice in node '{node.name}'", raw_choice)
        for node in flow.nodes.values():
            seen = [node.name]
            current = node
            while current.next is not None:
                if current.next in seen:
                    loop = " -> ".join([*seen[seen.index(current.next):], current.next])
                    raise self.fail(raw_nodes[node.name],
                                    f"nodes loop through 'next' without listening: {loop}")
                seen.append(current.next)
                current = flow.nodes[current.next]

    # --- values

    def check_keys(self, raw: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
        for key in raw:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = (f" (did you mean '{close[0]}'?)" if close
                        else f" (expected one of: {', '.join(allowed)})")
                raise self.fail(raw, f"{where} has unknown key '{key}'{hint}", key)

    def text(self, at: object, value: Any, what: str) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(at, f"{what} must be text, not {value!r}")
        text = str(value).strip()
        if not text:
            raise self.fail(at, f"{what} is empty")
        return text

    def keyword(self, at: object, value: Any, where: str) -> str:
        if isinstance(value, bool):
            raise self.fail(at, f"a keyword of {where} reads as {value!r}: quote words like 'yes', 'no', "
                                "'on', 'off' in YAML")
        return self.text(at, value, f"a keyword of {where}")

    def prompt(self, at: object, value: Any, what: str) -> tuple[str, ...]:
        items = value if isinstance(value, list) else [value]
        if not items or any(item is None for item in items):
            raise self.fail(at, f"{what} is empty")
        return tuple(self.text(at, item, what) for item in items)

    def count(self, at: object, value: Any, what: str, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(at, f"{what} must be a whole number of at least {minimum}, not {value!r}")
        return value
