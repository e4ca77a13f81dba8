"""Versioned schema migrations: an ordered list of steps, each applied once, recorded in schema_version.

A released step is never edited; a schema change is a new step (ALTER TABLE, new tables, data moves).
Step 1 creates the first schema; later steps are appended below it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, inspect, select, text, update
from sqlalchemy.exc import OperationalError

from ivr.errors import IvrError
from ivr.store import kpistore, schema

log = logging.getLogger(__name__)

Step = Callable[[Connection], None]

FTS_TABLE = "turns_fts"
"""SQLite: an FTS5 index over turns.text (external content, kept in sync by triggers)."""
TSV_COLUMN = "text_tsv"
"""PostgreSQL: a generated tsvector column over turns.text, with a GIN index."""
CALL_FTS_TABLE = "calls_fts"
"""SQLite: one FTS5 document per call (its caller's, agent's and other speakers' words in three columns), kept
by triggers on turns, its rowid the call's first turn's id, kept in calls.doc_id: a search finds its calls
from the (doc_id, started_at, id) index instead of looking up every matching turn."""
TS_CONFIG = "simple"
"""Text search configuration: lower-cased words, no stemming or stop words (as FTS5's unicode61)."""


def _v1_initial(conn: Connection) -> None:
    tables = [t for t in schema.metadata.sorted_tables if t.name != "schema_version"]
    schema.metadata.create_all(conn, tables=tables)


def _v2_fulltext(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"ALTER TABLE turns ADD COLUMN {TSV_COLUMN} tsvector GENERATED ALWAYS AS "
                          f"(to_tsvector('{TS_CONFIG}'::regconfig, coalesce(text, ''))) STORED"))
        conn.execute(text(f"CREATE INDEX ix_turns_{TSV_COLUMN} ON turns USING GIN ({TSV_COLUMN})"))
        return
    if conn.dialect.name != "sqlite":
        return
    if not sqlite_has_fts5(conn):  # the call list searches with LIKE
        log.warning("this SQLite has no FTS5: transcript search uses LIKE")
        return
    for statement in (
        f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(text, content='turns', content_rowid='id', "
        "tokenize='unicode61 remove_diacritics 2')",
        f"CREATE TRIGGER {FTS_TABLE}_ai AFTER INSERT ON turns BEGIN "
        f"INSERT INTO {FTS_TABLE}(rowid, text) VALUES (new.id, new.text); END",
        f"CREATE TRIGGER {FTS_TABLE}_ad AFTER DELETE ON turns BEGIN "
        f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, text) VALUES ('delete', old.id, old.text); END",
        f"CREATE TRIGGER {FTS_TABLE}_au AFTER UPDATE OF text ON turns BEGIN "
        f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, text) VALUES ('delete', old.id, old.text); "
        f"INSERT INTO {FTS_TABLE}(rowid, text) VALUES (new.id, new.text); END",
        f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')",
    ):
        conn.execute(text(statement))


def sqlite_has_fts5(conn: Connection) -> bool:
    try:
        return bool(conn.execute(text("SELECT sqlite_compileoption_used('ENABLE_FTS5')")).scalar())
    except OperationalError:
        return False


def has_call_documents(conn: Connection) -> bool:
    """Whether the store searches per-call documents (SQLite with FTS5, since step 5)."""
    if conn.dialect.name != "sqlite":
        return False
    return conn.execute(text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :n"),
                        {"n": CALL_FTS_TABLE}).first() is not None


def fulltext_kind(conn: Connection) -> str:
    """'fts5', 'tsvector', or 'like' when the database has no full-text index."""
    if conn.dialect.name == "sqlite":
        found = conn.execute(text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :n"),
                             {"n": FTS_TABLE}).first()
        return "fts5" if found else "like"
    if conn.dialect.name == "postgresql":
        columns = {c["name"] for c in inspect(conn).get_columns("turns")}
        return "tsvector" if TSV_COLUMN in columns else "like"
    return "like"


FILTER_NAMES = ("outcome", "intent", "emotion")


def _v3_caller_match_and_filter_values(conn: Connection) -> None:
    """Caller filter by the last 4, 7 or 10 digits (earlier calls keep only the full-number hash), and
    the filter menus' values in a small table of their own, filled once from what is stored."""
    have = {c["name"] for c in inspect(conn).get_columns("calls")}  # a new store has them from step 1
    for name, kind in (("caller_last4", "VARCHAR(4)"), ("caller_hash7", "VARCHAR(64)"),
                       ("caller_hash10", "VARCHAR(64)")):
        if name in have:
            continue
        conn.execute(text(f"ALTER TABLE calls ADD COLUMN {name} {kind}"))
        conn.execute(text(f"CREATE INDEX ix_calls_{name} ON calls ({name})"))
    schema.filter_values.create(conn, checkfirst=True)
    conn.execute(schema.filter_values.delete())
    found: set[tuple[str, str]] = set()
    for name in FILTER_NAMES:
        tables = (schema.calls, schema.turns) if name != "outcome" else (schema.calls,)
        for table in tables:
            col = table.c[name]
            found.update((name, v) for v in conn.execute(select(col).distinct().where(col.is_not(None))).scalars()
                         if v)
    if found:
        conn.execute(schema.filter_values.insert(), [{"name": n, "value": v[:80]} for n, v in sorted(found)])


def _v4_outbox(conn: Connection) -> None:
    """The webhook outbox (a new store has it from step 1)."""
    schema.outbox.create(conn, checkfirst=True)


KPI_CALL_COLUMNS = (("flow", "VARCHAR(80)"), ("no_inputs", "INTEGER"), ("replies", "INTEGER"),
                    ("reply_ms_total", "FLOAT"), ("negativity", "FLOAT"), ("doc_id", "INTEGER"))
KPI_INDEXES = (
    ("ix_calls_flow", "calls (flow)"),
    ("ix_calls_transfer_target", "calls (transfer_target)"),
    ("ix_calls_started_id", "calls (started_at, id)"),
    ("ix_calls_id_filters", "calls (id, started_at, source, flow, transfer_target)"),
    ("ix_calls_outcome_escalated_started", "calls (outcome, escalated, started_at)"),
    ("ix_calls_escalated_started", "calls (escalated, started_at)"),
    ("ix_calls_doc", "calls (doc_id, started_at, id)"),
    ("ix_turns_intent_call", "turns (intent, call_id)"),
    ("ix_turns_emotion_call", "turns (emotion, call_id)"),
    ("ix_turns_nlu_miss", "turns (call_id, speaker, text, nlu_miss) WHERE nlu_miss IS NOT NULL"),
)
"""(name, what it indexes): as schema.py declares them for a new store."""


def _v5_kpis_and_indexes(conn: Connection) -> None:
    """The dashboard's per-call figures (flow, no-inputs, reply latencies, negativity) and the turns' NLU
    misses, kept by the writer from now on (earlier calls have none: the dashboard says so), and the
    indexes that keep the call list's intent/emotion filters and the dashboard's queue filter off full scans."""
    have = {c["name"] for c in inspect(conn).get_columns("calls")}  # a new store has them from step 1
    for name, kind in KPI_CALL_COLUMNS:
        if name not in have:
            conn.execute(text(f"ALTER TABLE calls ADD COLUMN {name} {kind}"))
    if "nlu_miss" not in {c["name"] for c in inspect(conn).get_columns("turns")}:
        conn.execute(text("ALTER TABLE turns ADD COLUMN nlu_miss VARCHAR(16)"))
    indexed = {i["name"] for table in ("calls", "turns") for i in inspect(conn).get_indexes(table)}
    for name, spec in KPI_INDEXES:
        if name not in indexed:
            conn.execute(text(f"CREATE INDEX {name} ON {spec}"))
    if fulltext_kind(conn) == "fts5" and not has_call_documents(conn):
        _call_documents(conn)
    _backfill_call_figures(conn)
    schema.kpi_hours.create(conn, checkfirst=True)
    schema.kpi_transfers.create(conn, checkfirst=True)
    kpistore.rebuild(conn)


def _backfill_call_figures(conn: Connection) -> None:
    """Calls stored before step 5: their reply latencies, no-inputs and caller negativity from their events
    (once per call, through the events' (call_id, seq) index). Their flow and NLU misses stay unknown."""
    c, e = schema.calls.c, schema.events.c

    def of_kind(kind: str, value: Any) -> Any:
        return select(value).where(e.call_id == c.id, e.type == kind).scalar_subquery()

    conn.execute(update(schema.calls).where(c.replies.is_(None)).values(
        replies=of_kind("reply_started", func.count()),
        reply_ms_total=of_kind("reply_started", func.coalesce(func.sum(e.data["latency_ms"].as_float()), 0.0)),
        no_inputs=of_kind("no_input", func.count()),
        negativity=of_kind("emotion", func.avg(e.data["negativity"].as_float()))))


CALL_DOCUMENT_WORDS = ", ".join(f"group_concat(CASE WHEN speaker {who} THEN text END, ' ')" for who in (
    "= 'caller'", "= 'agent'", "NOT IN ('caller', 'agent')"))


def _call_document(call_id: str) -> str:
    """The SELECT of a call's document: keyed by its first turn's id (stable, unlike a rowid of calls)."""
    where = f" WHERE call_id = {call_id}" if call_id else ""
    return f"SELECT min(id), call_id, {CALL_DOCUMENT_WORDS} FROM turns{where} GROUP BY call_id"


def _call_documents(conn: Connection) -> None:
    """SQLite with FTS5: the per-call full-text table, its triggers, and the documents of the calls stored."""
    t = CALL_FTS_TABLE
    insert = f"INSERT INTO {t}(rowid, call_id, caller, agent, other) "
    first_turn = "(SELECT min(id) FROM turns WHERE call_id = {})"
    for statement in (
        f"CREATE VIRTUAL TABLE {t} USING fts5(call_id UNINDEXED, caller, agent, other, "
        "tokenize='unicode61 remove_diacritics 2')",
        f"CREATE TRIGGER {t}_ai AFTER INSERT ON turns BEGIN "
        f"DELETE FROM {t} WHERE rowid = (SELECT min(id) FROM turns WHERE call_id = new.call_id AND id != new.id); "
        f"{insert}{_call_document('new.call_id')}; "
        "UPDATE calls SET doc_id = new.id WHERE id = new.call_id AND (doc_id IS NULL OR doc_id > new.id); END",
        f"CREATE TRIGGER {t}_au AFTER UPDATE OF text, speaker ON turns BEGIN "
        f"DELETE FROM {t} WHERE rowid = {first_turn.format('new.call_id')}; "
        f"{insert}{_call_document('new.call_id')}; END",
        f"CREATE TRIGGER {t}_ad AFTER DELETE ON turns BEGIN "
        f"DELETE FROM {t} WHERE rowid = old.id; DELETE FROM {t} WHERE rowid = {first_turn.format('old.call_id')}; "
        f"{insert}{_call_document('old.call_id')}; "
        f"UPDATE calls SET doc_id = {first_turn.format('old.call_id')} WHERE id = old.call_id AND doc_id = old.id; END",
        f"{insert}{_call_document('')}",
        f"UPDATE calls SET doc_id = {first_turn.format('calls.id')}",
    ):
        conn.execute(text(statement))


def _v6_review(conn: Connection) -> None:
    """Review at scale and QA: the calls' review columns, the sort indexes, saved searches, scorecards, reviews
    and comments (a new store has them from step 1)."""
    have = {c["name"] for c in inspect(conn).get_columns("calls")}
    for name, kind in (("reviewed_at", "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql"
                        else "DATETIME"), ("reviewed_by", "VARCHAR(80)"), ("score", "FLOAT")):
        if name not in have:
            conn.execute(text(f"ALTER TABLE calls ADD COLUMN {name} {kind}"))
    for index in (*schema.SORT_INDEXES, schema.TURN_SEARCH_INDEX):
        index.create(conn, checkfirst=True)
    for table in (schema.saved_searches, schema.scorecards, schema.reviews, schema.comments):
        table.create(conn, checkfirst=True)


def _v7_upset_calls(conn: Connection) -> None:
    """The live board's upset flag: each call's smoothed caller negativity and when it became upset (a new
    store has the columns from step 1)."""
    have = {c["name"] for c in inspect(conn).get_columns("calls")}
    for name, kind in (("smoothed_negativity", "FLOAT"), ("upset_at", "TIMESTAMP WITH TIME ZONE")):
        if name not in have:
            conn.execute(text(f"ALTER TABLE calls ADD COLUMN {name} {kind}"))


def _v8_labels(conn: Connection) -> None:
    """Supervisors' labels of caller turns (a new store has the table from step 1)."""
    schema.labels.create(conn, checkfirst=True)


def _v9_date_filter_index(conn: Connection) -> None:
    """The call list's count of a date range filtered by intent or emotion, read from one index (a new store has
    it from step 1)."""
    index = next(i for i in schema.calls.indexes if i.name == "ix_calls_started_intent_emotion")
    index.create(conn, checkfirst=True)


MIGRATIONS: list[tuple[int, str, Step]] = [
    (1, "calls, turns, events, recordings, users, web sessions, audit", _v1_initial),
    (2, "full-text index over turns: SQLite FTS5 table + triggers, PostgreSQL tsvector + GIN", _v2_fulltext),
    (3, "caller match by the last 4/7/10 digits; filter menu values table", _v3_caller_match_and_filter_values),
    (4, "webhook outbox: events to deliver, with leases, retries and a dead-letter state", _v4_outbox),
    (5, "dashboard figures per call, their sums by hour, NLU misses per turn; per-call search documents "
        "(SQLite); indexes for the list's filters", _v5_kpis_and_indexes),
    (6, "call review: sort and search indexes, saved searches, scorecards, reviews, comments", _v6_review),
    (7, "live supervision: calls.smoothed_negativity and calls.upset_at", _v7_upset_calls),
    (8, "labels: a supervisor's corrections of caller turns (transcript, intent, FAQ, emotion)", _v8_labels),
    (9, "index calls (started_at, id, intent, emotion): a date range's count by intent or emotion",
     _v9_date_filter_index),
]
LATEST = MIGRATIONS[-1][0]


def current_version(conn: Connection) -> int:
    if not inspect(conn).has_table("schema_version"):
        return 0
    versions = conn.execute(select(schema.schema_version.c.version)).scalars().all()
    return max(versions, default=0)


def migrate(engine: Engine) -> list[int]:
    """Bring the database to the latest schema; returns the versions applied now."""
    applied: list[int] = []
    with engine.begin() as conn:
        schema.schema_version.create(conn, checkfirst=True)
        version = current_version(conn)
        if version > LATEST:
            raise IvrError(f"the call store has schema version {version}, newer than this program's {LATEST}: "
                           "upgrade ivr-agent")
        for number, _what, step in MIGRATIONS:
            if number > version:
                step(conn)
                conn.execute(schema.schema_version.insert().values(version=number, applied_at=datetime.now(UTC)))
                applied.append(number)
    return applied
