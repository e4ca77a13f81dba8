"""Helpers for the store and console tests (no tests here): stores on SQLite or a real PostgreSQL,
synthetic calls fed through the live writer, a small stereo recording."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from ivr.store import Store, StoreConfig, StoreWriter

TEST_KEY = bytes(range(32))
RATE_HZ = 8000


def sip_session() -> Any:
    """What a SIP store observer reads of a call's session: its event log (on a virtual clock) and transcript."""
    from types import SimpleNamespace

    from ivr.call.eventlog import EventLog
    from telephony.clock import VirtualClock

    return SimpleNamespace(log=EventLog(VirtualClock()), transcript=[])


def store_config(tmp: Path, db_url: str | None = None, key: bytes = TEST_KEY) -> StoreConfig:
    return StoreConfig(db_url=db_url or f"sqlite:///{tmp}/ivr.db", data_dir=tmp / "data", recording_key=key,
                       key_file=tmp / "unused.key")


def stereo_wav(path: Path, seconds: float = 3.0, rate_hz: int = RATE_HZ) -> Path:
    """Caller left (440 Hz, first half), agent right (660 Hz, second half): a real PCM WAV."""
    n = int(seconds * rate_hz)
    t = np.arange(n) / rate_hz
    left = np.where(t < seconds / 2, 0.5 * np.sin(2 * np.pi * 440 * t), 0.0)
    right = np.where(t >= seconds / 2, 0.5 * np.sin(2 * np.pi * 660 * t), 0.0)
    pcm = (np.stack([left, right], axis=1) * 32767).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, pcm, rate_hz, subtype="PCM_16")
    return path


def call_events(call_id: str, caller_texts: list[str], outcome: str = "completed", reason: str = "completed",
                emotions: list[dict[str, float]] | None = None, intents: list[str] | None = None,
                ended: bool = True) -> list[dict[str, Any]]:
    """The event log of a call in the shape CallSession writes it."""
    events: list[dict[str, Any]] = [
        {"t_ms": 0.0, "type": "call_started", "call_id": call_id, "sample_rate_hz": RATE_HZ},
        {"t_ms": 0.0, "type": "dialog", "event": "CallStarted", "node": "main_menu"},
        {"t_ms": 0.0, "type": "say", "text": "Welcome to Example Bank. How can I help you?", "barge_in": True},
        {"t_ms": 2000.0, "type": "prompt_finished"},
        {"t_ms": 2020.0, "type": "listening", "node": "main_menu", "timeout_ms": 6000},
    ]
    t = 2500.0
    for i, text in enumerate(caller_texts):
        events += [
            {"t_ms": t, "type": "speech_started", "onset_ms": t},
            {"t_ms": t + 1500, "type": "speech_stopped", "onset_ms": t, "end_ms": t + 1200},
            {"t_ms": t + 1800, "type": "transcript", "text": text, "confidence": 0.9},
        ]
        if emotions and i < len(emotions):
            events.append({"t_ms": t + 1810, "type": "emotion", "scores": emotions[i]})
        node = intents[i] if intents and i < len(intents) else "main_menu"
        if intents and i < len(intents):
            events.append({"t_ms": t + 1815, "type": "nlu", "intent": intents[i], "confidence": 0.9, "faq": "",
                           "faq_score": 0.0, "latency_ms": 2.0})
        events.append({"t_ms": t + 1820, "type": "dialog", "event": "Utterance", "node": node})
        events += [
            {"t_ms": t + 1840, "type": "say", "text": f"Answer number {i + 1}.", "barge_in": True},
            {"t_ms": t + 2500, "type": "reply_started", "turn_end_ms": t + 1200, "latency_ms": 1300.0},
            {"t_ms": t + 3500, "type": "prompt_finished"},
        ]
        t += 4000
    if ended:
        target = "sip:agents@example.com" if outcome == "transferred" else ""
        events.append({"t_ms": t, "type": "call_ended", "outcome": outcome, "reason": reason, "target": target,
                       "node": "goodbye"})
    return events


def add_call(store: Store, call_id: str, caller_texts: list[str], caller: str | None = None,
             recording: Path | None = None, started_at: datetime | None = None, live: bool = True,
             transcript: list[dict[str, Any]] | None = None, **kwargs: Any) -> str:
    """A call written through StoreWriter, as a session would (background thread when `live`)."""
    events = call_events(call_id, caller_texts, **kwargs)
    ended = kwargs.get("ended", True)
    writer = StoreWriter(store, source="sim", caller=caller, background=live and ended)
    if started_at is None:
        for event in events:
            writer(event)
    else:
        writer.apply([(started_at + timedelta(milliseconds=e["t_ms"]), e) for e in events])
    if ended:
        writer.finish(transcript or [], recording)
    assert not writer.failed
    return call_id


# ---- a real PostgreSQL server from Debian's postgresql --------------------------------------------------

def _pg_bin() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True):
        return Path(candidate).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    def __init__(self, url: str, run: Any) -> None:
        self.url = url
        self._run = run
        self._n = 0

    def new_database(self) -> str:
        import psycopg

        self._n += 1
        name = f"ivr_test_{os.getpid()}_{self._n}"
        with psycopg.connect(self.url + "/postgres", autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://{self.url.removeprefix('postgresql://')}/{name}"


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """initdb + pg_ctl into a temporary directory on a free port (as the postgres user when run as root)."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed: apt-get install postgresql (scripts/setup.sh does)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed: pip install 'ivr-agent[postgres]'")
    prefix: list[str] = []
    owner = None
    if os.geteuid() == 0:
        import pwd
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        prefix = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="ivr-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if owner is not None:
        for p in (root, sock):
            os.chown(p, owner.pw_uid, owner.pw_gid)
    port = _free_port()

    def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=timeout, check=False)

    started = False
    try:
        init = run(str(bin_dir / "initdb"), "-D", str(data), "-U", "ivr", "--auth=trust", "-E", "UTF8",
                   "--no-sync")
        assert init.returncode == 0, init.stderr[-2000:]
        start = run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-t", "30", "-o",
                    f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        assert start.returncode == 0, start.stderr[-2000:] + (root / "log").read_text(errors="replace")[-2000:]
        started = True
        yield PostgresServer(f"postgresql://ivr@127.0.0.1:{port}", run)
    finally:
        if started:
            run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "-t", "30", "stop")
        shutil.rmtree(root, ignore_errors=True)


def utc_days_ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


@contextlib.contextmanager
def console_store(tmp_path: Path, password: str) -> Iterator[Store]:
    """A store with the console users ada (admin) and sam (supervisor), both with `password`; closed after."""
    from ivr.console.auth import Users

    store = Store(store_config(tmp_path))
    users = Users(store)
    users.add("ada", "admin", password)
    users.add("sam", "supervisor", password)
    try:
        yield store
    finally:
        store.close()
