"""What a call's event log records: one frozen dataclass per kind of event, serialised here and only here.

The log (`ivr.call.eventlog`) stamps each event with the call time (`t_ms`) and hands it to its listeners
as it is; `to_dict` writes it (events.jsonl, the call store) as `{"t_ms", "type", **fields}`, and
`from_dict` reads such a record back (the store, reports, imported calls). Consumers match on the
classes, never on the `type` string. An event still reads like its record (`event["text"]`,
`event.get("node")`), for the tests and scripts that look at events.jsonl and the live log alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar, dataclass_transform


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


E = TypeVar("E", bound=CallEvent)


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def event(kind: str) -> Callable[[type[E]], type[E]]:
    """Makes a class a frozen event dataclass whose records have `"type": kind`."""

    def make(cls: type[E]) -> type[E]:
        cls.kind = kind
        return dataclass(frozen=True)(cls)

    return make


@event("call_started")
class CallStarted(CallEvent):
    call_id: str = ""
    sample_rate_hz: int | None = None
    flow: str | None = None
    """The dialog flow's name (the dashboard's flow filter)."""


@event("imported")
class Imported(CallEvent):
    """A call imported from a recording (`ivr import`), with where its speakers came from and which models
    read its caller turns ("" for each: not analysed)."""

    speakers_from: str
    emotion_from: str = ""
    """'voice and words', 'words' or 'voice': the emotion models that ran on the caller's turns."""
    intent_from: str = ""
    """'intent model' when the NLU read the caller's turns."""


@event("speech_started")
class SpeechStarted(CallEvent):
    onset_ms: float


@event("speech_stopped")
class SpeechStopped(CallEvent):
    onset_ms: float
    end_ms: float
    early: bool = False
    """The turn ended at a short pause, its words decoded ahead already settling it (not by silence)."""


@event("speech_paused")
class SpeechPaused(CallEvent):
    """The caller paused inside a turn (call.decode_ahead_ms of silence since `end_ms`): the turn so far is
    decoded ahead, in case it is over."""

    end_ms: float


@event("speech_dropped")
class SpeechDropped(CallEvent):
    """Speech too short to be a turn."""

    onset_ms: float
    end_ms: float


@event("speech_ignored")
class SpeechIgnored(CallEvent):
    reason: str


@event("barge_in")
class BargeIn(CallEvent):
    source: str
    """"speech" or "dtmf"."""
    onset_ms: float
    stopped_ms: float
    reaction_ms: float


@event("dtmf")
class Dtmf(CallEvent):
    digit: str
    """The key, or "*" when digits are not recorded (the default)."""


@event("dtmf_received")
class DtmfReceived(CallEvent):
    """How a key reached a SIP call (rfc4733, sip-info, inband); the key itself is never logged."""

    method: str


@event("asr_partial")
class AsrPartial(CallEvent):
    text: str


@event("asr_failed")
class AsrFailed(CallEvent):
    error: str


@event("transcript")
class Transcript(CallEvent):
    text: str
    confidence: float
    speaker: str | None = None
    """Who spoke, when not the caller (a further speaker of an imported recording)."""


@event("nlu")
class NluResult(CallEvent):
    intent: str
    confidence: float
    faq: str
    faq_score: float
    latency_ms: float
    hypothesis: int = 0
    """The recognizer's hypothesis understood: 0 its best, N its N-th next-best (taken when the best meant
    nothing where the call was)."""


@event("faq_miss")
class FaqMiss(CallEvent):
    node: str


@event("emotion")
class Emotion(CallEvent):
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


@event("no_input")
class NoInput(CallEvent):
    timeout_ms: float


@event("dialog")
class DialogStep(CallEvent):
    """The dialog took an event (`event`: its class name) at `node`."""

    event: str
    node: str


@event("dialog_error")
class DialogFailed(CallEvent):
    error: str


@event("listening")
class Listening(CallEvent):
    node: str
    timeout_ms: float
    asks: str
    about: str


@event("say")
class Said(CallEvent):
    text: str
    barge_in: bool


@event("reply_started")
class ReplyStarted(CallEvent):
    """The agent's first audio after the caller's turn ended: the voice-to-voice latency."""

    turn_end_ms: float
    latency_ms: float


@event("prompt_finished")
class PromptFinished(CallEvent):
    """The agent's prompt has been played out to its end."""


@event("tts_failed")
class TtsFailed(CallEvent):
    error: str


@event("call_ended")
class CallEnded(CallEvent):
    outcome: str
    reason: str
    target: str
    node: str = ""
    slots: dict[str, Any] = field(default_factory=dict)


@event("rtp_timeout")
class RtpTimeout(CallEvent):
    after_s: float


@event("transfer_refer")
class TransferRefer(CallEvent):
    uri: str


@event("transfer_refer_failed")
class TransferReferFailed(CallEvent):
    status: int | str
    """The final SIP status, or "timeout"."""


@event("transfer_bridge")
class TransferBridge(CallEvent):
    uri: str


@event("transfer_done")
class TransferDone(CallEvent):
    method: str
    """"refer" or "bridge"."""
    status: int | None = None


@event("transfer_failed")
class TransferFailed(CallEvent):
    step: str
    """"route" (no target configured) or "bridge"."""
    target: str = ""
    status: int | str = ""


@event("callback_requested")
class CallbackRequested(CallEvent):
    """The call was to go to a person and none could be bridged in (a web call, or a failed SIP transfer):
    the caller was told an agent will call back."""
    target: str
    reason: str = ""


@event("bridge_ended")
class BridgeEnded(CallEvent):
    by: str


@event("webhook")
class WebhookRequested(CallEvent):
    """The serve runner asks for a webhook event about the call (`name`, e.g. call.transferred) with
    `data` (the transfer context: no transcript, digits or caller number). The call store puts it in
    its outbox; without a store the runner posts it itself."""

    name: str
    data: dict[str, Any] = field(default_factory=dict)


@event("")
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
        CallStarted, Imported, SpeechStarted, SpeechStopped, SpeechPaused, SpeechDropped, SpeechIgnored, BargeIn,
        Dtmf, DtmfReceived, AsrPartial, AsrFailed, Transcript, NluResult, FaqMiss, Emotion, NoInput, DialogStep,
        DialogFailed, Listening, Said, ReplyStarted, PromptFinished, TtsFailed, CallEnded, RtpTimeout,
        TransferRefer, TransferReferFailed, TransferBridge, TransferDone, TransferFailed, CallbackRequested,
        BridgeEnded, WebhookRequested)}
"""Every kind of event by its record's `type`."""

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
