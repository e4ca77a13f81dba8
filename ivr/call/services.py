"""What every call of a process shares: models loaded once (prewarmed) and the call flow."""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from asr.base import SpeechRecognizer
from dialog.emotion.analyzer import EmotionAnalyzer
from dialog.machine import Machine
from dialog.nlu.understand import Nlu
from ivr.config import AgentConfig
from models.errors import AgentError
from telephony.audio.resample import resample
from tts.base import Synthesizer

if TYPE_CHECKING:
    from ivr.infer.client import InferenceClient
    from tts.cache import PromptCache

log = logging.getLogger(__name__)


PRESYNTHESIS_EXIT_WAIT_S = 30.0
"""At exit, how long the process waits for the prompt being synthesized ahead of calls (one sentence)."""
INFERENCE_WAIT_S = 180.0
"""How long a worker waits for the shared inference service to answer at start (it may be loading)."""


def fallback_voice() -> Synthesizer | None:
    """espeak-ng, the voice a call falls back to when its own fails (None, with a warning, when not installed)."""
    from tts.factory import load_synthesizer

    try:
        return load_synthesizer("espeak-ng", "")
    except AgentError:
        log.warning("no fallback TTS: espeak-ng is not installed (apt-get install espeak-ng)")
        return None


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
    inference: InferenceClient | None = None
    """The shared inference service's client when the models are there (`remote`), else None."""

    @classmethod
    def load(cls, config: AgentConfig, prewarm: bool = True, presynthesize: bool = False,
             inference: str = "", asr_workers: int = 1) -> Services:
        """Load the flow first (cheap, catches mistakes early), then the models, then warm them up;
        `presynthesize`: fill the prompt cache with the flow's fixed prompts, in the background at a low
        priority (the calls that come first are answered meanwhile; the cache lasts across runs).
        `inference`: the socket of a shared inference service (`ivr infer`) that holds the models instead;
        `asr_workers`: Whisper decodes at once (the inference service decodes several workers' turns)."""
        if inference:
            return cls.remote(config, inference)
        from asr.factory import load_recognizer
        from dialog.flow import load_default_flow, load_flow
        from ivr.call.recognition import whisper_settings
        from tts.factory import load_synthesizer

        t0 = time.perf_counter()
        flow = load_flow(Path(config.flow)) if config.flow else load_default_flow()
        machine = Machine(flow)
        recognizer = load_recognizer(config.asr_backend, config.asr_model, workers=asr_workers,
                                     **whisper_settings(config.asr))
        if config.asr_fallback:
            from asr.factory import FallbackRecognizer
            backend, _, model = config.asr_fallback.partition(":")
            recognizer = FallbackRecognizer(recognizer, load_recognizer(backend, model))
        cache_dir = Path(config.tts_cache_dir).expanduser() if config.tts_cache_dir else None
        synthesizer = load_synthesizer(config.tts_engine, config.tts_voice, cache_dir=cache_dir)
        fallback = fallback_voice() if config.tts_engine != "espeak-ng" else None
        services = cls(config, recognizer, synthesizer, machine, fallback, nlu=Nlu.load(),
                       emotion=EmotionAnalyzer.load(resample=resample))
        if prewarm:
            services.prewarm()
        if presynthesize:
            services._presynthesize_in_background()
        services.load_s = time.perf_counter() - t0
        return services

    @classmethod
    def remote(cls, config: AgentConfig, socket_path: str) -> Services:
        """The flow here, the models in the inference service at `socket_path` (waited for while it
        starts); espeak-ng stays local as the fallback voice, for when the service is gone."""
        from dialog.flow import load_default_flow, load_flow
        from ivr.infer.client import InferenceClient, RemoteEmotion, RemoteNlu, RemoteRecognizer, RemoteSynthesizer

        t0 = time.perf_counter()
        flow = load_flow(Path(config.flow)) if config.flow else load_default_flow()
        client = InferenceClient(socket_path)
        hello = client.connect(timeout_s=INFERENCE_WAIT_S)
        services = cls(config, RemoteRecognizer(client, hello), RemoteSynthesizer(client, hello), Machine(flow),
                       fallback_voice(), nlu=RemoteNlu(client) if hello.nlu else None,
                       emotion=RemoteEmotion(client) if hello.emotion else None, inference=client)
        services.warm_matching()  # the models are warm in the service; the matching is done here
        services.load_s = time.perf_counter() - t0
        return services

    def presynthesize(self, stop: threading.Event | None = None) -> int:
        """Synthesize every fixed prompt of the flow (and the FAQ's answers) into the prompt cache now, so
        no caller waits for them; returns how many sentences were synthesized (0 without a cache, and for
        sentences already cached)."""
        from dialog.flow import spoken_texts
        from tts.cache import CachedSynthesizer
        from tts.sentences import split_sentences

        synth = self.synthesizer
        if not isinstance(synth, CachedSynthesizer):
            return 0
        texts = spoken_texts(self.machine.flow)
        if self.nlu is not None and self.nlu.faq is not None:
            texts += [entry.answer for entry in self.nlu.faq.entries]
        made = 0
        for sentence in (sentence for text in texts for sentence in split_sentences(text)):
            if stop is not None and stop.is_set():
                break
            made += synth.store(sentence)
        return made

    def _presynthesize_in_background(self) -> None:
        """presynthesize() on a low-priority thread that the process stops and waits for when it exits
        (a voice model still running at interpreter shutdown aborts the process). Nothing without a cache."""
        from tts.cache import CachedSynthesizer

        if not isinstance(self.synthesizer, CachedSynthesizer):
            return
        stop = threading.Event()
        thread = threading.Thread(target=self._presynthesize_quietly, args=(self.synthesizer.cache, stop),
                                  name="presynthesize", daemon=True)
        thread.start()

        def finish() -> None:
            stop.set()
            thread.join(PRESYNTHESIS_EXIT_WAIT_S)

        atexit.register(finish)

    def _presynthesize_quietly(self, cache: PromptCache, stop: threading.Event) -> None:
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)  # this thread only (Linux)
        try:
            with open(cache.directory / ".presynthesis.lock", "w") as lock:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    return  # another process (a worker beside this one) is filling the same cache
                made = self.presynthesize(stop)
        except Exception as exc:  # noqa: BLE001 - a prompt left out is synthesized when first said
            log.warning("prompt synthesis ahead of calls stopped: %s", type(exc).__name__)
            return
        if made:
            log.info("synthesized %d prompt sentences into the cache", made)

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
        self.warm_matching()

    def warm_matching(self) -> None:
        """The flow's keywords phonemized for matching by sound (asr.phonetic), before the first turn."""
        if self.config.asr.phonetic:
            from ivr.call.recognition import warm_matchers

            warm_matchers(self.machine.flow)
