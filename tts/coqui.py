"""Coqui TTS (the `coqui-tts` package, on torch) with a model from local files. Optional extra."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from models.errors import ModelMissingError
from tts._audio import concatenate, float_to_int16
from tts.base import SpeechAudio, Synthesizer, TtsCapabilities
from tts.sentences import split_sentences

INSTALL_HINT = ("Coqui TTS is not installed: run `pip install torch==2.13.0` (the CPU build) first, "
                "then `pip install 'ivr-agent[coqui]'`")


class CoquiSynthesizer(Synthesizer):
    """A Coqui TTS model loaded from `model_path` (a checkpoint file or directory); never downloaded.

    `config_path` defaults to config.json beside the checkpoint. Calls are serialised with a lock:
    the Coqui synthesizer keeps per-call state on the shared model.
    """

    engine = "coqui"

    def __init__(self, model_path: str | Path, config_path: str | Path | None = None,
                 speaker: str | None = None, language: str | None = None) -> None:
        model = Path(model_path).expanduser()
        if not model.exists():
            raise ModelMissingError(f"Coqui TTS model not found at {model}: give the path of a local "
                                    "checkpoint (.pth) or model directory")
        base = model if model.is_dir() else model.parent
        config = Path(config_path).expanduser() if config_path is not None else base / "config.json"
        if not config.exists():
            raise ModelMissingError(f"Coqui TTS config not found at {config}: pass config_path")
        try:
            from TTS.utils.synthesizer import Synthesizer as CoquiEngine
        except ImportError:
            raise ModelMissingError(INSTALL_HINT) from None
        self._engine: Any = CoquiEngine(tts_checkpoint=str(model), tts_config_path=str(config),
                                        use_cuda=False)
        self._speaker = speaker
        self._language = language
        self._lock = threading.Lock()
        self.voice = model.stem if model.is_file() else model.name
        rate_hz = int(self._engine.output_sample_rate)
        self.capabilities = TtsCapabilities(sample_rate_hz=rate_hz, streaming=True)

    def synthesize(self, text: str) -> SpeechAudio:
        return concatenate(self.synthesize_stream(text), self.capabilities.sample_rate_hz)

    def synthesize_stream(self, text: str) -> Iterator[SpeechAudio]:
        for sentence in split_sentences(text):
            with self._lock:
                wav = self._engine.tts(text=sentence, speaker_name=self._speaker,
                                       language_name=self._language or "", split_sentences=False)
            yield SpeechAudio(float_to_int16(wav), self.capabilities.sample_rate_hz)
