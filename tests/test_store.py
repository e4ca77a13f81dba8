"""The call store: what a live call writes, search and filters, redaction, encryption at rest,
erasure, retention, migrations, import of call directories. Each store test runs on SQLite and on a
real PostgreSQL server started for the test run."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import soundfile as sf
from sqlalchemy import select, text

from ivr.call import privacy
from ivr.call.events import from_dict
from ivr.store import CallFilter, Store, schema
from ivr.store.config import parse_key
from ivr.store.importer import import_call_dir
from ivr.store.migrations import LATEST, MIGRATIONS, migrate
from models.errors import AgentError
from tests.test_store_support import (
    TEST_KEY,
    add_call,
    call_events,
    postgres_server,
    sip_session,
    stereo_wav,
    store_config,
    utc_days_ago,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def pg():
    with postgres_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = None
    if request.param == "postgresql":
        url = request.getfixturevalue("pg").new_database()
    s = Store(store_config(tmp_path, url))
    assert s.dialect == request.param
    try:
        yield s
    finally:
        s.close()


def test_live_call_is_written_as_it_happens(store, tmp_path):
    wav = stereo_wav(tmp_path / "rec.wav")
    add_call(store, "c1", ["I lost my card, the number is 4111 1111 1111 1111", "my email is jo@example.com"],
             caller="+1 (555) 010-4477", recording=wav, outcome="transferred", reason="caller asked for an agent",
             emotions=[{"neutral": 0.7, "angry": 0.3}, {"neutral": 0.2, "angry": 0.8}],
             intents=["lost_card", "agent"])
    call = store.get_call("c1")
    assert call["outcome"] == "transferred" and call["escalated"] is True
    assert call["reason"] == "caller asked for an agent" and call["transfer_target"] == "sip:agents@example.com"
    # the call's intent is what it is about (the first topic), its emotion the caller's last
    assert call["intent"] == "lost_card" and call["emotion"] == "angry" and call["node"] == "goodbye"
    assert call["ended_at"] > call["started_at"] and call["duration_ms"] == pytest.approx(10500.0)
    assert call["caller_tail"] == "77" and "4477" not in (call["caller_hash"] or "")
    speakers = [t["speaker"] for t in call["turns"]]
    assert speakers == ["agent", "caller", "agent", "caller", "agent"]
    first = call["turns"][1]
    assert (first["start_ms"], first["end_ms"]) == (2500.0, 3700.0)
    assert first["text"] == "I lost my card, the number is [card number]"
    assert first["emotion"] == "neutral" and first["emotion_scores"] == {"neutral": 0.7, "angry": 0.3}
    assert first["intent"] == "lost_card"
    assert call["turns"][3]["text"] == "my email is [email]"
    assert call["turns"][0]["end_ms"] == 2000.0
    stored_events = json.dumps(call["events"])
    assert "4111" not in stored_events and "jo@example.com" not in stored_events
    assert [e["type"] for e in call["events"]][0] == "call_started"
    assert call["recordings"][0]["encrypted"] is True
    assert store.read_recording("c1") == wav.read_bytes()


def test_search_and_filters(store, tmp_path):
    add_call(store, "a", ["what is my balance"], caller="+15550001111", intents=["balance"],
             emotions=[{"neutral": 0.9, "angry": 0.1}], started_at=utc_days_ago(3))
    add_call(store, "b", ["get me a human now"], caller="+15550002222", outcome="transferred", reason="agent",
             intents=["agent"], emotions=[{"neutral": 0.1, "angry": 0.9}], started_at=utc_days_ago(1))
    add_call(store, "live", ["still talking"], ended=False)

    def ids(**kw):
        return sorted(c["id"] for c in store.list_calls(CallFilter(**kw)))

    assert ids(text="BALANCE") == ["a"]
    assert ids(text="human now") == ["b"]
    assert ids(text="balance human") == []
    assert ids(escalated=True) == ["b"] and ids(escalated=False) == ["a", "live"]
    assert ids(outcome="transferred") == ["b"]
    assert ids(intent="balance") == ["a"] and ids(emotion="angry") == ["b"]
    assert ids(caller="+1 555 000 2222") == ["b"] and ids(caller="11") == ["a"]
    assert ids(date_from=utc_days_ago(2).date()) == ["b", "live"]
    assert ids(date_to=utc_days_ago(2).date()) == ["a"]
    assert ids(active=True) == ["live"]
    assert store.list_calls(CallFilter(active=True))[0]["last_text"] == "still talking"
    assert store.distinct_values("intent") == ["agent", "balance"]


def test_search_text_is_literal(store):
    sql = "'; DROP TABLE calls; -- 100% of_it"
    add_call(store, "sql", [sql])
    add_call(store, "other", ["one hundred percent"])
    assert [c["id"] for c in store.list_calls(CallFilter(text="100%"))] == ["sql"]
    assert [c["id"] for c in store.list_calls(CallFilter(text="of_it"))] == ["sql"]
    assert [c["id"] for c in store.list_calls(CallFilter(text="DROP TABLE"))] == ["sql"]
    assert store.list_calls(CallFilter(text="%")) == [store.list_calls(CallFilter(text="100%"))[0]]
    assert store.count_calls() == 2
    assert store.get_call("sql")["turns"][1]["text"] == sql


def test_recording_unreadable_without_the_key(store, tmp_path):
    wav = stereo_wav(tmp_path / "rec.wav")
    add_call(store, "enc", ["hello"], recording=wav)
    path, encrypted = store.recording_path("enc")
    blob = path.read_bytes()
    assert encrypted and path.parent.parent == store.config.data_dir
    assert not blob.startswith(b"RIFF") and b"WAVE" not in blob and b"data" not in blob[:64]
    pcm = wav.read_bytes()[44:]
    assert pcm[4000:4064] not in blob  # no plain audio anywhere in the file
    with pytest.raises(sf.LibsndfileError):
        sf.read(str(path))
    other = Store(dataclasses.replace(store.config, recording_key=bytes(32)), engine=store.engine)
    with pytest.raises(AgentError, match="wrong key"):
        other.read_recording("enc")
    # a file moved to another call does not decrypt either (the call id is bound into the tag)
    with pytest.raises(AgentError):
        privacy.decrypt(blob, TEST_KEY, b"another-call")
    assert store.read_recording("enc") == wav.read_bytes()


def test_erasure_removes_a_callers_calls_and_audio(store, tmp_path):
    files = []
    for i, number in enumerate(["+44 20 7946 0001", "+44 20 7946 0001", "+44 20 7946 0999"]):
        add_call(store, f"e{i}", [f"call {i}"], caller=number, recording=stereo_wav(tmp_path / f"{i}.wav"))
        files.append(store.recording_path(f"e{i}")[0])
    assert all(f.exists() for f in files)
    assert store.erase_caller("tel:+442079460001") == 2
    assert store.get_call("e0") is None and store.get_call("e1") is None
    assert not files[0].exists() and not files[1].exists() and files[2].exists()
    with store.engine.connect() as conn:
        for table in (schema.turns, schema.events, schema.recordings):
            left = conn.execute(select(table.c.call_id).where(table.c.call_id.in_(["e0", "e1"]))).all()
            assert left == [], table.name
    assert store.get_call("e2") is not None
    assert store.audit_log()[0]["action"] == "erase-caller"
    assert store.erase_caller("+442079460001") == 0


def test_retention_deletes_old_calls(store, tmp_path):
    add_call(store, "old", ["old call"], recording=stereo_wav(tmp_path / "o.wav"), started_at=utc_days_ago(40))
    add_call(store, "new", ["new call"], started_at=utc_days_ago(2))
    old_file = store.recording_path("old")[0]
    assert store.apply_retention(30) == 1
    assert store.get_call("old") is None and not old_file.exists() and store.get_call("new") is not None


def test_migrations_are_versioned(store):
    assert migrate(store.engine) == []
    with store.engine.begin() as conn:
        applied = conn.execute(select(schema.schema_version.c.version)).scalars().all()
        assert applied == [number for number, _what, _step in MIGRATIONS] == sorted(set(applied))
        conn.execute(schema.schema_version.insert().values(version=LATEST + 1, applied_at=datetime.now(UTC)))
    with pytest.raises(AgentError, match="newer than this program"):
        migrate(store.engine)


def _call_dir(root: Path, call_id: str, texts: list[str]) -> Path:
    d = root / call_id
    d.mkdir(parents=True)
    events = call_events(call_id, texts)
    (d / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    stereo_wav(d / "recording.wav")
    lines = [{"speaker": "agent", "start_ms": 0.0, "end_ms": 2000.0, "text": "Welcome", "words": []}]
    lines += [{"speaker": "caller", "start_ms": 2490.0 + 4000 * i, "end_ms": 3700.0 + 4000 * i, "text": t,
               "words": [{"text": w, "start_s": 0.1, "end_s": 0.2, "confidence": 0.9} for w in t.split()]}
              for i, t in enumerate(texts)]
    (d / "transcript.json").write_text(json.dumps(lines))
    (d / "summary.json").write_text(json.dumps({"call_id": call_id, "outcome": "completed"}))
    return d


def test_import_dir_is_idempotent(store, tmp_path):
    d = _call_dir(tmp_path / "calls", "imp1", ["my account is 12345678 please"])
    assert import_call_dir(store, d, caller="+15557654321") == "imp1"
    assert import_call_dir(store, d) == "imp1"
    assert store.count_calls() == 1
    call = store.get_call("imp1")
    caller = [t for t in call["turns"] if t["speaker"] == "caller"][0]
    assert caller["text"] == "my account is [account number] please"
    assert [w["text"] for w in caller["words"]] == ["my", "account", "is", "[account number]", "please"]
    assert caller["start_ms"] == 2490.0
    assert call["source"] == "sim" and store.read_recording("imp1") == (d / "recording.wav").read_bytes()


def test_redaction():
    r = privacy.redact_text
    assert r("card 4111-1111-1111-1111 expires") == "card [card number] expires"
    assert r("call me on +1 415 555 0100 tonight") == "call me on [phone number] tonight"
    assert r("my number is (415) 555-0100") == "my number is [phone number]"
    assert r("account 00123456") == "account [account number]"
    assert r("write to jane.doe+x@mail.example.org") == "write to [email]"
    assert r("jane at example dot com") == "[email]"
    assert r("it is four one one one two two two two") == "it is [number]"
    assert r("my pin is 4321") == "my pin is [number]"
    assert r("I paid 25 dollars in 2024 at 3 pm") == "I paid 25 dollars in 2024 at 3 pm"
    event = privacy.redact_event({"type": "transcript", "text": "iban 12345678", "slots": {"acct": "987654321"}})
    assert event["text"] == "iban [account number]" and event["slots"] == {"acct": "[account number]"}


def test_caller_hash_is_keyed_and_normalized():
    pepper = privacy.derive_pepper(TEST_KEY)
    h = privacy.caller_hash("+1 (555) 010-4477", pepper)
    assert h == privacy.caller_hash("sip:+15550104477@pbx.example.com", pepper)
    assert h != privacy.caller_hash("+15550104477", privacy.derive_pepper(bytes(32)))
    assert "4477" not in h


def test_key_formats():
    assert parse_key(TEST_KEY.hex()) == TEST_KEY
    import base64
    assert parse_key(base64.urlsafe_b64encode(TEST_KEY).decode()) == TEST_KEY
    with pytest.raises(AgentError):
        parse_key("too-short")


def _ivr(args, env):
    return subprocess.run([sys.executable, "-m", "ivr", *args], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=120)


def test_store_cli(tmp_path):
    import os
    env = {**os.environ, "IVR_DB_URL": f"sqlite:///{tmp_path}/cli.db", "IVR_DATA_DIR": str(tmp_path / "data"),
           "IVR_RECORDING_KEY": TEST_KEY.hex()}
    d = _call_dir(tmp_path / "calls", "cli1", ["hello there"])
    _call_dir(tmp_path / "calls", "cli2", ["bye now"])
    out = _ivr(["store", "import-dir", str(tmp_path / "calls")], env)
    assert out.returncode == 0, out.stderr
    assert "cli1" in out.stdout and "cli2" in out.stdout
    out = _ivr(["store", "import-dir", str(d), "--caller", "+15551234567"], env)
    assert out.returncode == 0, out.stderr
    out = _ivr(["store", "erase", "--caller", "+1 555 123 4567"], env)
    assert out.returncode == 0 and "erased 1 call" in out.stdout, out.stderr
    out = _ivr(["store", "retention", "--days", "0"], env)
    assert out.returncode == 0 and "deleted 1 call" in out.stdout, out.stderr
    assert "+1555" not in out.stdout + out.stderr
    bad = _ivr(["store", "import-dir", str(tmp_path / "nothing-here")], env)
    assert bad.returncode == 1 and bad.stderr.startswith("ivr: error: no call directories")


@pytest.mark.models
def test_ivr_call_is_stored(tmp_path):
    """A simulated call on the real models lands in the store as it runs, with words and encrypted audio."""
    import os
    env = {**os.environ, "IVR_DB_URL": f"sqlite:///{tmp_path}/ivr.db", "IVR_DATA_DIR": str(tmp_path / "data"),
           "IVR_RECORDING_KEY": TEST_KEY.hex()}
    out = _ivr(["call", "--script", "examples/balance.yaml", "--fast", "-q", "--out", str(tmp_path / "call")], env)
    assert out.returncode == 0, out.stderr
    store = Store(store_config(tmp_path, f"sqlite:///{tmp_path}/ivr.db"))
    try:
        calls = store.list_calls(CallFilter(text="balance"))
        assert len(calls) == 1 and calls[0]["outcome"] == "completed"
        call = store.get_call(calls[0]["id"])
        caller = [t for t in call["turns"] if t["speaker"] == "caller"]
        assert len(caller) == 2 and all(t["words"] for t in caller)
        assert store.read_recording(call["id"]) == (tmp_path / "call" / "recording.wav").read_bytes()
        with store.engine.connect() as conn:
            assert conn.execute(text("select count(*) from events")).scalar_one() == len(
                (tmp_path / "call" / "events.jsonl").read_text().splitlines())
    finally:
        store.close()


def test_sip_observer_stores_a_call_with_its_caller(tmp_path):
    """What `ivr serve` does per call: a writer subscribed to the session's log, finished when it closes."""
    from ivr.store.hook import SipStoreObserver, caller_number

    assert caller_number('"Alice" <sip:+1-555-010-1234@10.0.0.1:5060>;tag=x') == "+1-555-010-1234"
    assert caller_number("sip:anonymous@example.com") is None
    store = Store(store_config(tmp_path))
    try:
        session = sip_session()
        observer = SipStoreObserver(store)
        observer.call_started(session, '"Alice" <sip:+15550101234@10.0.0.1>')
        for event in call_events("sip1", ["hello from the phone"]):
            session.log.emit(from_dict(event))
        out = tmp_path / "sip1"
        plain = stereo_wav(out / "recording.wav").read_bytes()
        observer.call_closed(session, out)
        call = store.get_call("sip1")
        assert call["source"] == "sip" and call["caller_tail"] == "34" and call["outcome"] == "completed"
        assert store.list_calls(CallFilter(caller="+1 555 010 1234"))[0]["id"] == "sip1"
        assert store.read_recording("sip1") == plain
        assert not out.exists(), "the plain call folder must not outlive the stored call"
    finally:
        store.close()


def test_full_text_search_is_indexed_and_kept_in_sync(store):
    """FTS5 on SQLite, a tsvector column with a GIN index on PostgreSQL: words match by prefix, in any
    turn of the call; inserts, updates and deletes of turns reach the index."""
    assert store.fulltext == {"sqlite": "fts5", "postgresql": "tsvector"}[store.dialect]
    add_call(store, "stolen", ["I want to report a stolen card", "it was declined yesterday"])
    add_call(store, "cards", ["my Cards were declined"])

    def ids(words):
        return sorted(c["id"] for c in store.list_calls(CallFilter(text=words)))

    assert ids("card") == ["cards", "stolen"] and ids("CARDS") == ["cards"]
    assert ids("stolen declined") == ["stolen"]  # words from different turns of one call
    assert ids("stol") == ["stolen"] and ids("olen") == []  # word prefixes, not substrings
    assert ids("welcome") == ["cards", "stolen"]  # the agent's turns are searched too
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE turns SET text = 'a lost wallet' WHERE call_id = 'stolen' AND seq = 2"))
    assert ids("wallet") == ["stolen"] and ids("stolen") == []
    if store.dialect == "postgresql":  # the GIN index serves the query once a scan is not cheaper
        with store.engine.connect() as conn:
            conn.execute(text("SET enable_seqscan = off"))
            plan = " ".join(conn.execute(text(
                "EXPLAIN SELECT id FROM turns WHERE text_tsv @@ to_tsquery('simple', 'wallet:*')")).scalars())
        assert "ix_turns_text_tsv" in plan
    store.delete_calls(["stolen"])
    assert ids("wallet") == [] and ids("declined") == ["cards"]
    if store.dialect == "sqlite":
        with store.engine.connect() as conn:
            indexed = conn.execute(text("SELECT count(*) FROM turns_fts WHERE turns_fts MATCH 'wallet'")).scalar()
            in_calls = conn.execute(text("SELECT count(*) FROM calls_fts WHERE calls_fts MATCH 'wallet'")).scalar()
        assert indexed == 0 and in_calls == 0


def test_search_falls_back_to_like_without_fts5(tmp_path, monkeypatch):
    import ivr.store.migrations as migrations

    monkeypatch.setattr(migrations, "sqlite_has_fts5", lambda conn: False)
    store = Store(store_config(tmp_path))
    try:
        assert store.fulltext == "like"
        add_call(store, "x", ["my card was stolen"])
        assert [c["id"] for c in store.list_calls(CallFilter(text="olen"))] == ["x"]  # substrings with LIKE
    finally:
        store.close()


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_version_1_store_gets_its_transcripts_indexed(dialect, tmp_path, monkeypatch, request):
    import ivr.store.migrations as migrations

    url = request.getfixturevalue("pg").new_database() if dialect == "postgresql" else None
    with monkeypatch.context() as m:
        m.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:1])
        m.setattr(migrations, "LATEST", 1)
        old = Store(store_config(tmp_path, url))
        assert old.fulltext == "like"
        add_call(old, "early", ["an early transcript"])
        old.close()
    store = Store(store_config(tmp_path, url))
    try:
        assert store.fulltext != "like"
        assert [c["id"] for c in store.list_calls(CallFilter(text="transcr"))] == ["early"]
    finally:
        store.close()
