"""Plain per-call files: events.jsonl on disk is redacted (unless call.record_digits), `ivr serve` removes
a call's plain folder once the store has it (kept with --keep-call-files, or when storing failed)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from dialog.flow import load_default_flow
from dialog.machine import Machine
from ivr.call.eventlog import EventLog
from ivr.call.events import Said, Transcript, from_dict
from ivr.call.privacy import redact_event
from ivr.call.services import Services
from ivr.call.session import CallSession
from ivr.config import AgentConfig, CallConfig
from ivr.store import Store
from ivr.store.hook import SipStoreObserver
from telephony.clock import VirtualClock
from tests.test_store_support import call_events, sip_session, stereo_wav, store_config

READ_BACK = "I heard 4 5 1 2 9 8 7. Is that right?"
SPOKEN = "my account is one two three four five six"


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_event_log_redacts_only_what_it_writes(tmp_path):
    log = EventLog(VirtualClock(), tmp_path / "events.jsonl", redact=redact_event)
    say = log.emit(Said(text=READ_BACK, barge_in=True))
    log.emit(Transcript(text=SPOKEN, confidence=0.9))
    log.close()
    on_disk = _lines(tmp_path / "events.jsonl")
    assert on_disk[0]["text"] == "I heard [account number]. Is that right?"
    assert on_disk[1]["text"] == "my account is [number]"
    assert say["text"] == READ_BACK and log.events[1]["text"] == SPOKEN  # the live dialog sees everything


def _session(tmp_path: Path, record_digits: bool) -> CallSession:
    config = AgentConfig(call=dataclasses.replace(CallConfig(), record_digits=record_digits))
    services = Services(config, None, None, Machine(load_default_flow()))  # type: ignore[arg-type]
    return CallSession(services, VirtualClock(), 8000, tmp_path, call_id="c")


def test_session_events_file_is_redacted_unless_record_digits(tmp_path):
    for record_digits in (False, True):
        out = tmp_path / str(record_digits)
        session = _session(out, record_digits)
        session.log.emit(Said(text=READ_BACK, barge_in=True))
        session.log.emit(Transcript(text=SPOKEN, confidence=0.9))
        session.close()
        text = (out / "events.jsonl").read_text(encoding="utf-8")
        assert ("4 5 1 2 9 8 7" in text and "one two three" in text) is record_digits
        assert session.log.events[0]["text"] == READ_BACK


def _sip_call(tmp_path: Path, store: Store, keep_files: bool = False) -> tuple[Path, bytes]:
    session = sip_session()
    observer = SipStoreObserver(store, keep_files=keep_files)
    observer.call_started(session, "<sip:+15550101234@10.0.0.1>")
    for event in call_events("s1", ["my account is 12345678"]):
        session.log.emit(from_dict(event))
    out = tmp_path / "calls" / "s1"
    plain = stereo_wav(out / "recording.wav").read_bytes()
    (out / "events.jsonl").write_text("{}\n", encoding="utf-8")
    (out / "sip.json").write_text(json.dumps({"caller": "sip:+15550101234@10.0.0.1"}), encoding="utf-8")
    observer.call_closed(session, out)
    return out, plain


def test_serve_removes_the_plain_call_folder_once_stored(tmp_path):
    store = Store(store_config(tmp_path))
    try:
        out, plain = _sip_call(tmp_path, store)
        assert not out.exists()
        assert store.read_recording("s1") == plain  # the encrypted copy is what remains
        assert "12345678" not in json.dumps(store.get_call("s1")["events"])
    finally:
        store.close()


def test_keep_call_files_keeps_them(tmp_path):
    store = Store(store_config(tmp_path))
    try:
        out, _ = _sip_call(tmp_path, store, keep_files=True)
        assert {p.name for p in out.iterdir()} == {"recording.wav", "events.jsonl", "sip.json"}
    finally:
        store.close()


def test_a_call_the_store_lost_keeps_its_files(tmp_path):
    store = Store(store_config(tmp_path))
    store.engine.dispose()
    (tmp_path / "ivr.db").unlink()
    (tmp_path / "ivr.db").mkdir()  # the database cannot be opened any more: writes fail
    try:
        out, _ = _sip_call(tmp_path, store)
        assert (out / "recording.wav").is_file() and (out / "events.jsonl").is_file()
    finally:
        store.close()


def test_serve_has_the_keep_call_files_flag():
    from ivr.cli import build_parser

    args = build_parser().parse_args(["serve", "--keep-call-files"])
    assert args.keep_call_files is True
    assert build_parser().parse_args(["serve"]).keep_call_files is False
