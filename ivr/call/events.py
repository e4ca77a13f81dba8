"""What a call's event log records: one frozen dataclass per kind of event, serialised here and only here.

The log (`ivr.call.eventlog`) stamps each event with the call time (`t_ms`) and hands it to its listeners
as it is; `to_dict` writes it (events.jsonl, the call store) as `{"t_ms", "type", **fields}`, and
`from_dict` reads such a record back (the store, reports, imported calls). Consumers match on the
classes, never on the `type` string. An event still reads like its record (`event["text"]`,
`event.get("node")`), for the tests and scripts that look at events.jsonl and the live log alike.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar


@dataclass(frozen=True)
class CallEvent:
    """Base of every event; `kind` is the record's `type`."""

    kind: ClassVar[str] = ""
    t_ms: float = field(default=0.0, kw_only=True)
    """Call time in milliseconds, set by the log when the event is emitted."""

    def __getitem__(self, key: str) -> Any:
        if key == "type":
            return self.kind
        if key in _field_names(type(self)):
            return getattr(self, key)
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default


@dataclass(frozen=True)
class CallStarted(CallEvent):
    kind = "call_started"
    call_id: str = ""
    sample_rate_hz: int | None = None


@dataclass(frozen=True)
class Imported(CallEvent):
    """A call imported from a recording (`ivr import`), with where its speakers came from."""

    kind = "imported"
    speakers_from: str


@dataclass(frozen=True)
class SpeechStarted(CallEvent):
    kind = "speech_started"
    onset_ms: float


@dataclass(frozen=True)
class SpeechStopped(CallEvent):
    kind = "speech_stopped"
    onset_ms: float
    end_ms: float


@dataclass(frozen=True)
class SpeechDropped(CallEvent):
    """Speech too short to be a turn."""

    kind = "speech_dropped"
    onset_ms: float
    end_ms: float


@dataclass(frozen=True)
class SpeechIgnored(CallEvent):
    kind = "speech_ignored"
    reason: str


@dataclass(frozen=True)
class BargeIn(CallEvent):
    kind = "barge_in"
    source: str
    """"speech" or "dtmf"."""
    onset_ms: float
    stopped_ms: float
    reaction_ms: float


@dataclass(frozen=True)
class Dtmf(CallEvent):
    kind = "dtmf"
    digit: str
    """The key, or "*" when digits are not recorded (the default)."""


@dataclass(frozen=True)
class DtmfReceived(CallEvent):
    """How a key reached a SIP call (rfc4733, sip-info, inband); the key itself is never logged."""

    kind = "dtmf_received"
    method: str


@dataclass(frozen=True)
class AsrPartial(CallEvent):
    kind = "asr_partial"
    text: str


@dataclass(frozen=True)
class AsrFailed(CallEvent):
    kind = "asr_failed"
    error: str


@dataclass(frozen=True)
class Transcript(CallEvent):
    kind = "transcript"
    text: str
    confidence: float
    speaker: str | None = None
    """Who spoke, when not the caller (a further speaker of an imported recording)."""


@dataclass(frozen=True)
class NluResult(CallEvent):
    kind = "nlu"
    intent: str
    confidence: float
    faq: str
    faq_score: float
    latency_ms: float


@dataclass(frozen=True)
class FaqMiss(CallEvent):
    kind = "faq_miss"
    node: str


@dataclass(frozen=True)
class Emotion(CallEvent):
    kind = "emotion"
    label: str
    scores: dict[str, float]
    negativity: float
    voice: str | None = None
    voice_negativity: float | None = None
    voice_weight: float | None = None
    voice_ood: float | None = None
    text: str | None = None
    text_negativity: float | None = None
    valence: float | None = None


@dataclass(frozen=True)
class NoInput(CallEvent):
    kind = "no_input"
    timeout_ms: float


@dataclass(frozen=True)
class DialogStep(CallEvent):
    """The dialog took an event (`event`: its class name) at `node`."""

    kind = "dialog"
    event: str
    node: str


@dataclass(frozen=True)
class DialogFailed(CallEvent):
    kind = "dialog_error"
    error: str


@dataclass(frozen=True)
class Listening(CallEvent):
    kind = "listening"
    node: str
    timeout_ms: float
    asks: str
    about: str


@dataclass(frozen=True)
class Said(CallEvent):
    kind = "say"
    text: str
    barge_in: bool


@dataclass(frozen=True)
class ReplyStarted(CallEvent):
    """The agent's first audio after the caller's turn ended: the voice-to-voice latency."""

    kind = "reply_started"
    turn_end_ms: float
    latency_ms: float


@dataclass(frozen=True)
class PromptFinished(CallEvent):
    kind = "prompt_finished"


@dataclass(frozen=True)
class TtsFailed(CallEvent):
    kind = "tts_failed"
    error: str


@dataclass(frozen=True)
class CallEnded(CallEvent):
    kind = "call_ended"
    outcome: str
    reason: str
    target: str
    node: str = ""
    slots: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RtpTimeout(CallEvent):
    kind = "rtp_timeout"
    after_s: float


@dataclass(frozen=True)
class TransferRefer(CallEvent):
    kind = "transfer_refer"
    uri: str


@dataclass(frozen=True)
class TransferReferFailed(CallEvent):
    kind = "transfer_refer_failed"
    status: int | str
    """The final SIP status, or "timeout"."""


@dataclass(frozen=True)
class TransferBridge(CallEvent):
    kind = "transfer_bridge"
    uri: str


@dataclass(frozen=True)
class TransferDone(CallEvent):
    kind = "transfer_done"
    method: str
    """"refer" or "bridge"."""
    status: int | None = None


@dataclass(frozen=True)
class TransferFailed(CallEvent):
    kind = "transfer_failed"
    step: str
    """"route" (no target configured) or "bridge"."""
    target: str = ""
    status: int | str = ""


@dataclass(frozen=True)
class BridgeEnded(CallEvent):
    kind = "bridge_ended"
    by: str


@dataclass(frozen=True)
class OtherEvent(CallEvent):
    """A record of a kind this code does not know (an older or newer log): kept, not interpreted."""

    type_name: str
    fields: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        if key == "type":
            return self.type_name
        return self.fields[key]


EVENT_TYPES: dict[str, type[CallEvent]] = {
    cls.kind: cls for cls in (
        CallStarted, Imported, SpeechStarted, SpeechStopped, SpeechDropped, SpeechIgnored, BargeIn, Dtmf,
        DtmfReceived, AsrPartial, AsrFailed, Transcript, NluResult, FaqMiss, Emotion, NoInput, DialogStep,
        DialogFailed, Listening, Said, ReplyStarted, PromptFinished, TtsFailed, CallEnded, RtpTimeout,
        TransferRefer, TransferReferFailed, TransferBridge, TransferDone, TransferFailed, BridgeEnded)}
"""Every kind of event by its record's `type`."""

E = TypeVar("E", bound=CallEvent)


def _field_names(cls: type[CallEvent]) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def to_dict(event: CallEvent) -> dict[str, Any]:
    """The event's record: {"t_ms", "type", **fields} (JSON-ready; an optional field left None is left out)."""
    if isinstance(event, OtherEvent):
        return {"t_ms": event.t_ms, "type": event.type_name, **event.fields}
    fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)
              if f.name != "t_ms" and not (f.default is None and getattr(event, f.name) is None)}
    return {"t_ms": event.t_ms, "type": event.kind, **fields}


_EMPTY: dict[str, Any] = {"str": "", "float": 0.0, "int": 0, "bool": False}


def _empty(annotation: object) -> Any:
    """The empty value of a field's type, for a record written without it (an older log, a hand-made one)."""
    name = str(annotation).split("|")[0].split("[")[0].strip()
    return {} if name == "dict" else _EMPTY.get(name)


def from_dict(record: dict[str, Any]) -> CallEvent:
    """The event of a record written by `to_dict`. A field the record lacks takes its default, or the
    empty value of its type; a kind this code does not know becomes an `OtherEvent`."""
    kind = str(record.get("type", ""))
    t_ms = float(record.get("t_ms") or 0.0)
    data = {k: v for k, v in record.items() if k not in ("t_ms", "type")}
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        return OtherEvent(kind, data, t_ms=t_ms)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            values[f.name] = data[f.name]
        elif f.name != "t_ms" and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            values[f.name] = _empty(f.type)
    return cls(**values, t_ms=t_ms)


def of_type(events: list[CallEvent], cls: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, cls)]
