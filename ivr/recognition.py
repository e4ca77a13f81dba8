"""One caller turn through a recognizer stream, on the call's ASR lane (one thread, in order)."""

from __future__ import annotations

import threading
from concurrent.futures import Executor

from asr.base import RecognitionOptions, RecognizerStream, SpeechRecognizer, Transcript
from ivr.clock import Clock
from ivr.work import Work


class TurnRecognition:
    """Opens a stream at the start of speech, feeds it as audio arrives, finishes at end of turn.

    Every step runs on `lane` (a single worker thread), so the audio path never waits for the model.
    Partial transcripts collect in `partials` for the session to log.
    """

    def __init__(self, recognizer: SpeechRecognizer, lane: Executor, clock: Clock,
                 sample_rate_hz: int, options: RecognitionOptions) -> None:
        self._recognizer = recognizer
        self._lane = lane
        self._clock = clock
        self._stream: RecognizerStream | None = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._partials: list[Transcript] = []
        self.result: Work[Transcript] | None = None
        self.received: list[Transcript] = []
        """Final transcripts polled from `result` so far (the session's side)."""
        lane.submit(self._open, sample_rate_hz, options)

    def _open(self, sample_rate_hz: int, options: RecognitionOptions) -> None:
        try:
            self._stream = self._recognizer.stream(sample_rate_hz, options)
        except BaseException as exc:  # noqa: BLE001 - reported at finish()
            self._error = exc

    def _accept(self, pcm: bytes) -> None:
        if self._stream is None or self._error is not None:
            return
        try:
            partial = self._stream.accept(pcm)
        except BaseException as exc:  # noqa: BLE001
            self._error = exc
            return
        if partial is not None and partial.text:
            with self._lock:
                self._partials.append(partial)

    def feed(self, pcm: bytes) -> None:
        if pcm:
            self._lane.submit(self._accept, pcm)

    def take_partials(self) -> list[Transcript]:
        with self._lock:
            out, self._partials = self._partials, []
        return out

    def finish(self) -> Work[Transcript]:
        def produce(emit: object) -> None:
            if self._error is not None:
                raise self._error
            assert self._stream is not None
            emit(self._stream.finish())  # type: ignore[operator]

        self.result = Work(self._lane, self._clock, produce, name="asr")
        return self.result
