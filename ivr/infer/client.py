"""A worker's side of the shared inference service: one connection, and proxies with the models' interfaces.

`InferenceClient` multiplexes the worker's calls over one connection (a reader thread hands each reply to
its request). When the service is gone every waiting request fails at once with `InferenceUnavailable`,
and the next request reconnects (at most every RECONNECT_S, failing fast in between), so a caller hears
the fallback of a failed model at once, never dead air.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import Client, Connection
from pathlib import Path
from typing import Any

import numpy as np

from asr.base import RecognitionOptions, RecognizerStream, SpeechRecognizer, Transcript
from dialog.emotion.acoustic import VoiceEmotion
from dialog.emotion.analyzer import EmotionAnalyzer
from dialog.emotion.text import TextEmotion
from dialog.nlu.understand import Nlu, Understanding
from ivr.infer import KEY_SUFFIX, Hello
from models.errors import AgentError
from tts._audio import concatenate
from tts.base import SpeechAudio, Synthesizer

log = logging.getLogger(__name__)

RECONNECT_S = 0.5
"""After a failed connect, requests fail at once for this long before the next try."""
BUDGET_S = {"asr": 0.5, "tts": 0.5, "nlu": 0.05, "emotion.voice": 0.5, "emotion.text": 0.1, "hello": 0.0,
            "stats": 0.0, "admit": 0.0, "release": 0.0, "reply": 0.0}
"""Each op's deadline after its arrival at the service (the scheduler's order), in seconds. A turn's voice
emotion has its transcript's budget: the session holds the transcript until the voice result is in."""
TIMEOUT_S = {"asr": 20.0, "tts": 20.0, "nlu": 5.0, "emotion.voice": 10.0, "emotion.text": 5.0, "hello": 5.0,
             "stats": 5.0, "admit": 0.5, "release": 0.5, "reply": 0.5}
"""How long a worker waits for an answer before it gives up on the service."""


class InferenceUnavailable(AgentError):
    """The shared inference service did not answer (not running, gone, or too slow)."""


class InferenceClient:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._pending: dict[int, queue.SimpleQueue[tuple[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._failed_at = 0.0
        self.hello: Hello | None = None
        self.reconnects = 0

    # ---- the connection -----------------------------------------------------------------------------

    def _connect(self) -> Connection:
        """The live connection, or a new one (under the lock)."""
        if self._conn is not None:
            return self._conn
        if time.monotonic() - self._failed_at < RECONNECT_S:
            raise InferenceUnavailable(f"the inference service at {self.path} is not answering")
        try:
            key = Path(str(self.path) + KEY_SUFFIX).read_bytes()
            conn = Client(str(self.path), family="AF_UNIX", authkey=key)
        except (OSError, EOFError) as exc:
            self._failed_at = time.monotonic()
            raise InferenceUnavailable(f"no inference service at {self.path} ({exc})") from None
        if self.hello is not None:
            self.reconnects += 1
            log.warning("inference: reconnected to %s", self.path)
        self._conn = conn
        threading.Thread(target=self._read, args=(conn,), name="infer-replies", daemon=True).start()
        return conn

    def _read(self, conn: Connection) -> None:
        while True:
            try:
                request_id, kind, value = conn.recv()
            except (EOFError, OSError, ValueError, TypeError):
                break
            with self._lock:
                waiting = self._pending.get(request_id)
            if waiting is not None:
                waiting.put((kind, value))
        with self._lock:
            if self._conn is conn:
                self._conn = None
                self._failed_at = time.monotonic()
            lost, self._pending = self._pending, {}
        with contextlib.suppress(OSError):
            conn.close()
        if lost:
            log.warning("inference: the service went away with %d request(s) waiting", len(lost))
        for waiting in lost.values():
            waiting.put(("error", "InferenceUnavailable: the service went away"))

    def _send(self, op: str, args: tuple[Any, ...]) -> tuple[int, queue.SimpleQueue[tuple[str, Any]]]:
        answers: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        with self._lock:
            conn = self._connect()
            request_id = next(self._ids)
            self._pending[request_id] = answers
            try:
                conn.send((request_id, op, BUDGET_S[op], args))
            except (OSError, ValueError) as exc:
                self._pending.pop(request_id, None)
                self._conn = None
                self._failed_at = time.monotonic()
                raise InferenceUnavailable(f"the inference service went away ({exc})") from None
        return request_id, answers

    def _answers(self, op: str, request_id: int, answers: queue.SimpleQueue[tuple[str, Any]]) -> Iterator[Any]:
        """The request's chunks, then its final value; raises InferenceUnavailable on an error or a timeout."""
        try:
            while True:
                try:
                    kind, value = answers.get(timeout=TIMEOUT_S[op])
                except queue.Empty:
                    raise InferenceUnavailable(f"the inference service gave no answer to {op} in "
                                               f"{TIMEOUT_S[op]:.0f} s") from None
                if kind == "error":
                    raise InferenceUnavailable(f"inference {op}: {value}")
                yield kind, value
                if kind == "done":
                    return
        finally:
            with self._lock:
                self._pending.pop(request_id, None)

    # ---- requests -----------------------------------------------------------------------------------

    def call(self, op: str, *args: Any) -> Any:
        """One request, its final value."""
        request_id, answers = self._send(op, args)
        for kind, value in self._answers(op, request_id, answers):
            if kind == "done":
                return value
        raise InferenceUnavailable(f"inference {op}: no answer")

    def stream(self, op: str, *args: Any) -> Iterator[Any]:
        """One streaming request: its chunks as they come."""
        request_id, answers = self._send(op, args)
        for kind, value in self._answers(op, request_id, answers):
            if kind == "chunk":
                yield value

    # ---- the machine's admission (ivr.infer.admission) -----------------------------------------------

    def admit(self, call: str, budget_ms: float) -> str | None:
        """Asks the machine to take `call`: None to answer it, or why not. A service that cannot be asked
        (gone, or too slow to answer in half a second) refuses nothing: the worker's own rules still hold,
        and its readiness already tells the front that its models are gone."""
        try:
            return self.call("admit", call, float(budget_ms))
        except InferenceUnavailable as exc:
            log.warning("admission: the inference service could not be asked (%s); the call is answered", exc)
            return None

    def tell(self, op: str, *args: Any) -> None:
        """A one-way note to the service (release, reply): sent, its answer not waited for, a failure ignored."""
        try:
            request_id, _ = self._send(op, args)
        except InferenceUnavailable:
            return
        with self._lock:
            self._pending.pop(request_id, None)

    def connect(self, timeout_s: float = 0.0) -> Hello:
        """Connects (retrying for up to `timeout_s` while the service starts) and returns what it holds."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                hello = self.call("hello")
                self.hello = hello
                return hello
            except InferenceUnavailable:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(RECONNECT_S)

    def available(self) -> bool:
        """Whether the service can be reached now (connects when needed; fails fast while it is down)."""
        try:
            with self._lock:
                self._connect()
        except InferenceUnavailable:
            return False
        return True

    def close(self) -> None:
        """Ends the connection: shut down first, so that the reader thread blocked on it wakes and the
        service sees the worker go (and frees its admitted calls)."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(OSError, ValueError):
                socket.socket(fileno=os.dup(conn.fileno())).shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                conn.close()


# ---- the proxies --------------------------------------------------------------------------------------

class RemoteRecognizer(SpeechRecognizer):
    """Whisper (or Vosk) in the service: a turn's audio is sent whole when the stream finishes."""

    def __init__(self, client: InferenceClient, hello: Hello) -> None:
        self.client = client
        self.name = hello.asr_name
        self.capabilities = hello.asr_capabilities

    def stream(self, sample_rate_hz: int, options: RecognitionOptions | None = None) -> RecognizerStream:
        return _RemoteStream(self.client, sample_rate_hz, options)

    def transcribe(self, samples: np.ndarray, sample_rate_hz: int,
                   options: RecognitionOptions | None = None) -> Transcript:
        pcm = np.asarray(samples, dtype="<i2").tobytes()
        return self.client.call("asr", pcm, sample_rate_hz, options)


class _RemoteStream(RecognizerStream):
    def __init__(self, client: InferenceClient, sample_rate_hz: int, options: RecognitionOptions | None) -> None:
        self._client = client
        self._rate = sample_rate_hz
        self._options = options
        self._pcm: list[bytes] = []

    def accept(self, pcm: bytes) -> Transcript | None:
        self._pcm.append(pcm)
        return None

    def finish(self) -> Transcript:
        return self._client.call("asr", b"".join(self._pcm), self._rate,
                                 self._options)


class RemoteSynthesizer(Synthesizer):
    """The service's voice (with its prompt cache, shared by every worker): pieces stream back as made."""

    def __init__(self, client: InferenceClient, hello: Hello) -> None:
        self.client = client
        self.engine = hello.tts_engine
        self.voice = hello.tts_voice
        self.capabilities = hello.tts_capabilities

    def synthesize(self, text: str) -> SpeechAudio:
        return concatenate(self.synthesize_stream(text), self.capabilities.sample_rate_hz)

    def synthesize_stream(self, text: str) -> Iterator[SpeechAudio]:
        yield from self.client.stream("tts", text)


class RemoteEmotion(EmotionAnalyzer):
    """Voice and text emotion in the service, fused here; without the service a turn has no emotion."""

    def __init__(self, client: InferenceClient) -> None:
        super().__init__(None, None)
        self.client = client

    def voice(self, samples: np.ndarray, sample_rate_hz: int) -> VoiceEmotion | None:
        return self.client.call("emotion.voice", np.asarray(samples), sample_rate_hz)

    def text(self, text: str) -> TextEmotion | None:
        try:
            return self.client.call("emotion.text", text)
        except InferenceUnavailable as exc:
            log.warning("no text emotion for this turn: %s", exc)
            return None

    def prewarm(self) -> None:
        pass


class RemoteNlu(Nlu):
    """Intents and FAQ in the service; without the service a turn is understood by the flow's keywords."""

    def __init__(self, client: InferenceClient) -> None:
        super().__init__(None, None)
        self.client = client

    def understand(self, text: str) -> Understanding:
        try:
            return self.client.call("nlu", text)
        except InferenceUnavailable as exc:
            log.warning("no NLU for this turn (keywords only): %s", exc)
            return Understanding()
