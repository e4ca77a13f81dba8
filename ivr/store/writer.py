"""Writes a call into the store as it happens, from the session's event log.

`StoreWriter` is an EventLog listener: `session.log.subscribe(writer)`. The session's tick never
waits for the database: events are queued and a writer thread applies them in small transactions.
When the call is over, `finish()` adds what only exists afterwards (word timings from the
transcript, the finished recording) and waits for everything to be written.

Event to store:
  call_started -> calls row          transcript -> caller turn (redacted)    say -> agent turn
  prompt_finished / barge_in -> the agent turn's end                         dialog -> current node
  emotion -> the caller turn's emotion and scores      any `intent` field -> the turn's and call's intent
  call_ended -> outcome, reason, escalation, end time, duration              every event -> events row
  emotion -> also the call's smoothed negativity, and upset_at the first time the caller counts as upset
  (ivr.store.upset: the flow's escalation threshold, or a turn labelled angry)
For the dashboard (ivr.console.kpis), running figures in the calls row: the flow's name (call_started),
no-input timeouts, reply latencies (reply_started: count and total), the caller's mean negativity (emotion);
and a caller turn's `nlu_miss` when the dialog could not place it, as `ivr report failures` counts them:
"out-of-scope" (the NLU ran, no intent and no FAQ) or "no-match" (no NLU, the call stayed in its node).
With `webhooks` (WebhookOptions), the same transactions add webhook events to the outbox (see
ivr.store.hookevents): call.started, call.ended, call.escalated, dialog.failed, call.upset, and what a
`webhook` event asks for (call.transferred).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, update

from ivr.call import privacy
from ivr.call.events import (
    BargeIn,
    CallEnded,
    CallEvent,
    CallStarted,
    DialogStep,
    Emotion,
    Listening,
    NluResult,
    NoInput,
    OtherEvent,
    PromptFinished,
    ReplyStarted,
    Said,
    SpeechStopped,
    Transcript,
    WebhookRequested,
    from_dict,
    to_dict,
)
from ivr.store import hookevents, kpistore, schema
from ivr.store.db import Store
from ivr.store.hookevents import CallFacts, WebhookOptions
from ivr.store.upset import UpsetRule, UpsetTracker
from telephony.queues import drain

log = logging.getLogger(__name__)

ESCALATED_OUTCOMES = ("transferred",)
ANSWER_INTENTS = frozenset({"yes", "no", "goodbye", "repeat"})
"""Intents that answer the agent rather than say what the call is about: the call's intent only when
it has no other."""
_STOP = object()


def emotion_of(event: dict[str, Any]) -> tuple[str | None, dict[str, float] | None]:
    """(label, scores) from an emotion event, whatever shape it has: label/emotion and/or scores."""
    scores_raw = event.get("scores") or event.get("probabilities")
    scores: dict[str, float] | None = None
    if isinstance(scores_raw, dict):
        scores = {str(k): float(v) for k, v in scores_raw.items() if isinstance(v, int | float)}
    label = event.get("label") or event.get("emotion")
    if not isinstance(label, str):
        label = max(scores, key=lambda k: scores[k]) if scores else None
    return label, scores


class _CallState:
    def __init__(self, upset: UpsetRule) -> None:
        self.call_id: str | None = None
        self.started_at = datetime.now(UTC)
        self.seq_event = 0
        self.seq_turn = 0
        self.speech: tuple[float, float] | None = None
        self.agent_turn: int | None = None
        self.caller_turn: int | None = None
        self.caller_turns: list[int] = []
        self.intent_is_topic = False  # calls.intent holds what the call is about (not a yes/no answer)
        self.has_intent = False
        self.menu_node: str | None = None  # the first node that listened: where a call is routed from
        self.node: str | None = None
        self.facts = CallFacts()
        """What the webhook events report."""
        self.upset = UpsetTracker(upset)
        self.kpis = _Kpis()


class _Kpis:
    """A call's running dashboard figures, and the caller turn waiting for the dialog to place it."""

    def __init__(self) -> None:
        self.flow: str | None = None
        self.no_inputs = 0
        self.replies = 0
        self.reply_ms_total = 0.0
        self.negativity: list[float] = []
        self.listen_node: str | None = None
        self.placing = False
        """The last caller turn (state.caller_turn) waits for the dialog to take it (or not)."""
        self.understood: bool | None = None
        """What the NLU said of that turn: None when it did not run."""


class StoreWriter:
    def __init__(self, store: Store, source: str = "sim", caller: str | None = None,
                 background: bool = True, webhooks: WebhookOptions | None = None,
                 upset: UpsetRule | None = None) -> None:
        """`upset`: when the caller counts as upset (UpsetRule.from_flow(flow); default: the default flow's)."""
        self.store = store
        self.webhooks = webhooks
        self._hooks_added = 0
        self.source = source
        self.caller = caller
        self.state = _CallState(upset or UpsetRule())
        self.failed = False
        self.finished = False
        """True once the call's last part (word timings, recording) is committed."""
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
            self._thread.start()

    @property
    def call_id(self) -> str | None:
        return self.state.call_id

    # ---- listener side (the call's thread) ----------------------------------------------------------

    def __call__(self, event: CallEvent) -> None:
        item = (datetime.now(UTC), event)
        if self._thread is None:
            self._apply_batch([item])
        else:
            self._queue.put(item)

    def apply(self, items: list[Any]) -> None:
        """Write (wall time, event) pairs (a CallEvent, or its record as read from events.jsonl) and
        ("finish", transcript, recording) jobs now, in one transaction."""
        self._apply_batch(items)

    def finish(self, transcript: Iterable[Any] | None = None, recording: Path | None = None,
               timeout_s: float = 30.0) -> None:
        """After the call: word timings from the transcript lines, the recording; then stop the writer."""
        job = ("finish", list(transcript or []), recording)
        if self._thread is None:
            self._apply_batch([job])
            return
        self._queue.put(job)
        self._queue.put(_STOP)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.error("call store: writer did not finish in %.0f s", timeout_s)

    # ---- writer thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            items = [self._queue.get(), *drain(self._queue)]
            stop = any(item is _STOP for item in items)
            self._apply_batch([item for item in items if item is not _STOP])
            if stop:
                return

    def _apply_batch(self, items: list[Any]) -> None:
        if not items or self.failed:
            return
        try:
            finishing = False
            self._hooks_added = 0
            with self.store.engine.begin() as conn:
                for item in items:
                    if isinstance(item, tuple) and item and item[0] == "finish":
                        self._finish(conn, item[1], item[2])
                        finishing = True
                    else:
                        self._apply(conn, item[0], item[1])
            self.finished = finishing and self.state.call_id is not None
            if self._hooks_added and self.webhooks is not None and self.webhooks.wake is not None:
                self.webhooks.wake()
        except Exception as exc:  # the call goes on; the store loses this call, says so once
            self.failed = True
            log.error("call store: cannot write call %s (%s: %s); the call is not stored",
                      self.state.call_id, type(exc).__name__, exc)

    def _apply(self, conn: Connection, wall: datetime, item: CallEvent | dict[str, Any]) -> None:
        event = item if isinstance(item, CallEvent) else from_dict(item)
        st = self.state
        t_ms = event.t_ms
        if isinstance(event, CallStarted):
            st.call_id = event.call_id or st.call_id or "call"
            st.started_at = wall - timedelta(milliseconds=t_ms)
            self.store.begin_call(conn, st.call_id, st.started_at, self.source, self.caller, event.sample_rate_hz)
            conn.execute(update(schema.calls).where(schema.calls.c.id == st.call_id).values(
                flow=event.flow, no_inputs=0, replies=0, reply_ms_total=0.0))
            st.kpis.flow = event.flow
            if self.source not in kpistore.NOT_COUNTED_SOURCES:
                kpistore.add(conn, kpistore.hour_of(st.started_at), event.flow, None, {"calls": 1})
            st.facts.source, st.facts.started_at = self.source, st.started_at
            if self.webhooks is not None:
                self._hooks_added += hookevents.started(conn, self.webhooks, st.call_id, st.facts, wall)
        if st.call_id is None:
            return
        call_id = st.call_id
        hooks = self.webhooks
        record = to_dict(event)
        clean = privacy.redact_event(record) if self.store.config.redact else record
        data = {k: v for k, v in clean.items() if k not in ("t_ms", "type")}
        st.seq_event += 1
        conn.execute(schema.events.insert().values(call_id=call_id, seq=st.seq_event, t_ms=t_ms, type=record["type"],
                                                   data=data))
        calls = update(schema.calls).where(schema.calls.c.id == call_id)
        turns = schema.turns
        self._kpis(conn, event, record)
        match event:
            case SpeechStopped():
                st.speech = (event.onset_ms, event.end_ms)
            case Transcript() if event.text.strip():
                start, end = st.speech or (t_ms, t_ms)
                st.caller_turn = self._turn(conn, "caller", start, end, clean["text"], event.confidence)
                st.caller_turns.append(st.caller_turn)
                st.facts.turn("caller", clean["text"])
                conn.execute(calls.values(last_text=clean["text"]))
            case Said():
                st.agent_turn = self._turn(conn, "agent", t_ms, None, clean.get("text", ""), None)
                st.facts.turn("agent", clean.get("text", ""))
            case PromptFinished() if st.agent_turn is not None:
                conn.execute(update(turns).where(turns.c.id == st.agent_turn).values(end_ms=t_ms))
                st.agent_turn = None
            case BargeIn() if st.agent_turn is not None:
                conn.execute(update(turns).where(turns.c.id == st.agent_turn).values(
                    end_ms=event.stopped_ms, interrupted=True))
                st.agent_turn = None
            case Emotion() | OtherEvent(type_name="emotion"):
                label, scores = emotion_of(record)
                if st.caller_turn is not None:
                    conn.execute(update(turns).where(turns.c.id == st.caller_turn).values(
                        emotion=label, emotion_scores=scores))
                if label:
                    st.facts.emotion = label
                    conn.execute(calls.values(emotion=label))
                    self.store.note_filter_value(conn, "emotion", label)
                self._upset_turn(conn, call_id, label, record.get("negativity"), wall)
            case DialogStep() | Listening() if event.node:
                if isinstance(event, Listening) and st.menu_node is None:
                    st.menu_node = event.node
                routed = (isinstance(event, DialogStep) and event.event in ("Utterance", "DigitsEntered")
                          and st.node == st.menu_node and event.node != st.node)
                if routed and not st.intent_is_topic:  # routed by a keyword or a key: the node it went to
                    self._call_intent(conn, event.node)
                st.node = event.node
                st.facts.node(event.node)
                conn.execute(calls.values(node=event.node))
            case NluResult() if event.intent:
                self._call_intent(conn, event.intent)
                if st.caller_turn is not None:
                    conn.execute(update(turns).where(turns.c.id == st.caller_turn).values(intent=event.intent))
            case CallEnded():
                self.store.note_filter_value(conn, "outcome", event.outcome)
                ended_at = st.started_at + timedelta(milliseconds=t_ms)
                conn.execute(calls.values(
                    outcome=event.outcome, reason=event.reason, transfer_target=event.target,
                    escalated=event.outcome in ESCALATED_OUTCOMES, node=event.node or None,
                    ended_at=ended_at, duration_ms=t_ms))
                self._count_ended(conn, event)
                if hooks is not None:
                    self._hooks_added += hookevents.ended(conn, hooks, call_id, st.facts, event, ended_at,
                                                              wall)
            case WebhookRequested() if hooks is not None:
                self._hooks_added += hookevents.passed_on(conn, hooks, call_id, event.name,
                                                          dict(clean.get("data") or {}), wall)

    def _upset_turn(self, conn: Connection, call_id: str, label: str | None, negativity: Any, wall: datetime) -> None:
        """The call's smoothed negativity; the first time the caller counts as upset, upset_at (and call.upset)."""
        tracker = self.state.upset
        became = tracker.turn(label, negativity if isinstance(negativity, int | float) else None)
        values: dict[str, Any] = {"smoothed_negativity": tracker.negativity}
        if became:
            values["upset_at"] = wall
        conn.execute(update(schema.calls).where(schema.calls.c.id == call_id).values(**values))
        if became and self.webhooks is not None:
            figures = {"label": label or "", "negativity": tracker.negativity, "threshold": tracker.rule.threshold,
                       "why": tracker.why, "upset_at": wall.isoformat(), "caller_turns": self.state.facts.caller_turns}
            self._hooks_added += hookevents.upset(conn, self.webhooks, call_id, figures, wall)

    def _kpis(self, conn: Connection, event: CallEvent, record: dict[str, Any]) -> None:
        """The dashboard's running figures of the call, and its caller turns not understood."""
        k, st = self.state.kpis, self.state
        calls = update(schema.calls).where(schema.calls.c.id == st.call_id)
        match event:
            case NoInput():
                k.no_inputs += 1
                conn.execute(calls.values(no_inputs=k.no_inputs))
            case ReplyStarted():
                k.replies, k.reply_ms_total = k.replies + 1, k.reply_ms_total + float(event.latency_ms)
                conn.execute(calls.values(replies=k.replies, reply_ms_total=round(k.reply_ms_total, 1)))
            case Emotion() | OtherEvent(type_name="emotion") if isinstance(record.get("negativity"), int | float):
                k.negativity.append(float(record["negativity"]))
                conn.execute(calls.values(negativity=round(sum(k.negativity) / len(k.negativity), 4)))
            case Listening():
                k.listen_node = event.node
            case Transcript() if event.text.strip():
                k.placing, k.understood = True, None
            case NluResult():
                k.understood = bool(event.intent or event.faq)
            case DialogStep(event="Utterance") if k.placing:
                miss = ("out-of-scope" if k.understood is False else
                        "no-match" if k.understood is None and event.node == k.listen_node else None)
                if miss and st.caller_turn is not None and self.source not in kpistore.NOT_COUNTED_SOURCES:
                    conn.execute(update(schema.turns).where(schema.turns.c.id == st.caller_turn).values(nlu_miss=miss))
                k.placing = False

    def _count_ended(self, conn: Connection, event: CallEnded) -> None:
        """The ended call in the dashboard's sums (moved to its queue when it was transferred)."""
        k = self.state.kpis
        if self.source in kpistore.NOT_COUNTED_SOURCES:
            return
        hour = kpistore.hour_of(self.state.started_at)
        sums = kpistore.ended_sums(event.outcome, event.reason, event.t_ms, k.no_inputs,
                                   sum(k.negativity) / len(k.negativity) if k.negativity else None, k.replies,
                                   k.reply_ms_total)
        if event.target:
            kpistore.add(conn, hour, k.flow, None, {"calls": -1})
            sums["calls"] = 1
        kpistore.add(conn, hour, k.flow, event.target, sums)
        if event.outcome == kpistore.TRANSFER_OUTCOME:
            kpistore.add_transfer(conn, hour[:10], k.flow, event.target, event.reason)

    def _call_intent(self, conn: Connection, intent: str) -> None:
        """The call's intent is its first topic (balance, lost card, ...); a yes/no answer only when no
        topic came (the last intent was 'no' in a balance call: 'no, that's all')."""
        st = self.state
        topic = intent not in ANSWER_INTENTS
        self.store.note_filter_value(conn, "intent", intent)
        if st.intent_is_topic or (st.has_intent and not topic):
            return
        st.has_intent, st.intent_is_topic = True, topic
        st.facts.intent = intent
        conn.execute(update(schema.calls).where(schema.calls.c.id == st.call_id).values(intent=intent))

    def _turn(self, conn: Connection, speaker: str, start_ms: float, end_ms: float | None, text: str,
              confidence: Any) -> int:
        self.state.seq_turn += 1
        result = conn.execute(schema.turns.insert().values(
            call_id=self.state.call_id, seq=self.state.seq_turn, speaker=speaker, start_ms=start_ms, end_ms=end_ms,
            text=text, confidence=float(confidence) if isinstance(confidence, int | float) else None,
            interrupted=False))
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    def _finish(self, conn: Connection, transcript: list[Any], recording: Path | None) -> None:
        st = self.state
        if st.call_id is None:
            return
        lines = [_line_dict(line) for line in transcript]
        caller_lines = [line for line in lines if line.get("speaker") == "caller" and str(line.get("text", "")).strip()]
        for turn_id, line in zip(st.caller_turns, caller_lines, strict=False):
            words = line.get("words") or []
            if self.store.config.redact:
                words = [{**w, "text": self.store.redact(str(w.get("text", "")))} for w in words]
            conn.execute(update(schema.turns).where(schema.turns.c.id == turn_id).values(
                words=words, start_ms=float(line.get("start_ms", 0.0)),
                end_ms=float(line["end_ms"]) if line.get("end_ms") else None))
        if recording is not None and recording.exists():
            self.store.attach_recording(conn, st.call_id, recording)
        if self.caller:
            self.store.set_caller(conn, st.call_id, self.caller)


def _line_dict(line: Any) -> dict[str, Any]:
    if isinstance(line, dict):
        return line
    return {k: getattr(line, k, None) for k in ("speaker", "start_ms", "end_ms", "text", "words", "confidence")}
