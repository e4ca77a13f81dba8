"""Emotion in the caller's voice: telephone-band prosodic/spectral features and a small MLP.

The model (`models/emotion/acoustic-emotion.{json,npz}`, trained by `ivr train acoustic-emotion`) is
stored without pickle: feature standardisation and the weights of a few one-hidden-layer MLPs whose
probabilities are averaged. Classes: neutral, happy, sad, angry. The model records the feature version
it was trained on (`meta["feature_version"]`); loading one made for other features than
`dialog.emotion.features` extracts raises ModelMissingError (retrain it), since its weights would
read the wrong features without a sign (EmotionAnalyzer then logs a warning and goes on without the
voice).

Out-of-distribution turns: the model also stores the statistics of its human training speakers'
features (mean, scale, and the inverse of a Ledoit-Wolf shrunk covariance). A turn's OOD score is its
Mahalanobis distance from them (root mean square over the features, so about 1 for a training clip),
and `meta["ood"]` holds two thresholds calibrated on speakers held out of the statistics (the 95th
and 99.5th percentiles of their clips' distances). Below `low` the voice counts fully; between `low`
and `high` its weight falls linearly to 0; at or beyond `high` the voice abstains (weight 0) and
fusion relies on the words. A voice far from every training speaker (a synthetic voice, an odd line)
is thus not judged by a model that never heard anything like it.

Trained on acted speech (RAVDESS, TESS) under non-commercial licenses: see models/emotion/MODEL_CARD.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dialog.emotion.features import FEATURE_VERSION, Resampler, extract
from dialog.emotion.result import EmotionResult
from dialog.emotion.text import default_model_dir, read_model
from models.errors import ModelMissingError

TRAIN_COMMAND = "ivr train acoustic-emotion --data ../shared/data/emotion"
NEGATIVE_WEIGHTS = {"angry": 1.0, "sad": 0.3}
"""How much each class counts towards negativity."""


@dataclass(frozen=True)
class VoiceEmotion(EmotionResult):
    """The voice's scores sum to 1; its negativity is mostly P(angry), a little of P(sad)."""

    audio_s: float
    ood: float | None = None
    """Mahalanobis distance of the turn's features from the human training speakers' (None: no stats)."""
    weight: float = 1.0
    """How much the voice counts in fusion: 1 in distribution, falling to 0 (abstains) out of it."""


def ood_distance(x: np.ndarray, mean: np.ndarray, scale: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Mahalanobis distance of each row of `x` (the model's columns) from the statistics (mean, scale,
    precision of the standardised features), divided by the feature count under the root."""
    z = (x - mean) / scale
    return np.asarray(np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", z, precision, z), 0.0) / z.shape[1]))


def voice_weight(distance: np.ndarray, low: float, high: float) -> np.ndarray:
    """1 up to `low`, linearly down to 0 at `high` and beyond (elementwise)."""
    return np.asarray(np.clip((high - distance) / (high - low), 0.0, 1.0))


class AcousticEmotionModel:
    def __init__(self, model_dir: Path | None = None, resample: Resampler | None = None) -> None:
        self.resample = resample
        """Brings a turn at another rate to the features' 8 kHz (given by the application)."""
        model_dir = model_dir or default_model_dir()
        meta, data = read_model(model_dir, "acoustic-emotion", TRAIN_COMMAND)
        if meta.get("feature_version") != FEATURE_VERSION:
            # the weights would read features they were not trained on: wrong emotions, silently
            raise ModelMissingError(f"{model_dir / 'acoustic-emotion.json'}: the acoustic emotion model was "
                                    f"trained on features {meta.get('feature_version')!r}, this code extracts "
                                    f"{FEATURE_VERSION!r}: retrain it with `{TRAIN_COMMAND}`")
        self._load(data, meta)

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
        self._ood: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        ood_meta = meta.get("ood")
        if ood_meta and "ood_precision" in data:
            self._ood = (np.asarray(data["ood_mean"], dtype=np.float32),
                         np.asarray(data["ood_scale"], dtype=np.float32),
                         np.asarray(data["ood_precision"], dtype=np.float32))
            self.ood_low, self.ood_high = float(ood_meta["low"]), float(ood_meta["high"])
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

    def ood_distance(self, features: np.ndarray) -> np.ndarray | None:
        """Mahalanobis distance (per feature, RMS-like) of each row from the training speakers; None: no stats."""
        if self._ood is None:
            return None
        mean, scale, precision = self._ood
        return ood_distance(np.atleast_2d(features).astype(np.float32)[:, self._columns], mean, scale, precision)

    def voice_weight(self, distance: float | None) -> float:
        """1 up to the calibrated `low`, linearly down to 0 at `high` (the voice abstains beyond)."""
        if distance is None or self._ood is None:
            return 1.0
        return float(voice_weight(np.asarray(distance), self.ood_low, self.ood_high))

    def predict(self, samples: np.ndarray, sample_rate_hz: int) -> VoiceEmotion:
        """The emotion of one turn of caller audio (int16 or float, any rate)."""
        features = extract(samples, sample_rate_hz, self.resample)
        probs = self.probabilities_from_features(features)[0]
        distance = self.ood_distance(features)
        ood = None if distance is None else float(distance[0])
        scores = {label: round(float(p), 4) for label, p in zip(self.labels, probs, strict=True)}
        negativity = min(1.0, sum(w * scores.get(k, 0.0) for k, w in NEGATIVE_WEIGHTS.items()))
        return VoiceEmotion(self.labels[int(np.argmax(probs))], scores, round(negativity, 4),
                            round(len(samples) / sample_rate_hz, 3),
                            None if ood is None else round(ood, 3), round(self.voice_weight(ood), 4))
