"""Stand-ins that tests share: backends that fail as a crashed one would, and a recognizer and a diarizer
that need no model where a test checks what is done with their output, not the recognition itself."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from asr.base import AsrCapabilities, RecognitionOptions, RecognizerStream, SpeechRecognizer, Transcript, Word
from asr.diarize.base import Diarizer, Segment
from tts.base import SpeechAudio, Synthesizer, TtsCapabilities

if TYPE_CHECKING:
    from ivr.infer.admission import Admission
    from ivr.infer.server import InferenceService

BACKEND_DOWN = "backend down"


class BrokenStream(RecognizerStream):
    def __init__(self, fail_on: str = "finish") -> None:
        self.fail_on = fail_on

    def accept(self, pcm: bytes) -> Transcript | None:
        if self.fail_on == "accept":
            raise RuntimeError(BACKEND_DOWN)
        return None

    def finish(self) -> Transcript:
        raise RuntimeError(BACKEND_DOWN)


class BrokenRecognizer(SpeechRecognizer):
    """A recognizer whose every decode fails, as a crashed backend would: at `fail_on` ("stream": opening
    a stream, "accept": feeding it audio, "finish": the end of the utterance)."""

    name = "broken"
    capabilities = AsrCapabilities(streaming=False, partials=False)

    def __init__(self, fail_on: str = "finish") -> None:
        self.fail_on = fail_on

    def stream(self, sample_rate_hz: int, options: RecognitionOptions | None = None) -> RecognizerStream:
        if self.fail_on == "stream":
            raise RuntimeError(BACKEND_DOWN)
        return BrokenStream(self.fail_on)


class BrokenSynthesizer(Synthesizer):
    """A voice that crashes on every text."""

    engine = "broken"
    capabilities = TtsCapabilities(sample_rate_hz=16000)

    def synthesize(self, text: str) -> SpeechAudio:
        raise RuntimeError("voice crashed")


class CannedRecognizer(SpeechRecognizer):
    """Hears every piece of audio as `text` (formatted with the piece's `seconds`), confidence 0.9, its first
    word timed at 0.0-0.3 s; whole pieces only (`transcribe`), no streams."""

    name = "canned"

    def __init__(self, text: str = "hello there") -> None:
        self.text = text

    def stream(self, sample_rate_hz: int,
               options: RecognitionOptions | None = None) -> RecognizerStream:  # pragma: no cover - not used
        raise NotImplementedError

    def transcribe(self, samples: np.ndarray, sample_rate_hz: int,
                   options: RecognitionOptions | None = None) -> Transcript:
        text = self.text.format(seconds=len(samples) / sample_rate_hz)
        return Transcript(text, 0.9, (Word(text.split()[0], 0.0, 0.3, 0.9),))


class _TimedStream(RecognizerStream):
    def __init__(self, owner: TimedRecognizer) -> None:
        self._owner = owner
        self._bytes = 0

    def accept(self, pcm: bytes) -> Transcript | None:
        self._bytes += len(pcm)
        return None

    def finish(self) -> Transcript:
        time.sleep(self._owner.delay_s)  # a decode takes time, paid on the call's clock
        self._owner.decoded_s.append(self._bytes / 2 / 16000)
        return Transcript(self._owner.text, 0.95, words=tuple(
            Word(w, 0.0, 0.0, self._owner.word_confidence) for w in self._owner.text.split()))


class TimedRecognizer(SpeechRecognizer):
    """Streams that say the same words for any audio after a fixed decode time, recording how much audio each
    decode had: for tests of when the session ends a turn, not of recognition."""

    name = "timed"
    capabilities = AsrCapabilities(streaming=False, partials=False)

    def __init__(self, text: str, delay_s: float = 0.05, word_confidence: float = 0.95) -> None:
        self.text, self.delay_s, self.word_confidence = text, delay_s, word_confidence
        self.decoded_s: list[float] = []

    def stream(self, sample_rate_hz: int, options: RecognitionOptions | None = None) -> RecognizerStream:
        return _TimedStream(self)

    def transcribe(self, samples: np.ndarray, sample_rate_hz: int,
                   options: RecognitionOptions | None = None) -> Transcript:
        return Transcript(self.text, 0.95)


class HalvesDiarizer(Diarizer):
    """First half one speaker (A), second half the other (B)."""

    name = "halves"

    def diarize(self, samples: np.ndarray, sample_rate_hz: int, num_speakers: int | None = 2) -> list[Segment]:
        half = len(samples) / sample_rate_hz / 2
        return [Segment(0.0, half, "A"), Segment(half, 2 * half, "B")]


@contextlib.contextmanager
def canned_inference(socket_path: Path, text: str, threads: int = 2,
                     admission: Admission | None = None) -> Iterator[InferenceService]:
    """An in-process inference service over a canned recognizer (and espeak-ng), serving on `socket_path`
    until the block ends."""
    from dialog.flow import load_default_flow
    from dialog.machine import Machine
    from ivr.call.services import Services
    from ivr.config import AgentConfig
    from ivr.infer.server import InferenceService
    from tts.factory import load_synthesizer

    services = Services(AgentConfig(), CannedRecognizer(text), load_synthesizer("espeak-ng", ""),
                        Machine(load_default_flow()))
    service = InferenceService(services, socket_path, threads=threads, admission=admission)
    stop = threading.Event()
    thread = threading.Thread(target=service.serve, args=(stop,), daemon=True)
    thread.start()
    try:
        yield service
    finally:
        stop.set()
        thread.join(5)
