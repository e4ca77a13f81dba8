"""Emotion in the caller's voice: telephone-band prosodic/spectral features and a small MLP.

The model (`models/emotion/acoustic-emotion.{json,npz}`, trained by `ivr train acoustic-emotion`) is
stored without pickle: feature standardisation and the weights of a few one-hidden-layer MLPs whose
probabilities are averaged. Classes: neutral, happy, sad, angry.

Trained on acted speech (RAVDESS, TESS) under non-commercial licenses: see models/emotion/MODEL_CARD.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dialog.emotion.features import extract
from dialog.emotion.text import default_model_dir
from ivr.errors import ModelMissingError

NEGATIVE_WEIGHTS = {"angry": 1.0, "sad": 0.3}
"""How much each class counts towards negativity."""


@dataclass(frozen=True)
class VoiceEmotion:
    label: str
    scores: dict[str, float]
    """Probability per class (they sum to 1)."""
    negativity: float
    """0 .. 1: mostly P(angry), a little of P(sad)."""
    audio_s: float


class AcousticEmotionModel:
    def __init__(self, model_dir: Path | None = None) -> None:
        model_dir = model_dir or default_model_dir()
        meta_path, weights_path = model_dir / "acoustic-emotion.json", model_dir / "acoustic-emotion.npz"
        if not meta_path.is_file() or not weights_path.is_file():
            raise ModelMissingError(f"acoustic emotion model not found in {model_dir}: run "
                                    "`ivr train acoustic-emotion --data ../shared/data/emotion`")
        meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        with np.load(weights_path, allow_pickle=False) as data:
            self._load(dict(data), meta)

    @classmethod
    def from_arrays(cls, arrays: dict[str, Any], meta: dict[str, Any]) -> AcousticEmotionModel:
        """A model from in-memory arrays (training and cross-validation)."""
        model = cls.__new__(cls)
        model._load(arrays, meta)
        return model

    def _load(self, data: dict[str, Any], meta: dict[str, Any]) -> None:
        self.meta = meta
        self.labels: tuple[str, ...] = tuple(meta["labels"])
        self._mean = np.asarray(data["mean"], dtype=np.float32)
        # models before feature version 2 have no column list: they read the first features
        self._columns = np.asarray(data["columns"] if "columns" in data else np.arange(self._mean.size),
                                   dtype=np.int64)
        self._scale = np.asarray(data["scale"], dtype=np.float32)
        self._layers = [[(np.asarray(data[f"m{m}_w{i}"], dtype=np.float32),
                          np.asarray(data[f"m{m}_b{i}"], dtype=np.float32))
                         for i in range(int(meta["layers"]))] for m in range(int(meta["members"]))]

    def probabilities_from_features(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities for one feature vector or a (n, features) matrix."""
        x = np.atleast_2d(features).astype(np.float32)
        x = (x[:, self._columns] - self._mean) / self._scale
        out = np.zeros((x.shape[0], len(self.labels)), dtype=np.float64)
        for layers in self._layers:
            h = x
            for i, (w, b) in enumerate(layers):
                h = h @ w + b
                if i < len(layers) - 1:
                    h = np.maximum(h, 0.0)
            h = h - h.max(axis=1, keepdims=True)
            e = np.exp(h)
            out += e / e.sum(axis=1, keepdims=True)
        return out / len(self._layers)

    def predict(self, samples: np.ndarray, sample_rate_hz: int) -> VoiceEmotion:
        """The emotion of one turn of caller audio (int16 or float, any rate)."""
        probs = self.probabilities_from_features(extract(samples, sample_rate_hz))[0]
        scores = {label: round(float(p), 4) for label, p in zip(self.labels, probs, strict=True)}
        negativity = min(1.0, sum(w * scores.get(k, 0.0) for k, w in NEGATIVE_WEIGHTS.items()))
        return VoiceEmotion(self.labels[int(np.argmax(probs))], scores, round(negativity, 4),
                            round(len(samples) / sample_rate_hz, 3))
