"""The NLU a call session runs on each final transcript before the dialog step: intents and FAQ candidates.

One sentence vector (all-MiniLM-L6-v2, when installed) serves both readers of a turn:
- the intent model (`dialog.nlu.model`) gives a probability to every label it knows: the flow's intents,
  `oos`, and `faq:<id>` for the FAQ entries it was trained on;
- FAQ retrieval (`dialog.nlu.faq`) scores every entry by its question and paraphrases.

The model's probabilities are the calibrated ones, so they set how much of the turn is a FAQ question at
all: the mass M of its `faq:` labels. Retrieval only says which entry that mass goes to: entry e gets
M * softmax_e(log p_model(e) + RETRIEVAL_WEIGHT * retrieval score(e)), so a paraphrase far closer to one
entry than the model thought moves the mass there, but retrieval alone never makes a balance request a FAQ
question. The best entry the model was not trained on (a FAQ edited since, or a model trained without FAQ
labels) takes a share of the out-of-scope probability: its retrieval score mapped to 0..1 by a logistic
curve that is one half at the FAQ's threshold. Without an intent model every entry's score is that
mapped retrieval score.
The turn's `ranking` keeps the other labels' probabilities as the model gave them. The node-dependent
decision (which of the node's choices, a FAQ answer, or neither) is the dialog's: `dialog.decide`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dialog.events import FaqCandidate, Utterance
from dialog.nlu.faq import FaqIndex, load_faq
from dialog.nlu.model import FAQ_PREFIX, OOS_LABEL, IntentModel
from dialog.nlu.text import meaning_part

Ranking = tuple[tuple[str, float], ...]
TOP_FAQS = 3
FAQ_REPORTED = 0.3
"""The best FAQ candidate is reported as the turn's `faq_id` (logs, the `nlu` event) from this score on. The
dialog answers only the best candidate, and only when its share reaches the flow's faq_threshold, which is
never above its score (dialog.decide): so with faq_threshold >= FAQ_REPORTED an answered entry is the one
the `nlu` event names."""
RETRIEVAL_SLOPE = 12.0
"""Steepness of the logistic curve that maps a retrieval score to 0..1 (0.5 at the FAQ's threshold)."""
RETRIEVAL_WEIGHT = 8.0
"""How far retrieval moves the model's FAQ mass between entries (see the module docstring)."""



@dataclass(frozen=True)
class Understanding:
    intent: str = ""
    """The best flow intent ("" when out of scope, or when a FAQ entry is the model's best label)."""
    intent_confidence: float = 0.0
    faq_id: str = ""
    """The best FAQ candidate when its score reaches FAQ_REPORTED (for logs; the dialog decides)."""
    faq_answer: str = ""
    faq_score: float = 0.0
    latency_ms: float = 0.0
    ranking: tuple[tuple[str, float], ...] = ()
    """Probabilities of the intents (not FAQ labels), best first."""
    faqs: tuple[FaqCandidate, ...] = field(default=())
    """The best FAQ entries with fused scores, best first."""

    def utterance(self, text: str, confidence: float) -> Utterance:
        """The dialog event for this turn."""
        return Utterance(text, confidence, self.intent, self.intent_confidence, self.faq_answer,
                         ranking=self.ranking, faqs=self.faqs)


def retrieval_probability(score: float, threshold: float) -> float:
    """A retrieval score as 0..1: one half at the threshold, towards 1 above it, towards 0 below."""
    return 1.0 / (1.0 + math.exp(-RETRIEVAL_SLOPE * (score - threshold)))


class Nlu:
    """An intent model and a FAQ index, loaded once per process and shared by every call."""

    def __init__(self, intents: IntentModel | None = None, faq: FaqIndex | None = None) -> None:
        self.intents = intents
        self.faq = faq

    @classmethod
    def load(cls, model_dir: str | Path | None = None, faq_path: str | Path | None = None) -> Nlu:
        """The shipped bank models by default (models/intents, dialog/flows/bank_faq.yaml)."""
        return cls(IntentModel.load(model_dir), load_faq(faq_path, encoder="auto"))

    def understand(self, text: str) -> Understanding:
        """What `text` may mean; a self-corrected turn by what follows the correction (`meaning_part`)."""
        t0 = time.perf_counter()
        text = meaning_part(text)
        intent, confidence = "", 0.0
        ranking: Ranking = ()
        model_faq: dict[str, float] | None = None
        vector = None
        if self.intents is not None:
            vector = self.intents.sentence_vector(text)
            probs = self.intents.probabilities(text, vector)
            labels = self.intents.labels
            order = np.argsort(-probs)
            ranking = tuple((labels[i], float(probs[i])) for i in order if not labels[i].startswith(FAQ_PREFIX))
            model_faq = {labels[i][len(FAQ_PREFIX):]: float(probs[i]) for i in order
                         if labels[i].startswith(FAQ_PREFIX)}  # {} for a model trained without FAQ labels
            result = self.intents.predict(text, sentence_vector=vector)
            intent, confidence = result.intent, result.confidence
        ranking, faqs = self._faq_candidates(text, ranking, model_faq, vector)
        best = faqs[0] if faqs and faqs[0].score >= FAQ_REPORTED else None
        return Understanding(intent, confidence, best.id if best else "", best.answer if best else "",
                             best.score if best else 0.0, (time.perf_counter() - t0) * 1000, ranking, faqs)

    def _faq_candidates(self, text: str, ranking: Ranking, model_faq: dict[str, float] | None,
                        vector: np.ndarray | None) -> tuple[Ranking, tuple[FaqCandidate, ...]]:
        """The ranking (less what an entry unknown to the model took from out of scope) and the best FAQ
        entries with their scores (see the module docstring). `model_faq`: the model's probability of each
        `faq:` label, None without an intent model."""
        if self.faq is None:
            return ranking, ()
        shared_vector = vector if self.faq.encoder is not None and self.intents is not None \
            and self.intents.encoder is self.faq.encoder and self.intents.encoder_input(text) == text else None
        hits = self.faq.rank(text, len(self.faq.entries), shared_vector)
        if model_faq is None:
            scores = {h.entry.id: retrieval_probability(h.score, self.faq.threshold) for h in hits}
        else:
            known = [h for h in hits if h.entry.id in model_faq]
            scores = {}
            if known:
                mass = sum(model_faq[h.entry.id] for h in known)
                logits = np.array([math.log(model_faq[h.entry.id] + 1e-9) + RETRIEVAL_WEIGHT * h.score for h in known])
                shares = np.exp(logits - logits.max())
                shares *= mass / shares.sum()
                scores = {h.entry.id: float(share) for h, share in zip(known, shares, strict=True)}
            unknown = next((h for h in hits if h.entry.id not in model_faq), None)
            if unknown is not None:
                ranking, scores[unknown.entry.id] = _take_from_out_of_scope(
                    ranking, retrieval_probability(unknown.score, self.faq.threshold))
        best = sorted(scores.items(), key=lambda item: -item[1])[:TOP_FAQS]
        return ranking, tuple(FaqCandidate(entry_id, round(score, 4), self.faq.by_id[entry_id].answer)
                              for entry_id, score in best)


def _take_from_out_of_scope(ranking: Ranking, share: float) -> tuple[Ranking, float]:
    """(the ranking with `share` of its out-of-scope probability taken away, the probability taken): what
    an entry the model does not know gets, so that the probabilities still add up to one."""
    taken = dict(ranking).get(OOS_LABEL, 0.0) * share
    moved = tuple(sorted(((label, p - taken if label == OOS_LABEL else p) for label, p in ranking),
                         key=lambda item: -item[1]))
    return moved, taken
