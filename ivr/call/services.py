"""What every call of a process shares: models loaded once (prewarmed) and the call flow."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.base import SpeechRecognizer
from dialog.emotion.analyzer import EmotionAnalyzer
from dialog.machine import Machine
from dialog.nlu.understand import Nlu
from ivr.config import AgentConfig
from models.errors import AgentError
from telephony.audio.resample import resample
from tts.base import Synthesizer

log = logging.getLogger(__name__)


@dataclass
class Services:
    config: AgentConfig
    recognizer: SpeechRecognizer
    synthesizer: Synthesizer
    machine: Machine
    fallback_synthesizer: Synthesizer | None = None
    load_s: float = 0.0
    nlu: Nlu | None = None
    """Intents and FAQ for caller turns (dialog.nlu); None: keywords, regex and digits only."""
    emotion: EmotionAnalyzer | None = None
    """Voice and text emotion for caller turns (dialog.emotion); None: the flow sees no emotion."""

    @classmethod
    def load(cls, config: AgentConfig, prewarm: bool = True) -> Services:
        """Load the flow first (cheap, catches mistakes early), then the models, then warm them up."""
        from asr.factory import load_recognizer
        from dialog.flow import load_default_flow, load_flow
        from ivr.call.recognition import whisper_settings
        from tts.factory import load_synthesizer

        t0 = time.perf_counter()
        flow = load_flow(Path(config.flow)) if config.flow else load_default_flow()
        machine = Machine(flow)
        recognizer = load_recognizer(config.asr_backend, config.asr_model, **whisper_settings(config.asr))
        if config.asr_fallback:
            from asr.factory import FallbackRecognizer
            backend, _, model = config.asr_fallback.partition(":")
            recognizer = FallbackRecognizer(recognizer, load_recognizer(backend, model))
        cache_dir = Path(config.tts_cache_dir).expanduser() if config.tts_cache_dir else None
        synthesizer = load_synthesizer(config.tts_engine, config.tts_voice, cache_dir=cache_dir)
        fallback = None
        if config.tts_engine != "espeak-ng":
            try:
                fallback = load_synthesizer("espeak-ng", "")
            except AgentError:
                log.warning("no fallback TTS: espeak-ng is not installed (apt-get install espeak-ng)")
        services = cls(config, recognizer, synthesizer, machine, fallback, nlu=Nlu.load(),
                       emotion=EmotionAnalyzer.load(resample=resample))
        if prewarm:
            services.prewarm()
        services.load_s = time.perf_counter() - t0
        return services

    def prewarm(self) -> None:
        """One tiny inference per model, so the first caller does not pay for lazy initialisation."""
        silence = np.zeros(8000, dtype=np.int16)
        self.recognizer.transcribe(silence, 16000)
        voice = getattr(self.synthesizer, "inner", self.synthesizer)  # past the prompt cache, to the model
        voice.synthesize("Hello.")
        if self.nlu is not None:
            self.nlu.understand("hello")
        if self.emotion is not None:
            self.emotion.prewarm()
