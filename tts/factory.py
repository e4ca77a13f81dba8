"""Building a synthesizer from configuration, importing only the chosen backend."""

from __future__ import annotations

from pathlib import Path

from tts.base import Synthesizer
from tts.errors import TtsError

ENGINES = ("piper", "espeak-ng", "coqui")
_ALIASES = {"espeak": "espeak-ng"}


def load_synthesizer(engine: str = "piper", voice: str = "",
                     cache_dir: str | Path | None = None) -> Synthesizer:
    """A loaded synthesizer; `voice` "" picks the engine's default (coqui needs a model path).

    With `cache_dir`, sentences are cached on disk (see tts.cache.CachedSynthesizer).
    """
    name = _ALIASES.get(engine.strip().lower(), engine.strip().lower())
    synth: Synthesizer
    if name == "piper":
        from tts.piper_tts import DEFAULT_VOICE, PiperSynthesizer
        synth = PiperSynthesizer(voice or DEFAULT_VOICE)
    elif name == "espeak-ng":
        from tts.espeak import EspeakSynthesizer
        synth = EspeakSynthesizer(voice or "en-us")
    elif name == "coqui":
        if not voice:
            raise TtsError("the coqui engine needs a voice: the path of a local Coqui TTS model")
        from tts.coqui import CoquiSynthesizer
        synth = CoquiSynthesizer(voice)
    else:
        raise TtsError(f"unknown TTS engine '{engine}': choose one of {', '.join(ENGINES)}")
    if cache_dir is not None:
        from tts.cache import CachedSynthesizer, PromptCache
        synth = CachedSynthesizer(synth, PromptCache(cache_dir))
    return synth
