"""Recognizers by name, imported lazily, and a fallback adapter that tries a second backend."""

from __future__ import annotations

import logging
import os

from asr.base import RecognitionOptions, RecognizerStream, SpeechRecognizer, Transcript
from asr.bias import BiasSettings
from asr.errors import AsrError
from models.errors import ModelMissingError

log = logging.getLogger(__name__)

BACKENDS = ("whisper", "vosk")


def load_recognizer(backend: str = "whisper", model: str = "", window_s: float = 30.0,
                    bias: BiasSettings | None = None, workers: int = 1) -> SpeechRecognizer:
    """Load a recognizer: 'whisper' (model: 'tiny.en', 'base' or a CTranslate2 directory) or 'vosk'
    (model: a Vosk model directory or 'ko'). An empty model picks the backend's packaged default.
    `window_s` and `bias` tune Whisper (asr.whisper, asr.bias); `workers`: how many Whisper decodes may run
    at once (each on its share of the cores; 1: one at a time on all of them). Vosk has no use for them."""
    key = (backend or "whisper").strip().lower()
    if key == "whisper":
        from asr.whisper import WhisperRecognizer

        threads = max(1, (os.cpu_count() or 1) // workers) if workers > 1 else 0
        return WhisperRecognizer(model or "tiny.en", window_s=window_s, bias=bias, workers=workers,
                                 cpu_threads=threads)
    if key == "vosk":
        try:
            import vosk  # noqa: F401 - only checks that the optional extra is installed
        except ImportError:
            raise ModelMissingError("the Vosk backend is not installed: run `pip install 'ivr-agent[vosk]'`") \
                from None
        from asr.vosk_asr import VoskRecognizer

        return VoskRecognizer(model or "ko")
    raise AsrError(f"unknown ASR backend '{backend}': choose one of {', '.join(BACKENDS)}")


class FallbackRecognizer(SpeechRecognizer):
    """Uses `primary`; when it fails on an utterance, that utterance is recognized by `secondary`.

    Audio is kept for the utterance so the secondary can be given all of it, from the start.
    """

    name = "fallback"

    def __init__(self, primary: SpeechRecognizer, secondary: SpeechRecognizer) -> None:
        self.primary = primary
        self.secondary = secondary
        self.capabilities = primary.capabilities

    def stream(self, sample_rate_hz: int, options: RecognitionOptions | None = None) -> RecognizerStream:
        return _FallbackStream(self, sample_rate_hz, options)


class _FallbackStream(RecognizerStream):
    def __init__(self, owner: FallbackRecognizer, sample_rate_hz: int, options: RecognitionOptions | None) -> None:
        self._owner = owner
        self._rate_hz = sample_rate_hz
        self._options = options
        self._audio: list[bytes] = []
        self._stream: RecognizerStream | None = None
        self._failed = False
        try:
            self._stream = owner.primary.stream(sample_rate_hz, options)
        except Exception as exc:
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        log.warning("ASR %s failed (%s); using %s for this utterance",
                    self._owner.primary.name, type(exc).__name__, self._owner.secondary.name)
        self._failed = True
        self._stream = None

    def accept(self, pcm: bytes) -> Transcript | None:
        self._audio.append(bytes(pcm))
        if self._stream is None:
            return None
        try:
            return self._stream.accept(pcm)
        except Exception as exc:
            self._fail(exc)
            return None

    def finish(self) -> Transcript:
        if self._stream is not None:
            try:
                return self._stream.finish()
            except Exception as exc:
                self._fail(exc)
        second = self._owner.secondary.stream(self._rate_hz, self._options)
        second.accept(b"".join(self._audio))
        return second.finish()
