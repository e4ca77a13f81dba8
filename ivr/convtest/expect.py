"""What happened in a finished test call (read from its events) and whether the scenario's `expect` holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dialog.emotion.policy import REASON_NEGATIVE_EMOTION
from dialog.flow import Flow
from ivr.call.events import (
    CallEnded,
    CallEvent,
    DialogStep,
    Dtmf,
    Listening,
    NluResult,
    NoInput,
    ReplyStarted,
    Said,
    SpeechStopped,
    Transcript,
)
from ivr.convtest.caller import StartedTurn
from ivr.convtest.scenario import Expect
from ivr.wer import edit_distance, normalize_words

ONSET_SLACK_MS = 60.0
"""Speech detected this soon before a turn began still belongs to it (frame rounding)."""


@dataclass
class TurnRecord:
    """One caller turn: what the caller did and what the agent made of it."""

    t_ms: float
    role: str
    said: str = ""
    dtmf: str = ""
    wav: str = ""
    means: str = ""
    heard: list[str] = field(default_factory=list)
    """Transcripts of the speech this turn started (usually one)."""
    intents: list[str] = field(default_factory=list)
    """The NLU's intent (or `faq:ID`) for each transcript; "" when it found none."""
    nodes: list[str] = field(default_factory=list)
    """The dialog node after each step this turn caused."""

    @property
    def transcribed(self) -> bool:
        return bool(self.said) and bool(self.heard)

    def word_errors(self) -> tuple[int, int]:
        """(edits, reference words) between what was said and what the recognizer heard."""
        ref = normalize_words(self.said)
        return edit_distance(ref, normalize_words(" ".join(self.heard))), len(ref)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"t_ms": round(self.t_ms, 1), "role": self.role}
        for key in ("said", "dtmf", "wav", "means"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.said:
            out["heard"] = " ".join(self.heard) if self.heard else None
            if self.heard:
                edits, words = self.word_errors()
                out["word_errors"], out["words"] = edits, words
        out["intents"], out["nodes"] = self.intents, self.nodes
        return out


@dataclass
class Happened:
    """The facts of a call that expectations are checked against."""

    outcome: str
    reason: str
    target: str
    nodes: list[str]
    faqs: list[str]
    slots: dict[str, str]
    turns: list[TurnRecord]
    latencies_ms: list[float]

    @property
    def escalated(self) -> bool:
        return self.reason == REASON_NEGATIVE_EMOTION

    def as_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "reason": self.reason, "target": self.target, "nodes": self.nodes,
                "faqs": self.faqs, "slots": self.slots, "escalated": self.escalated,
                "voice_to_voice_ms": self.latencies_ms}


@dataclass(frozen=True)
class Check:
    key: str
    expected: Any
    actual: Any
    ok: bool

    def describe(self) -> str:
        verb = {"nodes": "visited", "faq": "answered"}.get(self.key, "got")
        return f"{self.key}: expected {_show(self.expected)}, {verb} {_show(self.actual)}"


def _show(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
    if value == "":
        return "(none)"
    return str(value)


def happened(events: list[CallEvent], played: list[StartedTurn], flow: Flow) -> Happened:
    turns = [TurnRecord(p.t_ms, p.role, p.turn.say, p.turn.dtmf, p.turn.wav, p.means) for p in played]
    nodes: list[str] = []
    faqs: list[str] = []
    last_faq = ""
    onset = 0.0
    current: TurnRecord | None = None
    ended: CallEnded | None = None
    pass_through = {name: " ".join(node.say) for name, node in flow.nodes.items()
                    if node.kind == "next" and node.say}
    for event in events:
        match event:
            case SpeechStopped():
                onset = event.onset_ms
            case Transcript():
                current = _turn_at(turns, onset)
                if current is not None:
                    current.heard.append(event.text.strip())
            case Dtmf() | NoInput():
                current = _turn_at(turns, event.t_ms)
            case NluResult():
                last_faq = event.faq or ""
                if current is not None:
                    understood = event.intent or (f"faq:{last_faq}" if last_faq else "")
                    if understood and event.hypothesis:  # from a next-best hypothesis, not the one heard
                        understood += f" (hypothesis {event.hypothesis + 1})"
                    current.intents.append(understood)
            case Said():
                text = event.text
                for _, name in sorted((text.find(say), name) for name, say in pass_through.items() if say in text):
                    # said after the dialog event of its step: it came before the node that step stopped in
                    at = len(nodes) - 1 if nodes and nodes[-1] in _next_chain(flow, name) else len(nodes)
                    nodes.insert(at, name)
            case DialogStep():
                nodes.append(event.node)
                if current is not None and event.event != "CallStarted":
                    current.nodes.append(event.node)
            case Listening(asks="faq"):
                faqs.append(last_faq)
            case CallEnded():
                ended = event
                nodes.append(event.node)
    visited = [n for i, n in enumerate(nodes) if n and (i == 0 or n != nodes[i - 1])]
    if visited and visited[0] != flow.start:
        visited = _start_chain(flow, visited[0]) + visited
    latencies = [e.latency_ms for e in events if isinstance(e, ReplyStarted)]
    if ended is None:
        return Happened("unfinished", "", "", visited, [f for f in faqs if f], {}, turns, latencies)
    return Happened(ended.outcome, ended.reason, ended.target, visited, [f for f in faqs if f],
                    {str(k): str(v) for k, v in ended.slots.items()}, turns, latencies)


def _turn_at(turns: list[TurnRecord], t_ms: float) -> TurnRecord | None:
    """The caller turn that was playing at `t_ms`: the last one begun by then."""
    begun = [t for t in turns if t.t_ms <= t_ms + ONSET_SLACK_MS]
    return begun[-1] if begun else None


def _next_chain(flow: Flow, name: str) -> list[str]:
    """The nodes a `next` from `name` leads through, up to where the call stops to listen or ends."""
    chain: list[str] = []
    node = flow.nodes[name]
    while node.next is not None and node.collect is None and node.next not in chain:
        chain.append(node.next)
        node = flow.nodes[node.next]
    return chain


def _start_chain(flow: Flow, first: str) -> list[str]:
    """The nodes a call passes through (`next`) from the flow's start before `first`, where it first stops."""
    chain, name = [], flow.start
    while name != first and name not in chain:
        chain.append(name)
        node = flow.nodes[name]
        if node.next is None or node.collect is not None:
            return []
        name = node.next
    return chain


def check(expect: Expect, facts: Happened) -> list[Check]:
    """One Check per expectation present, in the order of the format."""
    checks = []
    for key, actual in (("outcome", facts.outcome), ("reason", facts.reason), ("target", facts.target)):
        expected = getattr(expect, key)
        if expected is not None:
            checks.append(Check(key, expected, actual, expected == actual))
    if expect.nodes is not None:
        checks.append(Check("nodes", list(expect.nodes), facts.nodes, is_subsequence(expect.nodes, facts.nodes)))
    if expect.faq is not None:
        checks.append(Check("faq", expect.faq, facts.faqs, expect.faq in facts.faqs))
    if expect.slots is not None:
        wanted = dict(expect.slots)
        ok = all(facts.slots.get(k) == v for k, v in wanted.items())
        checks.append(Check("slots", wanted, facts.slots, ok))
    if expect.escalated is not None:
        checks.append(Check("escalated", expect.escalated, f"{facts.escalated} ({facts.outcome}, {facts.reason})",
                            expect.escalated == facts.escalated))
    return checks


def is_subsequence(wanted: tuple[str, ...] | list[str], seen: list[str]) -> bool:
    it = iter(seen)
    return all(any(node == s for s in it) for node in wanted)
