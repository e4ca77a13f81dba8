"""Simulated callers' voices: Piper or espeak-ng with each scenario's settings, cached on disk.

Each distinct voice is loaded once per suite run (lazily: a rerun whose turns are all cached loads
none). A caller turn's audio is stored under the cache directory, keyed by the voice settings and the
text, at the engine's own rate, so a rerun of a suite synthesizes nothing it said before. Both engines
are deterministic (Piper's noise is seeded by the text), so a cached turn is what synthesis would give.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np

from ivr.convtest.scenario import VoiceSpec
from telephony.audio.resample import resample
from tts._audio import concatenate
from tts.base import SpeechAudio, Synthesizer
from tts.cache import PromptCache

CACHE_VERSION = 1
"""Part of every cache key: raise it when the way caller audio is made changes."""
ESPEAK_WORDS_PER_MINUTE = 175
DEFAULT_CACHE_DIR = Path("~/.cache/ivr/caller-turns")


class CallerVoices:
    """Speaks caller turns with the voice a scenario asks for; safe to share between threads."""

    def __init__(self, cache_dir: Path | None = None, default_piper: Synthesizer | None = None) -> None:
        """`default_piper`: an already loaded Piper voice with default settings (the agent's), reused for
        callers with `voice: piper` and no other setting instead of loading the model again."""
        self._cache = PromptCache(cache_dir) if cache_dir is not None else None
        self._synths: dict[VoiceSpec, Synthesizer] = {}
        if default_piper is not None:
            self._synths[VoiceSpec()] = default_piper
        self._lock = threading.Lock()
        self.synthesized = 0
        """Turns synthesized (not found in the cache) in this run."""
        self.cached = 0
        """Turns found in the cache in this run."""

    def check(self, voice: VoiceSpec) -> None:
        """Loads the voice now (an unknown espeak-ng variant fails here, before any call)."""
        self._synth(voice)

    def speak(self, voice: VoiceSpec, text: str, rate_hz: int) -> np.ndarray:
        """int16 mono audio of `text` at `rate_hz`."""
        audio = self.audio(voice, text)
        return resample(audio.samples.astype(np.int16, copy=False), audio.sample_rate_hz, rate_hz)

    def audio(self, voice: VoiceSpec, text: str) -> SpeechAudio:
        """The text spoken at the engine's own rate, from the cache when it was said before."""
        key = PromptCache.key(voice.engine, _settings(voice), text, 0)
        if self._cache is not None:
            cached = self._cache.get(key)
            if cached is not None:
                with self._lock:
                    self.cached += 1
                return cached
        synth = self._synth(voice)
        audio = concatenate(synth.synthesize_stream(text), synth.capabilities.sample_rate_hz)
        with self._lock:
            self.synthesized += 1
        if self._cache is not None:
            self._cache.put(key, audio)
        return audio

    def _synth(self, voice: VoiceSpec) -> Synthesizer:
        with self._lock:
            synth = self._synths.get(voice)
            if synth is None:
                synth = self._synths[voice] = load_caller_voice(voice)
            return synth


def load_caller_voice(voice: VoiceSpec) -> Synthesizer:
    if voice.engine == "piper":
        from tts.piper_tts import PiperSynthesizer
        return PiperSynthesizer(length_scale=1.0 / voice.speed, noise_scale=voice.noise_scale)
    from tts.espeak import EspeakSynthesizer
    return EspeakSynthesizer(voice.variant or "en-us", words_per_minute=round(ESPEAK_WORDS_PER_MINUTE * voice.speed))


def _settings(voice: VoiceSpec) -> str:
    return json.dumps({"v": CACHE_VERSION, "variant": voice.variant, "speed": voice.speed,
                       "noise_scale": voice.noise_scale}, sort_keys=True)
