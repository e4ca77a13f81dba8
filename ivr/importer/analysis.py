"""Emotion and intent of an imported call's caller turns, read by the models a live call uses.

A live call logs an `emotion` event (voice and words fused, dialog.emotion) and an `nlu` event (the intent
model and FAQ retrieval, dialog.nlu) for each caller turn; `TurnAnalysis.events` gives an imported turn the
same two events, so the call list and the call page show imported calls like live ones. The acoustic model
is a small network over prosodic features; the NLU runs its sentence encoder once a turn.
A model that is not installed is left out with a warning, and the call's `imported` event says which ran.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np

from dialog.emotion.analyzer import EmotionAnalyzer
from dialog.nlu.understand import Nlu
from ivr.call.emotionlane import emotion_event
from ivr.call.events import CallEvent, NluResult
from models.errors import AgentError

log = logging.getLogger(__name__)


@dataclass
class TurnAnalysis:
    emotion: EmotionAnalyzer | None = None
    nlu: Nlu | None = None

    @classmethod
    def load(cls, emotion: bool = True, intent: bool = True) -> TurnAnalysis:
        """The shipped models (those `ivr serve` loads), each when asked for and installed."""
        analyzer, nlu = None, None
        if emotion:
            from telephony.audio.resample import resample

            analyzer = EmotionAnalyzer.load(resample=resample)
            if analyzer is None:
                log.warning("import: no emotion model could be loaded; imported calls get no emotion")
        if intent:
            try:
                nlu = Nlu.load()
            except AgentError as exc:
                log.warning("import: no intent model (%s); imported calls get no intent", exc)
        return cls(analyzer, nlu)

    @property
    def emotion_from(self) -> str:
        """Which emotion models read the turns: 'voice and words', 'voice', 'words' or '' (none)."""
        if self.emotion is None:
            return ""
        parts = [name for name, model in (("voice", self.emotion.acoustic), ("words", self.emotion.text_model))
                 if model is not None]
        return " and ".join(parts)

    @property
    def intent_from(self) -> str:
        return "intent model" if self.nlu is not None and self.nlu.intents is not None else ""

    def events(self, audio: np.ndarray, rate_hz: int, text: str, t_ms: float) -> list[CallEvent]:
        """A caller turn's `emotion` and `nlu` events (in a live call's order), stamped `t_ms`."""
        out: list[CallEvent] = []
        if self.emotion is not None:
            voice = self.emotion.voice(audio, rate_hz)
            emotion = emotion_event(self.emotion, text, voice)
            if emotion is not None:
                out.append(dataclasses.replace(emotion, t_ms=t_ms))
        if self.nlu is not None:
            found = self.nlu.understand(text)
            out.append(NluResult(intent=found.intent, confidence=round(found.intent_confidence, 3),
                                 faq=found.faq_id, faq_score=round(found.faq_score, 3),
                                 latency_ms=round(found.latency_ms, 2), t_ms=t_ms))
        return out
