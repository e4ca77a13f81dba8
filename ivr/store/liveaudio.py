"""A live call's audio for supervisors listening in: the call's process spools it, the console tails it.

`ivr serve`, `ivr call` and the console's web calls run a call in their own process; the console may be
another process. While a call runs, its process appends the call's audio (caller and agent mixed to one
channel, PCM16 at the line's rate) to a spool file in the store's data directory, DATA_DIR/live/, one
record every RECORD_MS; the console's listen socket (ivr.console.routes.listen) reads new records as they
come. Both need the same data directory (one host, or a shared file system) and the same recording key.

Privacy: each record is encrypted like a stored recording (AES-256-GCM with the store's key, bound to the
call id); the file is private (0600 in a 0700 directory) and deleted when the call closes. Its name is a
hash of the call id, so nothing of the call is in a path.

The call's audio thread never waits for it: `LiveSpool.__call__` (a CallSession audio tap) only appends the
tick's two frames to a bounded queue (the oldest dropped when the writer thread falls behind, e.g. a
stalled disk); a thread mixes, encrypts and writes. A slow listener costs the call nothing: the console
reads the file at its own pace and skips ahead to the live edge when it falls behind (LiveTail).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import struct
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from ivr.call import privacy
from ivr.errors import IvrError
from ivr.store.files import private_dir, private_file

log = logging.getLogger(__name__)

LIVE_DIR = "live"
RECORD_MS = 100
"""How often the spool thread writes what the call has said since (one encrypted record)."""
QUEUE_TICKS = 250
"""Ticks (20 ms each: 5 s) the call may get ahead of the spool thread; beyond, the oldest are dropped."""
MAX_SPOOL_BYTES = 32 * 1024 * 1024
"""A spool file is started afresh past this (a long call; about 30 min at 8 kHz), so it never grows unbounded."""
MAX_BACKLOG_S = 2.0
"""A listener further behind than this skips ahead to the live edge (the oldest audio is dropped)."""
STALE_S = 10.0
"""A spool not written for this long belongs to a process that stopped without ending its call."""
HEADER = struct.Struct("<I")
RATE = struct.Struct("<I")


def spool_path(data_dir: Path, call_id: str) -> Path:
    """Where a call's live audio is spooled: its name a hash of the call id (no id in a path)."""
    name = hashlib.sha256(call_id.encode("utf-8")).hexdigest()[:32]
    return data_dir / LIVE_DIR / f"{name}.live"


def is_spooling(data_dir: Path, call_id: str, within_s: float = STALE_S) -> bool:
    """Whether a call's audio is being spooled now: its spool exists and was written within `within_s` (a spool
    left by a process that died is not)."""
    try:
        return time.time() - spool_path(data_dir, call_id).stat().st_mtime <= within_s
    except FileNotFoundError:
        return False


def mix(caller: Any, agent: Any) -> np.ndarray:
    """One tick's caller and agent frames (telephony Frames) as one channel of int16."""
    left, right = caller.samples().astype(np.int32), agent.samples().astype(np.int32)
    n = max(left.size, right.size)
    both = np.zeros(n, dtype=np.int32)
    both[:left.size] += left
    both[:right.size] += right
    return np.asarray(np.clip(both, -32768, 32767), dtype="<i2")


def mix_ticks(ticks: list[tuple[Any, Any]]) -> np.ndarray:
    """Several ticks mixed at once (as `mix` tick by tick, in one pass of numpy when the frames are all the
    same length, which they are on a call: 20 ms each side)."""
    lefts = [caller.samples() for caller, _ in ticks]
    rights = [agent.samples() for _, agent in ticks]
    sizes = {x.size for x in lefts} | {x.size for x in rights}
    if len(sizes) != 1:
        return np.concatenate([mix(caller, agent) for caller, agent in ticks])
    both = np.concatenate(lefts).astype(np.int32) + np.concatenate(rights)
    return np.asarray(np.clip(both, -32768, 32767), dtype="<i2")


class LiveSpool:
    """The call's side: an audio tap (`session.add_audio_tap(spool)`) that spools the call's audio for
    listeners; `close()` when the call has ended (the file is deleted)."""

    def __init__(self, data_dir: Path, key: bytes, call_id: str, rate_hz: int) -> None:
        self.path = spool_path(data_dir, call_id)
        self.call_id = call_id
        self.rate_hz = rate_hz
        self._key = key
        self._ticks: deque[tuple[Any, Any]] = deque(maxlen=QUEUE_TICKS)
        self.dropped_ticks = 0
        self.written_bytes = 0
        self._wake = threading.Event()
        self._halt = threading.Event()
        private_dir(self.path.parent)
        self._file = self._open()
        self._thread = threading.Thread(target=self._run, name="live-audio", daemon=True)
        self._thread.start()

    def __call__(self, caller: Any, agent: Any) -> None:
        """One tick's frames, from the call's audio thread: queued, never waited for."""
        if len(self._ticks) == QUEUE_TICKS:
            self.dropped_ticks += 1  # the deque drops the oldest itself
        self._ticks.append((caller, agent))

    def close(self) -> None:
        """Stop spooling and delete the file (listeners see the call end)."""
        self._halt.set()
        self._wake.set()
        self._thread.join(5.0)
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        if self.dropped_ticks:
            log.warning("live audio of call %s: %d ticks dropped (the spool fell behind)", self.call_id,
                        self.dropped_ticks)

    def _open(self) -> Any:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a previous call's leftover, or the spool being started afresh
        private_file(self.path)
        return self.path.open("ab", buffering=0)

    def _run(self) -> None:
        while not self._halt.is_set():
            self._wake.wait(RECORD_MS / 1000.0)
            try:
                self._write_pending()
            except OSError as exc:  # the disk is gone or full: the call goes on, unheard
                log.warning("live audio of call %s stopped: %s", self.call_id, exc)
                return
        with contextlib.suppress(OSError):
            self._write_pending()

    def _write_pending(self) -> None:
        ticks = []
        while self._ticks:
            ticks.append(self._ticks.popleft())
        if not ticks:
            return
        pcm = mix_ticks(ticks).tobytes()
        blob = privacy.encrypt(RATE.pack(self.rate_hz) + pcm, self._key, self.call_id.encode("utf-8"))
        if self.written_bytes + len(blob) > MAX_SPOOL_BYTES:
            self._file.close()
            self._file = self._open()
            self.written_bytes = 0
        self._file.write(HEADER.pack(len(blob)) + blob)
        self.written_bytes += HEADER.size + len(blob)


class LiveTail:
    """The console's side: a call's live audio from now on, as (rate_hz, PCM16 mono bytes) records.

    `read()` returns what was spooled since the last call; None once the spool is gone (the call ended).
    A reader more than MAX_BACKLOG_S behind skips to the newest record."""

    def __init__(self, data_dir: Path, key: bytes, call_id: str) -> None:
        self.path = spool_path(data_dir, call_id)
        self.call_id = call_id
        self._key = key
        self._file: Any = None
        self._inode = -1
        self._pos = 0
        self._rate = 48000
        """The spool's rate once a record has been read (the most a line has until then)."""
        self.skipped_bytes = 0

    def available(self) -> bool:
        return self.path.is_file()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def read(self) -> list[tuple[int, bytes]] | None:
        if self._file is None:
            if not self._reopen():
                return None
            self._pos = self._last_record_start()  # start at the live edge
        records = self._records()
        if records:
            return records
        try:
            inode = os.stat(self.path).st_ino
        except FileNotFoundError:
            return None  # finished (the spool thread wrote its last record before deleting)
        if inode != self._inode:  # the spool was started afresh: read the new file from its start
            self.close()
            if not self._reopen():
                return None
            self._pos = 0
            return self._records()
        return []

    def _reopen(self) -> bool:
        try:
            self._file = self.path.open("rb")
        except FileNotFoundError:
            return False
        self._inode = os.fstat(self._file.fileno()).st_ino
        return True

    def _last_record_start(self) -> int:
        """The offset of the newest complete record (0 in an empty file)."""
        pos, last = 0, 0
        size = os.fstat(self._file.fileno()).st_size
        while pos + HEADER.size <= size:
            self._file.seek(pos)
            (length,) = HEADER.unpack(self._file.read(HEADER.size))
            if pos + HEADER.size + length > size:
                break
            last, pos = pos, pos + HEADER.size + length
        return last

    def _records(self) -> list[tuple[int, bytes]]:
        size = os.fstat(self._file.fileno()).st_size
        if self._pos < size and size - self._pos > self._backlog_limit():
            edge = self._last_record_start()
            self.skipped_bytes += edge - self._pos
            self._pos = edge
        self._file.seek(self._pos)
        data = self._file.read(size - self._pos)
        out: list[tuple[int, bytes]] = []
        at = 0
        while at + HEADER.size <= len(data):
            (length,) = HEADER.unpack_from(data, at)
            if at + HEADER.size + length > len(data):
                break  # the writer is still writing this one
            blob = data[at + HEADER.size:at + HEADER.size + length]
            at += HEADER.size + length
            try:
                plain = privacy.decrypt(blob, self._key, self.call_id.encode("utf-8"))
            except IvrError:
                continue  # a damaged record (or another key): skipped, never played as noise
            (rate,) = RATE.unpack_from(plain)
            self._rate = rate
            out.append((rate, plain[RATE.size:]))
        self._pos += at
        return out

    def _backlog_limit(self) -> int:
        """Bytes of backlog past which the reader skips ahead: MAX_BACKLOG_S of audio, and the records' framing."""
        return int(MAX_BACKLOG_S * self._rate * 2 * 1.1)
