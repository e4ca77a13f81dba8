"""Emotion in the caller's words: VADER valence plus a TF-IDF linear classifier of Ekman emotions.

The classifier (trained on GoEmotions, see `ivr.train.emotion.train_text`) is stored without pickle:
`text-emotion.json` (labels, vocabulary, per-class decision thresholds, figures) and
`text-emotion.npz` (idf, weights, biases). Inference is a few lines of numpy, identical to the
scikit-learn pipeline it was trained with: sublinear tf, idf, l2 norm, one logistic unit per class.

Works on ASR output as well as on typed text: tokens are lower-case words and word pairs, and
punctuation is ignored by the classifier (VADER still uses it when it is there).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dialog.emotion.result import EmotionResult
from models.errors import ModelMissingError
from models.registry import bundled_dir

EKMAN_LABELS: tuple[str, ...] = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")
NEGATIVE_WEIGHTS = {"anger": 1.0, "disgust": 1.0, "sadness": 0.6, "fear": 0.5}
"""How much each emotion counts towards negativity (anger matters most on a service line)."""
VALENCE_WEIGHT = 0.4
"""Share of VADER's negative valence in the text negativity; the rest is the classifier's."""
_TOKEN_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

_INTENSIFIERS = (r"(?:(?:so|really|very|absolutely|extremely|bloody|seriously|totally|utterly|pretty|just|getting|now|"
                 r"beyond)\s+)*")
STATED_ANGER = re.compile(
    r"\b(?:i am|i'm|im|i feel|i'm feeling|i've been|i was|i get)\s+" + _INTENSIFIERS
    + r"(?:angry|furious|livid|fuming|outraged|irate|mad|annoyed|frustrated|fed up|sick and tired|disgusted|appalled|"
    r"incensed|raging|seething|cross|upset)\b"
    r"|\b(?:this|that|it|which|you|your service|your bank)\s*(?:is|was|'s|are|were)\s+(?:an?\s+)?"
    r"(?:(?:absolute|absolutely|complete|completely|total|totally|utter|utterly|bloody|just|so|really)\s+)*"
    r"(?:disgrace|disgraceful|outrageous|unacceptable|ridiculous|appalling|disgusting|pathetic|shambles|joke|scandal|"
    r"scandalous|useless|incompetent|shocking|rip[- ]?off|daylight robbery)\b")
"""The caller says they are angry ("I'm absolutely furious") or judges the service ("this is a disgrace")."""
STRONG_COMPLAINT = re.compile(
    r"\b(?:worst (?:service|bank|experience|customer service)|sick of|fed up with|had enough of|fobbed off|"
    r"ripped off|rip[- ]?off|(?:utterly|absolutely|completely) useless|how dare you|unacceptable|outrageous|"
    r"disgraceful|a disgrace)\b")
"""Complaint phrases that carry anger wherever they stand."""
STATED_NEGATIVITY = 0.85
COMPLAINT_NEGATIVITY = 0.7


def stated_anger(text: str) -> float:
    """A floor for the words' negativity when the caller says outright that they are angry (0.85) or uses a
    strong complaint phrase (0.7); 0 otherwise. The GoEmotions classifier, trained on Reddit comments, scores
    "I'm absolutely furious about it" at about 0.5: a caller who says so is upset, whatever else is said."""
    lowered = text.lower().replace("\u2019", "'")
    if STATED_ANGER.search(lowered):
        return STATED_NEGATIVITY
    if STRONG_COMPLAINT.search(lowered):
        return COMPLAINT_NEGATIVITY
    return 0.0


def tokens(text: str) -> list[str]:
    """Lower-case words and adjacent word pairs (the classifier's features)."""
    words = _TOKEN_RE.findall(text.lower().replace("\u2019", "'"))
    return words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]


def default_model_dir() -> Path:
    return bundled_dir("emotion")


def read_model(model_dir: Path, stem: str, train: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The metadata (`{stem}.json`) and arrays (`{stem}.npz`) of an emotion model stored without pickle;
    ModelMissingError naming `train`, the command that makes the model, when either file is missing."""
    meta_path, weights_path = model_dir / f"{stem}.json", model_dir / f"{stem}.npz"
    if not meta_path.is_file() or not weights_path.is_file():
        raise ModelMissingError(f"{stem.replace('-', ' ')} model not found in {model_dir}: run `{train}`")
    meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
    with np.load(weights_path, allow_pickle=False) as data:
        return meta, dict(data)


@dataclass(frozen=True)
class TextEmotion(EmotionResult):
    """The words' label is the most likely Ekman emotion; the scores are one logistic unit per Ekman emotion
    (they need not sum to 1); negativity weighs negative valence and the negative emotions."""

    valence: float
    """VADER compound score, -1 (very negative) .. 1 (very positive)."""


class TextEmotionModel:
    def __init__(self, model_dir: Path | None = None) -> None:
        meta, data = read_model(model_dir or default_model_dir(), "text-emotion",
                                "ivr train text-emotion --data ../shared/data/text/goemotions/ekman")
        self.meta = meta
        self.labels: tuple[str, ...] = tuple(meta["labels"])
        self._index = {term: i for i, term in enumerate(meta["vocabulary"])}
        self._idf = data["idf"].astype(np.float32)
        self._weights = data["weights"].astype(np.float32)
        self._bias = data["bias"].astype(np.float32)
        self._vader = _load_vader()

    def vectorize(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Sparse TF-IDF row as (indices, values)."""
        counts: dict[int, int] = {}
        for term in tokens(text):
            i = self._index.get(term)
            if i is not None:
                counts[i] = counts.get(i, 0) + 1
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        idx = np.fromiter(counts, dtype=np.int64, count=len(counts))
        tf = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float32, count=len(counts)))
        values = tf * self._idf[idx]
        return idx, values / np.linalg.norm(values)

    def probabilities(self, text: str) -> np.ndarray:
        idx, values = self.vectorize(text)
        logits = self._weights[:, idx] @ values + self._bias
        return 1.0 / (1.0 + np.exp(-logits))

    def predict(self, text: str) -> TextEmotion:
        probs = self.probabilities(text)
        scores = {label: round(float(p), 4) for label, p in zip(self.labels, probs, strict=True)}
        valence = float(self._vader.polarity_scores(text)["compound"]) if text.strip() else 0.0
        total = float(probs.sum()) or 1.0
        emotional = sum(w * scores.get(k, 0.0) for k, w in NEGATIVE_WEIGHTS.items()) / total
        negativity = VALENCE_WEIGHT * max(0.0, -valence) + (1.0 - VALENCE_WEIGHT) * min(1.0, emotional)
        stated = stated_anger(text)
        label = "anger" if stated > negativity and "anger" in self.labels else self.labels[int(np.argmax(probs))]
        return TextEmotion(label, scores, round(float(max(negativity, stated)), 4), valence=round(valence, 4))


def _load_vader() -> Any:
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError:
        raise ModelMissingError("VADER is not installed: run `pip install vadersentiment`") from None
    return SentimentIntensityAnalyzer()
