"""The intent model at run time: numpy weights (.npz) and a JSON vocabulary, no pickle, no scikit-learn.

A model directory holds `intents.npz` (arrays `weights` [features x intents] float16, `bias`, `idf`)
and `intents.json` (labels, vocabulary in feature order, softmax temperature, the calibrated
out-of-scope threshold, training figures). Scores: sublinear TF-IDF of `text.ngram_features`,
L2-normalized, times the weights, plus the bias; probabilities are softmax(scores / temperature).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dialog.nlu.text import ngram_features, normalize_text
from ivr.errors import ModelMissingError

FORMAT_VERSION = 1
WEIGHTS_FILE = "intents.npz"
CONFIG_FILE = "intents.json"
OUT_OF_SCOPE = ""
"""The intent of an utterance the model does not recognise (below its out-of-scope threshold)."""
OOS_LABEL = "oos"
"""Training rows with this label teach the model what is out of scope; it never comes out as an intent."""


def default_model_dir() -> Path:
    """The bank flow's intent model shipped with the package."""
    return Path(__file__).resolve().parents[2] / "models" / "intents"


@dataclass(frozen=True)
class IntentResult:
    intent: str
    """The best intent, or OUT_OF_SCOPE ("") when its probability is below the out-of-scope threshold."""
    confidence: float
    """The calibrated probability of the best intent (also when it was judged out of scope)."""
    best: str
    """The best intent even when out of scope (for "did you mean ...?" and review)."""
    ranking: tuple[tuple[str, float], ...] = field(default=())
    """The top intents with their probabilities, best first."""


class IntentModel:
    """A loaded intent classifier; immutable, thread-safe, shared by every call."""

    def __init__(self, labels: list[str], vocab: list[str], weights: np.ndarray, bias: np.ndarray,
                 idf: np.ndarray, temperature: float = 1.0, oos_threshold: float = 0.0,
                 info: dict[str, Any] | None = None) -> None:
        if weights.shape != (len(vocab), len(labels)) or bias.shape != (len(labels),):
            raise ValueError("intent model arrays do not match its labels and vocabulary")
        self.labels = list(labels)
        self.vocab = {feature: i for i, feature in enumerate(vocab)}
        self.weights = np.asarray(weights, dtype=np.float32)
        self.bias = np.asarray(bias, dtype=np.float32)
        self.idf = np.asarray(idf, dtype=np.float32)
        self.temperature = float(temperature)
        self.oos_threshold = float(oos_threshold)
        self.info = dict(info or {})

    # --- inference

    def scores(self, text: str) -> np.ndarray:
        """Raw linear scores of the intents for one utterance."""
        counts = Counter(i for f in ngram_features(normalize_text(text)) if (i := self.vocab.get(f)) is not None)
        if not counts:
            return self.bias.copy()
        index = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        tf = np.fromiter((1.0 + math.log(c) for c in counts.values()), dtype=np.float32, count=len(counts))
        values = tf * self.idf[index]
        values /= max(float(np.linalg.norm(values)), 1e-12)
        result: np.ndarray = values @ self.weights[index] + self.bias
        return result

    def probabilities(self, text: str) -> np.ndarray:
        z = self.scores(text) / self.temperature
        z = np.exp(z - z.max())
        result: np.ndarray = z / z.sum()
        return result

    def predict(self, text: str, top: int = 3) -> IntentResult:
        probs = self.probabilities(text)
        order = np.argsort(-probs)[:top]
        ranking = tuple((self.labels[i], float(probs[i])) for i in order)
        best, confidence = ranking[0]
        intent = best if confidence >= self.oos_threshold and best != OOS_LABEL else OUT_OF_SCOPE
        return IntentResult(intent, confidence, best, ranking)

    # --- files

    def save(self, directory: str | Path) -> None:
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        vocab = sorted(self.vocab, key=self.vocab.__getitem__)
        np.savez_compressed(out / WEIGHTS_FILE, weights=self.weights.astype(np.float16),
                            bias=self.bias.astype(np.float32), idf=self.idf.astype(np.float16))
        config = {"format": FORMAT_VERSION, "labels": self.labels, "temperature": self.temperature,
                  "oos_threshold": self.oos_threshold, "info": self.info, "vocab": vocab}
        (out / CONFIG_FILE).write_text(json.dumps(config, ensure_ascii=False, separators=(",", ":")),
                                       encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path | None = None) -> IntentModel:
        folder = Path(directory) if directory else default_model_dir()
        config_path, weights_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
        if not config_path.is_file() or not weights_path.is_file():
            raise ModelMissingError(f"no intent model in {folder} ({CONFIG_FILE} and {WEIGHTS_FILE}): "
                                    "train one with `ivr train intents FILE.csv --out DIR`")
        config = json.loads(config_path.read_text(encoding="utf-8"))
        if config.get("format") != FORMAT_VERSION:
            raise ModelMissingError(f"{config_path}: intent model format {config.get('format')!r}, "
                                    f"expected {FORMAT_VERSION}: retrain it with `ivr train intents`")
        with np.load(weights_path, allow_pickle=False) as arrays:
            weights, bias, idf = arrays["weights"], arrays["bias"], arrays["idf"]
        return cls(config["labels"], config["vocab"], weights, bias, idf, config.get("temperature", 1.0),
                   config.get("oos_threshold", 0.0), config.get("info"))
