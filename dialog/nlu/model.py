"""The intent model at run time: numpy weights (.npz) and a JSON vocabulary, no pickle, no scikit-learn.

A model directory holds `intents.npz` (arrays `weights` [features x intents] float16, `bias`, `idf`)
and `intents.json` (labels, vocabulary in feature order, softmax temperature, the calibrated
out-of-scope threshold, training figures). Scores: sublinear TF-IDF of `text.ngram_features`,
L2-normalized, times the weights, plus the bias; probabilities are softmax(scores / temperature).

Optional embedding backend: `intents_embed.npz` (`weights` [384 x intents] float16, `bias`) and an
`embed` object in `intents.json` (temperature, blend, out-of-scope threshold) add a linear head over
the all-MiniLM-L6-v2 sentence vector (`dialog.nlu.embed`). When that encoder's package is installed
the probabilities are (1 - blend) * TF-IDF probabilities + blend * head probabilities, with the
head's own out-of-scope threshold; else (or with IVR_NLU_BACKEND=tfidf) the TF-IDF model runs alone.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dialog.nlu.text import ngram_features, normalize_text
from models.errors import ModelMissingError
from models.registry import bundled_dir

FORMAT_VERSION = 1
WEIGHTS_FILE = "intents.npz"
CONFIG_FILE = "intents.json"
EMBED_FILE = "intents_embed.npz"
BACKEND_ENV = "IVR_NLU_BACKEND"
"""`tfidf` keeps a model with an embedding head on its TF-IDF part alone (the encoder is not loaded)."""
BACKENDS = ("tfidf", "embed", "ensemble")
log = logging.getLogger(__name__)
OUT_OF_SCOPE = ""
"""The intent of an utterance the model does not recognise (below its out-of-scope threshold)."""
OOS_LABEL = "oos"
"""Training rows with this label teach the model what is out of scope; it never comes out as an intent."""
FAQ_PREFIX = "faq:"
"""Labels `faq:<id>` are FAQ entries the model learned (from the FAQ file and mapped data): `dialog.nlu.understand`
turns them into FAQ candidates, never into intents."""


def default_model_dir() -> Path:
    """The bank flow's intent model shipped with the package."""
    return bundled_dir("intents")


@dataclass(frozen=True)
class IntentResult:
    intent: str
    """The best intent, or OUT_OF_SCOPE ("") when its probability is below the out-of-scope threshold or
    the best label is out of scope or a FAQ entry."""
    confidence: float
    """The calibrated probability of the best intent (also when it was judged out of scope)."""
    best: str
    """The best intent even when out of scope (for "did you mean ...?" and review)."""
    ranking: tuple[tuple[str, float], ...] = field(default=())
    """The top intents with their probabilities, best first."""


def softmax(z: np.ndarray) -> np.ndarray:
    """Softmax over the last axis."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    result: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return result


@dataclass
class EmbeddingHead:
    """A linear classifier over the sentence vector and how its probabilities join the TF-IDF ones."""

    weights: np.ndarray
    """[vector size x intents]"""
    bias: np.ndarray
    temperature: float = 1.0
    blend: float = 1.0
    """Share of the head's probabilities (1: the head alone, the `embed` backend)."""
    oos_threshold: float = 0.0
    """The out-of-scope threshold of the blended probabilities."""
    normalize: bool = False
    """Whether the encoder sees `normalize_text` output rather than the text as given."""

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """Probabilities [n x intents] of sentence vectors [n x size]."""
        return softmax((vectors @ self.weights + self.bias) / self.temperature)

    def config(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "blend": self.blend, "oos_threshold": self.oos_threshold,
                "normalize": self.normalize, "encoder": "sentence-transformers/all-MiniLM-L6-v2"}


class IntentModel:
    """A loaded intent classifier; immutable, thread-safe, shared by every call."""

    def __init__(self, labels: list[str], vocab: list[str], weights: np.ndarray, bias: np.ndarray,
                 idf: np.ndarray, temperature: float = 1.0, oos_threshold: float = 0.0,
                 info: dict[str, Any] | None = None, embed: EmbeddingHead | None = None,
                 encoder: Any = None) -> None:
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
        if embed is not None and embed.weights.shape[1] != len(labels):
            raise ValueError("the embedding head does not match the intent model's labels")
        self.embed = embed
        self.encoder = encoder if embed is not None else None
        """The sentence encoder (`dialog.nlu.embed.SentenceEncoder`) when the head is in use."""

    @property
    def backend(self) -> str:
        """`tfidf`, `embed` (the head alone) or `ensemble`: what `predict` runs."""
        if self.embed is None or self.encoder is None:
            return "tfidf"
        return "embed" if self.embed.blend >= 1.0 else "ensemble"

    @property
    def threshold(self) -> float:
        """The out-of-scope threshold of the backend in use."""
        return self.embed.oos_threshold if self.embed is not None and self.encoder is not None \
            else self.oos_threshold

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

    def tfidf_probabilities(self, text: str) -> np.ndarray:
        return softmax(self.scores(text) / self.temperature)

    def encoder_input(self, text: str) -> str:
        return normalize_text(text) if self.embed is not None and self.embed.normalize else text

    def sentence_vector(self, text: str) -> np.ndarray | None:
        """The encoder's vector of `text` as the head sees it; None when the head is not in use."""
        if self.embed is None or self.encoder is None:
            return None
        vector: np.ndarray = self.encoder.encode([self.encoder_input(text)])[0]
        return vector

    def probabilities(self, text: str, sentence_vector: np.ndarray | None = None) -> np.ndarray:
        """Probabilities of every label; `sentence_vector`: `self.sentence_vector(text)` if already known."""
        if self.embed is None or self.encoder is None:
            return self.tfidf_probabilities(text)
        if sentence_vector is None:
            sentence_vector = self.sentence_vector(text)
        head = self.embed.probabilities(np.asarray(sentence_vector)[None, :])[0]
        if self.embed.blend >= 1.0:
            return head
        result: np.ndarray = (1.0 - self.embed.blend) * self.tfidf_probabilities(text) + self.embed.blend * head
        return result

    def predict(self, text: str, top: int = 3, sentence_vector: np.ndarray | None = None) -> IntentResult:
        probs = self.probabilities(text, sentence_vector)
        order = np.argsort(-probs)[:top]
        ranking = tuple((self.labels[i], float(probs[i])) for i in order)
        best, confidence = ranking[0]
        in_flow = best != OOS_LABEL and not best.startswith(FAQ_PREFIX)
        intent = best if confidence >= self.threshold and in_flow else OUT_OF_SCOPE
        return IntentResult(intent, confidence, best, ranking)

    # --- files

    def save(self, directory: str | Path) -> None:
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        vocab = sorted(self.vocab, key=self.vocab.__getitem__)
        np.savez_compressed(out / WEIGHTS_FILE, weights=self.weights.astype(np.float16),
                            bias=self.bias.astype(np.float32), idf=self.idf.astype(np.float16))
        config: dict[str, Any] = {"format": FORMAT_VERSION, "labels": self.labels,
                                  "temperature": self.temperature, "oos_threshold": self.oos_threshold,
                                  "info": self.info}
        if self.embed is not None:
            np.savez_compressed(out / EMBED_FILE, weights=self.embed.weights.astype(np.float16),
                                bias=self.embed.bias.astype(np.float32))
            config["embed"] = self.embed.config()
        elif (out / EMBED_FILE).exists():
            (out / EMBED_FILE).unlink()
        config["vocab"] = vocab
        (out / CONFIG_FILE).write_text(json.dumps(config, ensure_ascii=False, separators=(",", ":")),
                                       encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path | None = None, backend: str | None = None) -> IntentModel:
        """The model in `directory` (default: the shipped bank model). `backend`: `tfidf` leaves an
        embedding head unused; None or another value uses it when the encoder's package is
        installed (IVR_NLU_BACKEND=tfidf in the environment does the same as `tfidf`)."""
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
        embed, encoder = None, None
        backend = backend or os.environ.get(BACKEND_ENV, "")
        if isinstance(config.get("embed"), dict) and (folder / EMBED_FILE).is_file() and backend != "tfidf":
            head = config["embed"]
            with np.load(folder / EMBED_FILE, allow_pickle=False) as arrays:
                embed = EmbeddingHead(arrays["weights"].astype(np.float32), arrays["bias"].astype(np.float32),
                                      float(head["temperature"]), float(head["blend"]),
                                      float(head["oos_threshold"]), bool(head.get("normalize", False)))
            from dialog.nlu.embed import shared_encoder
            from models.encoder import INSTALL_HINT

            try:
                encoder = shared_encoder()
            except ModelMissingError:
                log.info("%s: the sentence encoder is not installed (%s): TF-IDF intents only",
                            folder, INSTALL_HINT)
                embed = None
        return cls(config["labels"], config["vocab"], weights, bias, idf, config.get("temperature", 1.0),
                   config.get("oos_threshold", 0.0), config.get("info"), embed, encoder)
