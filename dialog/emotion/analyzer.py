"""The emotion models a process shares: voice (acoustic) and words (text), fused per turn.

Loaded once per process (`Services.load`), used by every call: `voice()` runs on a call's emotion
lane on the turn's audio, `text()` after ASR (a sparse dot product and VADER: well under a
millisecond), `fuse()` weighs them (dialog.emotion.fusion). Either model may be absent.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from dialog.emotion.acoustic import AcousticEmotionModel, VoiceEmotion
from dialog.emotion.features import Resampler
from dialog.emotion.fusion import FusionWeights, TurnEmotion, fuse
from dialog.emotion.text import TextEmotion, TextEmotionModel
from models.errors import AgentError

log = logging.getLogger(__name__)

MIN_VOICE_S = 0.3
"""Shorter turns (a cough, "yes") carry too little voice to judge."""


class EmotionAnalyzer:
    def __init__(self, acoustic: AcousticEmotionModel | None, text: TextEmotionModel | None,
                 weights: FusionWeights | None = None) -> None:
        self.acoustic = acoustic
        self.text_model = text
        self.weights = weights or FusionWeights()

    @classmethod
    def load(cls, model_dir: Path | None = None, resample: Resampler | None = None) -> EmotionAnalyzer | None:
        """Both models from `model_dir` (default: the shipped ones); None when neither loads. `resample`:
        for voice turns at another rate than 8 kHz."""
        acoustic: AcousticEmotionModel | None = None
        text: TextEmotionModel | None = None
        try:
            acoustic = AcousticEmotionModel(model_dir, resample)
        except AgentError as exc:
            log.warning("no acoustic emotion: %s", exc)
        try:
            text = TextEmotionModel(model_dir)
        except AgentError as exc:
            log.warning("no text emotion: %s", exc)
        if acoustic is None and text is None:
            return None
        return cls(acoustic, text)

    def voice(self, samples: np.ndarray, sample_rate_hz: int) -> VoiceEmotion | None:
        if self.acoustic is None or len(samples) < MIN_VOICE_S * sample_rate_hz:
            return None
        return self.acoustic.predict(samples, sample_rate_hz)

    def text(self, text: str) -> TextEmotion | None:
        if self.text_model is None or not text.strip():
            return None
        return self.text_model.predict(text)

    def fuse(self, voice: VoiceEmotion | None, text: TextEmotion | None) -> TurnEmotion:
        return fuse(voice, text, self.weights)

    def prewarm(self) -> None:
        rng = np.random.default_rng(0)
        rate_hz = 16000 if self.acoustic is not None and self.acoustic.resample is not None else 8000
        self.voice((rng.standard_normal(rate_hz) * 1000).astype(np.int16), rate_hz)
        self.text("hello")
