"""Prometheus metrics of `ivr serve`, read from each call's typed events (prometheus-client).

`CallMetrics` is a server observer (call_started / call_closed, like the call store) that subscribes to the
session's event log; the SIP server counts answered and refused INVITEs itself (`calls_refused`). Names
follow Prometheus conventions: base units (seconds) in the name, `_total` on counters.

Behind the Kamailio front each worker process writes its values into PROMETHEUS_MULTIPROC_DIR (set by the
supervisor) and the supervisor's /metrics adds them up (`registry()`), so one scrape target serves all.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess

from dialog.emotion.policy import REASON_NEGATIVE_EMOTION
from dialog.machine import REASON_ASR_FAILURE, REASON_MAX_DURATION, REASON_NO_INPUT, REASON_NO_MATCH
from ivr.call import events as ev
from ivr.call.stages import StageTracker
from ivr.serve import MULTIPROC_ENV

log = logging.getLogger(__name__)

LATENCY_BUCKETS_S = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
STAGE_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0)
FALLBACK_EVENTS: dict[type[ev.CallEvent], str] = {ev.AsrFailed: "asr", ev.TtsFailed: "tts",
                                                  ev.DialogFailed: "dialog"}
"""Events that mean a component failed and the call went on without it (a fallback, then maybe a transfer)."""

CALLS_ACTIVE = Gauge("ivr_calls_active", "Calls answered and not yet ended", multiprocess_mode="livesum")
CALLS_ANSWERED = Counter("ivr_calls_answered_total", "INVITEs answered with 200")
CALLS_REFUSED = Counter("ivr_calls_refused_total", "INVITEs refused, by SIP status (403 allow-list, "
                        "503 full or stopping, 500 error)", ["status"])
CALL_OUTCOMES = Counter("ivr_call_outcomes_total", "Ended calls by outcome", ["outcome"])
TRANSFERS = Counter("ivr_transfers_total", "Calls handed to a human, by reason", ["reason"])
ESCALATIONS = Counter("ivr_escalations_total", "Transfers the agent decided itself (negative emotion, "
                      "repeated no-input or no-match, a failing component), by reason", ["reason"])
TURNS = Counter("ivr_turns_total", "Caller turns transcribed")
FALLBACKS = Counter("ivr_model_fallbacks_total", "A model failed during a call and the call went on",
                    ["component"])
RTP_TIMEOUTS = Counter("ivr_rtp_timeouts_total", "Calls ended because the caller's RTP stopped")
VOICE_TO_VOICE = Histogram("ivr_voice_to_voice_seconds", "From the end of the caller's speech to the "
                           "agent's first audio", buckets=LATENCY_BUCKETS_S)
STAGE_SECONDS = {
    stage: Histogram(f"ivr_{stage}_seconds", f"Per reply: {about}", buckets=STAGE_BUCKETS_S)
    for stage, about in (("asr", "from the end of the turn to its transcript (0 when decoded ahead)"),
                         ("nlu", "intent and FAQ models"),
                         ("tts", "from the dialog's step to the reply's first audio (synthesis or cache)"),
                         ("end_of_turn", "silence waited before the turn counted as ended"))}
MODELS_LOAD_SECONDS = Gauge("ivr_models_load_seconds", "How long the models took to load at start-up",
                            multiprocess_mode="max")
READY = Gauge("ivr_ready", "1 when the process takes calls (models loaded, SIP up, store reachable)",
              multiprocess_mode="min")

AGENT_REASONS = frozenset({REASON_NEGATIVE_EMOTION, REASON_NO_INPUT, REASON_NO_MATCH, REASON_ASR_FAILURE,
                           REASON_MAX_DURATION, "dialog-error", "tts-failure"})
"""Transfer reasons that are the agent's decision, not the caller's request or the flow's routing."""


def registry() -> CollectorRegistry:
    """What /metrics serves: this process's metrics, or every worker's when PROMETHEUS_MULTIPROC_DIR is set."""
    if not os.environ.get(MULTIPROC_ENV):
        return DEFAULT_REGISTRY
    reg = CollectorRegistry()
    multiprocess.MultiProcessCollector(reg)
    return reg


def calls_refused(status: int) -> None:
    CALLS_REFUSED.labels(status=str(status)).inc()


def call_answered() -> None:
    CALLS_ANSWERED.inc()


class CallMetrics:
    """Server observer: counts each call's events into the metrics above while the call runs, and hands
    each reply's voice-to-voice latency (ms) to `on_reply` (admission, ivr.serve.headroom)."""

    def __init__(self, on_reply: Callable[[float], None] | None = None) -> None:
        self._trackers: dict[int, StageTracker] = {}
        self.on_reply = on_reply

    def call_started(self, session: Any, remote_uri: str) -> None:
        tracker = StageTracker()
        self._trackers[id(session)] = tracker
        CALLS_ACTIVE.inc()
        session.log.subscribe(lambda event: self._event(tracker, event))

    def call_closed(self, session: Any, out_dir: Any) -> None:
        if self._trackers.pop(id(session), None) is not None:
            CALLS_ACTIVE.dec()

    def _event(self, tracker: StageTracker, event: ev.CallEvent) -> None:
        try:
            row = observe(tracker, event)
            if row is not None and self.on_reply is not None:
                self.on_reply(row["total"])
        except Exception:  # a metric never breaks a call
            log.exception("metrics: event %s", event.kind)


def observe(tracker: StageTracker, event: ev.CallEvent) -> dict[str, float] | None:
    """Counts one call event; the STAGES row of the reply it starts, if it is one."""
    row = tracker.feed(event)
    if row is not None:
        VOICE_TO_VOICE.observe(row["total"] / 1000)
        for stage, histogram in STAGE_SECONDS.items():
            histogram.observe(row[stage] / 1000)
    if isinstance(event, ev.Transcript):
        TURNS.inc()
    elif isinstance(event, ev.RtpTimeout):
        RTP_TIMEOUTS.inc()
    elif isinstance(event, ev.CallEnded):
        CALL_OUTCOMES.labels(outcome=event.outcome or "unknown").inc()
        if event.outcome == "transferred":
            reason = event.reason or "requested"
            TRANSFERS.labels(reason=reason).inc()
            if reason in AGENT_REASONS:
                ESCALATIONS.labels(reason=reason).inc()
    elif type(event) in FALLBACK_EVENTS:
        FALLBACKS.labels(component=FALLBACK_EVENTS[type(event)]).inc()
    return row
