"""Vosk (Kaldi) backend: true streaming with partial results, optional closed-grammar biasing.

Models load once per process (cached by path) and are shared by all calls; each stream owns its
KaldiRecognizer. Phrases in RecognitionOptions become a grammar when the model supports one (models
with a runtime graph: graph/HCLr.fst + graph/Gr.fst); words outside the model's vocabulary are left
out, and when nothing usable is left, or the model has a static graph, recognition is free.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from asr._audio import mono_int16
from asr.base import AsrCapabilities, RecognitionOptions, RecognizerStream, SpeechRecognizer, Transcript, Word
from asr.errors import AsrError
from asr.grammar import DIGIT_WORDS
from models.errors import ModelMissingError

log = logging.getLogger(__name__)

INSTALL_VOSK = "pip install 'ivr-agent[vosk]'"
UNKNOWN_WORD = "[unk]"
"""Grammar entry that absorbs out-of-grammar speech, when the model's vocabulary has it."""

_MODELS: dict[Path, Any] = {}
_MODELS_LOCK = threading.Lock()


def _import_vosk() -> Any:
    try:
        import vosk
    except ImportError:
        raise ModelMissingError(f"the Vosk backend needs the vosk package: run `{INSTALL_VOSK}`") from None
    vosk.SetLogLevel(-1)
    return vosk


def load_vosk_model(path: Path) -> Any:
    """The vosk.Model at path, loaded once per process."""
    vosk = _import_vosk()
    key = path.resolve()
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            try:
                model = vosk.Model(model_path=str(key))
            except Exception as exc:  # vosk raises a bare Exception for a bad directory
                raise ModelMissingError(f"cannot load the Vosk model at {key} ({exc}): give the directory "
                                        "of an unpacked Vosk model (with am/ and conf/)") from None
            _MODELS[key] = model
        return model


def supports_grammar(model_dir: Path) -> bool:
    """Runtime-graph models (small ones) take a grammar; static HCLG graphs (big ones) do not."""
    graph = model_dir / "graph"
    return (graph / "HCLr.fst").exists() and (graph / "Gr.fst").exists() and not (graph / "HCLG.fst").exists()


class VoskRecognizer(SpeechRecognizer):
    name = "vosk"
    capabilities = AsrCapabilities(streaming=True, partials=True, sample_rates_hz=(8000, 16000),
                                   vocabulary_biasing="grammar")

    def __init__(self, model_dir: str = "ko") -> None:
        from models.registry import vosk_model_dir

        self.model_dir = vosk_model_dir(model_dir or "ko")
        self._vosk = _import_vosk()
        self._model = load_vosk_model(self.model_dir)
        self.grammar_supported = supports_grammar(self.model_dir)
        self._unk_known = self._model.vosk_model_find_word(UNKNOWN_WORD) >= 0

    def grammar(self, phrases: tuple[str, ...]) -> list[str] | None:
        """The grammar for these phrases, or None for free recognition (with a warning saying why)."""
        if not phrases:
            return None
        if not self.grammar_supported:
            log.warning("vosk model %s has a static graph: phrase biasing is off", self.model_dir.name)
            return None
        usable = [p.strip() for p in phrases
                  if p.strip() and all(self._model.vosk_model_find_word(w) >= 0 for w in p.split())]
        if len(usable) < len(phrases):
            log.warning("vosk: %d of %d phrases have words outside the model's vocabulary; left out",
                        len(phrases) - len(usable), len(phrases))
        if not usable:
            return None
        return usable + [UNKNOWN_WORD] if self._unk_known else usable

    def stream(self, sample_rate_hz: int, options: RecognitionOptions | None = None) -> VoskStream:
        if sample_rate_hz <= 0:
            raise AsrError(f"invalid sample rate {sample_rate_hz}")
        options = options or RecognitionOptions()
        phrases = options.phrases
        if options.expect == "digits":  # a digit string, or one of the phrases (the flow's global choices)
            phrases = (*DIGIT_WORDS, *phrases) if phrases else ()
        grammar = self.grammar(phrases)
        recognizer = None
        if grammar is not None:
            try:
                recognizer = self._vosk.KaldiRecognizer(self._model, float(sample_rate_hz),
                                                        json.dumps(grammar, ensure_ascii=False))
            except Exception as exc:  # a model that rejects the grammar: recognize freely instead
                log.warning("vosk grammar rejected (%s); recognizing without it", type(exc).__name__)
        if recognizer is None:
            recognizer = self._vosk.KaldiRecognizer(self._model, float(sample_rate_hz))
        recognizer.SetWords(True)
        return VoskStream(recognizer, sample_rate_hz)

    def transcribe(self, samples: np.ndarray, sample_rate_hz: int,
                   options: RecognitionOptions | None = None) -> Transcript:
        """A whole recording: int16 or float, mono or (n, channels), any rate."""
        return super().transcribe(mono_int16(samples), sample_rate_hz, options)


class VoskStream(RecognizerStream):
    """Feeds a KaldiRecognizer; segments Vosk closes at its own endpoints are joined at finish()."""

    def __init__(self, recognizer: Any, sample_rate_hz: int) -> None:
        self._rec = recognizer
        self.sample_rate_hz = sample_rate_hz
        self._segments: list[dict[str, Any]] = []
        self._done = False

    def _committed_text(self) -> str:
        return " ".join(s.get("text", "") for s in self._segments if s.get("text"))

    def accept(self, pcm: bytes) -> Transcript | None:
        if self._done:
            raise AsrError("vosk stream already finished")
        if len(pcm) % 2:
            raise AsrError(f"PCM16 audio has an odd byte count ({len(pcm)})")
        if not pcm:
            return None
        if self._rec.AcceptWaveform(pcm):
            self._segments.append(json.loads(self._rec.Result()))
            current = ""
        else:
            current = json.loads(self._rec.PartialResult()).get("partial", "")
        text = " ".join(t for t in (self._committed_text(), current) if t)
        return Transcript(text, 0.0, (), is_final=False) if text else None

    def finish(self) -> Transcript:
        if self._done:
            raise AsrError("vosk stream already finished")
        self._done = True
        self._segments.append(json.loads(self._rec.FinalResult()))
        words = tuple(Word(str(w["word"]), float(w["start"]), float(w["end"]), float(w.get("conf", 1.0)))
                      for s in self._segments for w in s.get("result", ()))
        text = self._committed_text().strip()
        confidence = float(np.mean([w.confidence for w in words])) if words and text else 0.0
        return Transcript(text, confidence, words, is_final=True)
