"""The inference service: the models loaded once, every worker's requests served nearest deadline first.

Wire format (pickled tuples over `multiprocessing.connection` on a unix socket, after its HMAC handshake):
- request: (request id, op, budget in seconds, args);
- replies: (request id, "chunk", value) any number of times for a streaming op, then (request id, "done",
  value), or (request id, "error", "TypeName: message").
A request's deadline is its arrival plus its budget; the scheduler's threads always take the job with the
nearest deadline, so a caller turn waiting for its transcript goes before a presynthesis, and a few
milliseconds of NLU before a long decode of another call. Admission's ops (admit, release, reply: the
machine's calls, ivr.infer.admission) are answered on the connection's thread at once, never queued.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import secrets
import socket
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing import AuthenticationError
from multiprocessing.connection import Connection, answer_challenge, deliver_challenge
from pathlib import Path
from typing import Any

import numpy as np

from asr.base import AsrCapabilities
from ivr.call.services import Services
from ivr.errors import IvrError
from ivr.infer import KEY_SUFFIX, Hello
from ivr.infer.admission import Admission

log = logging.getLogger(__name__)

MAX_PEERS = 64
"""Connections served at once; more are closed at once (a worker holds one)."""
HANDSHAKE_TIMEOUT_S = 2.0
WAITS_KEPT = 2000
"""Queue waits remembered for the service's figures (the most recent ones)."""


class Peer:
    """One worker's connection: replies from several scheduler threads are sent under one lock."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._lock = threading.Lock()
        self.closed = False

    def send(self, message: tuple[Any, ...]) -> None:
        with self._lock:
            if self.closed:
                return
            try:
                self.conn.send(message)
            except (OSError, ValueError):
                self.closed = True

    def close(self) -> None:
        with self._lock:
            self.closed = True
            with contextlib.suppress(OSError):
                self.conn.close()


@dataclass(order=True)
class Job:
    deadline: float
    seq: int
    op: str = field(compare=False)
    args: tuple[Any, ...] = field(compare=False)
    peer: Peer = field(compare=False)
    request_id: int = field(compare=False)
    arrived: float = field(compare=False)


SHORT_OPS = frozenset({"nlu", "emotion.text", "emotion.voice", "hello", "stats"})
"""Requests of a few to a few tens of milliseconds on a turn's critical path (the transcript waits for its
voice emotion, the reply for the NLU). Besides the shared threads, one thread of their own serves only them,
so they never wait behind a decode: at 12 calls the NLU (deadline 50 ms) waited p95 211 ms for a thread and
voice emotion 665 ms, while the decodes held both."""


class Scheduler:
    """Jobs on `threads` threads, the nearest deadline first, plus one thread for SHORT_OPS only (`short_lane`)."""

    def __init__(self, run: Callable[[Job], None], threads: int, short_lane: bool = True) -> None:
        self._run = run
        self._heap: list[Job] = []
        self._short: list[Job] = []
        self._ready = threading.Condition()
        self._stopped = False
        self._seq = itertools.count()
        self.waits_ms: deque[float] = deque(maxlen=WAITS_KEPT)
        self.served: Counter[str] = Counter()
        self.waits_by_op: defaultdict[str, deque[float]] = defaultdict(lambda: deque(maxlen=WAITS_KEPT))
        self.busy_s: defaultdict[str, float] = defaultdict(float)
        """Seconds of work done per op (the threads' time on each job, waits left out)."""
        self._threads = [threading.Thread(target=self._loop, args=(False,), name=f"infer-{i}", daemon=True)
                         for i in range(threads)]
        if short_lane:
            self._threads.append(threading.Thread(target=self._loop, args=(True,), name="infer-short", daemon=True))
        for thread in self._threads:
            thread.start()

    def submit(self, op: str, args: tuple[Any, ...], budget_s: float, peer: Peer, request_id: int) -> None:
        now = time.monotonic()
        with self._ready:
            heap = self._short if op in SHORT_OPS else self._heap
            heapq.heappush(heap, Job(now + budget_s, next(self._seq), op, args, peer, request_id, now))
            self._ready.notify_all()  # the short lane's thread may be the one to take it

    def queued(self) -> int:
        with self._ready:
            return len(self._heap) + len(self._short)

    def stop(self) -> None:
        with self._ready:
            self._stopped = True
            self._ready.notify_all()

    def _next(self, short_only: bool) -> Job | None:
        """The nearest-deadline job this thread may take (under the lock), or None."""
        if short_only or not self._heap:
            return heapq.heappop(self._short) if self._short else None
        if self._short and self._short[0] < self._heap[0]:
            return heapq.heappop(self._short)
        return heapq.heappop(self._heap)

    def _loop(self, short_only: bool) -> None:
        while True:
            with self._ready:
                while not self._stopped and (job := self._next(short_only)) is None:
                    self._ready.wait()
                if self._stopped:
                    return
            assert job is not None
            waited_ms = (time.monotonic() - job.arrived) * 1000.0
            self.waits_ms.append(waited_ms)
            self.waits_by_op[job.op].append(waited_ms)
            self.served[job.op] += 1
            if not job.peer.closed:  # its worker went away: nobody waits for the answer
                started = time.monotonic()
                self._run(job)
                self.busy_s[job.op] += time.monotonic() - started


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class InferenceService:
    """Serves `services`' models on a unix socket at `path` until `stop` is set."""

    def __init__(self, services: Services, path: Path, threads: int = 0, admission: Admission | None = None) -> None:
        self.services = services
        self.admission = admission or Admission()
        """The machine's calls, admitted by measured headroom (ivr.infer.admission); answered at once, never
        queued behind model work."""
        self.path = path
        self.key = secrets.token_bytes(32)
        self.scheduler = Scheduler(self._run, threads or os.cpu_count() or 2)
        self._peers: set[Peer] = set()
        self.peak_workers = 0
        """The most workers connected at once."""
        self._peers_lock = threading.Lock()
        self._handlers: dict[str, Callable[..., Any]] = {
            "hello": self._hello, "asr": self._asr, "tts": self._tts, "stats": self.stats,
            "emotion.voice": self._emotion_voice, "emotion.text": self._emotion_text, "nlu": self._nlu}
        self._at_once: dict[str, Callable[..., Any]] = {
            "admit": self._admit, "release": self.admission.release, "reply": self.admission.reply}
        self._sock = self._listen()

    # ---- the socket ---------------------------------------------------------------------------------

    def _listen(self) -> socket.socket:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a stale socket of a service that died
        key_path = Path(str(self.path) + KEY_SUFFIX)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self.key)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            old = os.umask(0o177)
            try:
                sock.bind(str(self.path))
            finally:
                os.umask(old)
            sock.listen(MAX_PEERS)
        except OSError as exc:
            sock.close()
            raise IvrError(f"cannot listen on {self.path}: {exc.strerror}") from None
        return sock

    def serve(self, stop: threading.Event) -> None:
        """Accepts workers until `stop` is set (polled every 0.2 s), then closes everything."""
        self._sock.settimeout(0.2)
        try:
            while not stop.is_set():
                try:
                    conn, _ = self._sock.accept()
                except TimeoutError:
                    continue
                except OSError:
                    if stop.is_set():
                        break
                    raise
                threading.Thread(target=self._peer, args=(conn,), name="infer-peer", daemon=True).start()
        finally:
            self.close()

    def close(self) -> None:
        self.scheduler.stop()
        with contextlib.suppress(OSError):
            self._sock.close()
        with self._peers_lock:
            peers = list(self._peers)
        for peer in peers:
            peer.close()
        for path in (self.path, Path(str(self.path) + KEY_SUFFIX)):
            with contextlib.suppress(OSError):
                path.unlink()

    def _peer(self, sock: socket.socket) -> None:
        """One worker: the handshake, then its requests until it goes."""
        with self._peers_lock:
            if len(self._peers) >= MAX_PEERS:
                sock.close()
                log.warning("inference: %d workers connected already; refused one", MAX_PEERS)
                return
        conn = Connection(os.dup(sock.fileno()))
        # a peer that stalls in the handshake is cut off (shutting the socket down wakes the blocked read)
        timer = threading.Timer(HANDSHAKE_TIMEOUT_S, _shut, args=(sock,))
        timer.start()
        try:
            deliver_challenge(conn, self.key)
            answer_challenge(conn, self.key)
        except (AuthenticationError, OSError, EOFError, ValueError) as exc:
            log.warning("inference: a connection failed the handshake (%s)", type(exc).__name__)
            conn.close()
            return
        finally:
            timer.cancel()
            sock.close()
        peer = Peer(conn)
        with self._peers_lock:
            self._peers.add(peer)
            self.peak_workers = max(self.peak_workers, len(self._peers))
        try:
            self._read(peer)
        finally:
            with self._peers_lock:
                self._peers.discard(peer)
            peer.close()
            if (gone := self.admission.drop_worker(peer)):
                log.info("inference: a worker went away with %d call(s) up; they are over", gone)

    def _read(self, peer: Peer) -> None:
        while True:
            try:
                message = peer.conn.recv()
            except (EOFError, OSError):
                return
            except Exception as exc:  # noqa: BLE001 - an unpicklable message: that peer is broken
                log.warning("inference: an unreadable request (%s); closing that connection", type(exc).__name__)
                return
            if not (isinstance(message, tuple) and len(message) == 4 and isinstance(message[0], int)
                    and (message[1] in self._handlers or message[1] in self._at_once)
                    and isinstance(message[2], int | float) and isinstance(message[3], tuple)):
                log.warning("inference: a malformed request; closing that connection")
                return
            request_id, op, budget_s, args = message
            if op in self._at_once:
                self._answer_at_once(peer, request_id, op, args)
            else:
                self.scheduler.submit(op, args, max(0.0, float(budget_s)), peer, request_id)

    def _answer_at_once(self, peer: Peer, request_id: int, op: str, args: tuple[Any, ...]) -> None:
        """Admission's ops: on the connection's own thread, in microseconds."""
        try:
            result = self._at_once[op](peer, *args) if op == "admit" else self._at_once[op](*args)
        except Exception as exc:  # noqa: BLE001 - bad arguments from a worker: its request fails, nothing else
            peer.send((request_id, "error", f"{type(exc).__name__}: {exc}"))
            return
        peer.send((request_id, "done", result))

    # ---- the work -----------------------------------------------------------------------------------

    def _run(self, job: Job) -> None:
        try:
            result = self._handlers[job.op](*job.args)
            if isinstance(result, Iterator):
                for chunk in result:
                    if job.peer.closed:
                        return
                    job.peer.send((job.request_id, "chunk", chunk))
                result = None
        except Exception as exc:  # noqa: BLE001 - reported to the worker, which falls back
            log.warning("inference: %s failed: %s", job.op, type(exc).__name__)
            job.peer.send((job.request_id, "error", f"{type(exc).__name__}: {exc}"))
            return
        job.peer.send((job.request_id, "done", result))

    def _admit(self, peer: Peer, call: str, budget_ms: float) -> str | None:
        if not isinstance(call, str) or not isinstance(budget_ms, int | float):
            raise TypeError("admit takes a call key and a budget in ms")
        return self.admission.admit(call, peer, float(budget_ms))

    def _hello(self) -> Hello:
        s = self.services
        asr_capabilities = getattr(s.recognizer, "capabilities", AsrCapabilities(streaming=False, partials=False))
        return Hello(s.recognizer.name, asr_capabilities, s.synthesizer.engine, s.synthesizer.voice,
                     s.synthesizer.capabilities, s.emotion is not None, s.nlu is not None, os.getpid())

    def _asr(self, pcm: bytes, rate_hz: int, options: Any) -> Any:
        return self.services.recognizer.transcribe(np.frombuffer(pcm, dtype="<i2"), rate_hz, options)

    def _tts(self, text: str) -> Iterator[Any]:
        return iter(self.services.synthesizer.synthesize_stream(text))

    def _emotion_voice(self, samples: np.ndarray, rate_hz: int) -> Any:
        return None if self.services.emotion is None else self.services.emotion.voice(samples, rate_hz)

    def _emotion_text(self, text: str) -> Any:
        return None if self.services.emotion is None else self.services.emotion.text(text)

    def _nlu(self, text: str) -> Any:
        if self.services.nlu is None:
            raise IvrError("the inference service has no NLU")
        return self.services.nlu.understand(text)

    def stats(self) -> dict[str, Any]:
        """Requests served by op, queue waits (ms, p50/p95 of the recent ones), workers connected, queued now."""
        waits = sorted(self.scheduler.waits_ms)

        def pct(q: float) -> float:
            return round(waits[min(len(waits) - 1, int(q * len(waits)))], 1) if waits else 0.0

        with self._peers_lock:
            peers = len(self._peers)
        return {"served": dict(self.scheduler.served), "wait_p50_ms": pct(0.5), "wait_p95_ms": pct(0.95),
                "workers": peers, "queued": self.scheduler.queued(), "pid": os.getpid(),
                "admission": self.admission.state()}
