"""faster-whisper backend: buffers one turn, decodes it at finish() (no partials).

The model is loaded from a local CTranslate2 directory (`models.registry.whisper_model_dir`), never
from a model hub. One `WhisperRecognizer` is shared by all calls; CTranslate2 serialises or spreads
concurrent decodes itself, so separate streams may finish from separate threads.

Confidence of a transcript is the mean word probability (Whisper's per-word token probability);
with no words it is 0.0.

Phrase biasing (RecognitionOptions.phrases as faster-whisper `hotwords`) is off by default because it
hurts tiny.en: with the bank flow's 46 menu keywords as hotwords, WER on 15 IVR prompts went from 2.5%
to 6.7%, and spoken digits (FSDD) fell into loops ("one, one, one, ...", "bye bye, bye bye, ...").
`bias_vocabulary=True` turns it on (for larger models); `capabilities` then says "hotwords".
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import numpy as np

from asr._audio import mono_int16
from asr.base import AsrCapabilities, RecognitionOptions, RecognizerStream, SpeechRecognizer, Transcript, Word
from ivr.errors import IvrError, ModelMissingError
from ivr.resample import resample

log = logging.getLogger(__name__)

WHISPER_RATE_HZ = 16000
DEFAULT_BEAM_SIZE = 1
"""Greedy decoding. On 30 IVR prompts (8 kHz, 84 s) with tiny.en int8, 2 threads: beam 1 WER 4.1%,
RTF 0.13; beam 5 WER 3.2%, RTF 0.16. Latency matters more on a shared 2-core box."""
TEMPERATURES = (0.0,)
"""Temperature 0 only, no sampling fallback: the fallback made results differ between runs on the same
audio (and looped on short turns); a call should behave the same every time, in a bounded time."""
MAX_TOKENS_PER_S = 8
"""Cap on decoded tokens per second of audio (speech runs at 3-5): stops runaway repetition."""
MIN_MAX_TOKENS = 16
MAX_HOTWORDS_CHARS = 200
"""Whisper's prompt is limited; a long phrase list is cut to this many characters."""


class WhisperRecognizer(SpeechRecognizer):
    name = "whisper"
    capabilities = AsrCapabilities(streaming=False, partials=False, sample_rates_hz=(WHISPER_RATE_HZ,),
                                   vocabulary_biasing="hotwords")

    def __init__(self, model: str = "tiny.en", compute_type: str = "int8", cpu_threads: int = 0,
                 beam_size: int = DEFAULT_BEAM_SIZE, language: str = "en",
                 bias_vocabulary: bool = False) -> None:
        from models.registry import whisper_model_dir

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        path = whisper_model_dir(model or "tiny.en")
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise ModelMissingError("the Whisper backend needs faster-whisper: "
                                    "run `pip install faster-whisper`") from None
        t0 = time.perf_counter()
        try:
            self._model = WhisperModel(str(path), device="cpu", compute_type=compute_type,
                                       cpu_threads=cpu_threads, local_files_only=True)
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelMissingError(f"cannot load the Whisper model at {path} ({exc}): give a CTranslate2 "
                                    "Whisper model directory or use 'tiny.en'") from None
        log.info("whisper model %s loaded in %.2f s", path.name, time.perf_counter() - t0)
        self.model_path = path
        self.beam_size = beam_size
        self.language = language
        self.bias_vocabulary = bias_vocabulary
        """Pass expected phrases as hotwords. Off by default: on short 8 kHz answers tiny.en then invents
        words ("2 will be updated." for "two"; 10 of 12 spoken digits wrong, 0 of 12 without)."""
        self.capabilities = AsrCapabilities(streaming=False, partials=False, sample_rates_hz=(WHISPER_RATE_HZ,),
                                            vocabulary_biasing="hotwords" if bias_vocabulary else "")

    def stream(self, sample_rate_hz: int, options: RecognitionOptions | None = None) -> WhisperStream:
        if sample_rate_hz <= 0:
            raise IvrError(f"invalid sample rate {sample_rate_hz}")
        return WhisperStream(self, sample_rate_hz, options or RecognitionOptions())

    def transcribe(self, samples: np.ndarray, sample_rate_hz: int,
                   options: RecognitionOptions | None = None) -> Transcript:
        """A whole recording: int16 or float, mono or (n, channels), any rate."""
        return super().transcribe(mono_int16(samples), sample_rate_hz, options)

    def decode(self, audio_16k: np.ndarray, options: RecognitionOptions) -> Transcript:
        """float32 mono 16 kHz audio -> final transcript (blocking; run it off the event loop)."""
        if audio_16k.size == 0:
            return Transcript("", 0.0, (), True, options.language or self.language)
        language = options.language or self.language
        phrases = options.phrases if self.bias_vocabulary else ()
        hotwords = ", ".join(p.strip() for p in phrases if p.strip())[:MAX_HOTWORDS_CHARS] or None
        max_tokens = MIN_MAX_TOKENS + int(MAX_TOKENS_PER_S * audio_16k.size / WHISPER_RATE_HZ)
        segments, info = self._model.transcribe(
            audio_16k, language=language or None, beam_size=self.beam_size, temperature=list(TEMPERATURES),
            condition_on_previous_text=False, vad_filter=False, word_timestamps=True, hotwords=hotwords,
            max_new_tokens=max_tokens)
        duration_s = audio_16k.size / WHISPER_RATE_HZ
        texts: list[str] = []
        words: list[Word] = []
        for segment in segments:
            texts.append(segment.text.strip())
            words.extend(_words(segment, duration_s, words[-1].end_s if words else 0.0))
        text = " ".join(t for t in texts if t).strip()
        confidence = float(np.mean([w.confidence for w in words])) if words and text else 0.0
        detected = getattr(info, "language", "") or language
        return Transcript(text, confidence, tuple(words), True, detected)


def _words(segment: Any, duration_s: float, previous_end_s: float) -> list[Word]:
    """The segment's words with times clamped into [previous end, duration] so they never go back."""
    out = []
    last = previous_end_s
    for w in segment.words or ():
        text = w.word.strip()
        if not text:
            continue
        start = min(max(float(w.start), last), duration_s)
        end = min(max(float(w.end), start), duration_s)
        out.append(Word(text, round(start, 3), round(end, 3), float(w.probability)))
        last = end
    return out


class WhisperStream(RecognizerStream):
    """Collects PCM16 mono at the stream's rate; finish() resamples to 16 kHz and decodes."""

    def __init__(self, recognizer: WhisperRecognizer, sample_rate_hz: int,
                 options: RecognitionOptions) -> None:
        self._recognizer = recognizer
        self.sample_rate_hz = sample_rate_hz
        self._options = options
        self._chunks: list[bytes] = []
        self._done = False
        self._lock = threading.Lock()

    def accept(self, pcm: bytes) -> Transcript | None:
        if len(pcm) % 2:
            raise IvrError(f"PCM16 audio has an odd byte count ({len(pcm)})")
        with self._lock:
            if self._done:
                raise IvrError("whisper stream already finished")
            self._chunks.append(bytes(pcm))
        return None

    def finish(self) -> Transcript:
        with self._lock:
            if self._done:
                raise IvrError("whisper stream already finished")
            self._done = True
            pcm, self._chunks = b"".join(self._chunks), []
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.int16)
        samples = resample(samples, self.sample_rate_hz, WHISPER_RATE_HZ)
        audio = samples.astype(np.float32) / 32768.0
        return self._recognizer.decode(audio, self._options)
