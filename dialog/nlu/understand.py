"""The NLU a call session runs on each final transcript before the dialog step: intent + FAQ."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from dialog.nlu.faq import FaqIndex, load_faq
from dialog.nlu.model import IntentModel


@dataclass(frozen=True)
class Understanding:
    intent: str = ""
    """The best intent ("" when out of scope)."""
    intent_confidence: float = 0.0
    faq_id: str = ""
    faq_answer: str = ""
    faq_score: float = 0.0
    latency_ms: float = 0.0


class Nlu:
    """An intent model and a FAQ index, loaded once per process and shared by every call."""

    def __init__(self, intents: IntentModel | None = None, faq: FaqIndex | None = None) -> None:
        self.intents = intents
        self.faq = faq

    @classmethod
    def load(cls, model_dir: str | Path | None = None, faq_path: str | Path | None = None) -> Nlu:
        """The shipped bank models by default (models/intents, dialog/flows/bank_faq.yaml)."""
        return cls(IntentModel.load(model_dir), load_faq(faq_path))

    def understand(self, text: str) -> Understanding:
        t0 = time.perf_counter()
        intent, confidence = "", 0.0
        if self.intents is not None:
            result = self.intents.predict(text)
            intent, confidence = result.intent, result.confidence
        faq_id, answer, score = "", "", 0.0
        if self.faq is not None and not intent:
            hit = self.faq.search(text)
            if hit is not None:
                faq_id, answer, score = hit.entry.id, hit.entry.answer, hit.score
        return Understanding(intent, confidence, faq_id, answer, score, (time.perf_counter() - t0) * 1000)
