"""The call store's tables (SQLAlchemy Core): the same schema on SQLite and PostgreSQL.

Changes to these tables go in as a new step in ivr.store.migrations, never by editing a released one.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

calls = Table(
    "calls", metadata,
    Column("id", String(64), primary_key=True),
    Column("source", String(16), nullable=False, default="sim"),  # sim | sip | web | import | chat
    Column("started_at", DateTime(timezone=True), nullable=False, index=True),
    Column("ended_at", DateTime(timezone=True), nullable=True, index=True),
    Column("caller_hash", String(64), nullable=True, index=True),  # keyed hash of the number
    Column("caller_tail", String(4), nullable=True),  # last two digits, to tell callers apart
    Column("caller_last4", String(4), nullable=True, index=True),  # last four digits, for the caller filter only
    Column("caller_hash7", String(64), nullable=True, index=True),  # keyed hash of the last 7 digits
    Column("caller_hash10", String(64), nullable=True, index=True),  # keyed hash of the last 10 digits
    Column("outcome", String(32), nullable=True, index=True),
    Column("reason", String(200), nullable=True),  # escalation / end reason
    Column("transfer_target", String(200), nullable=True),
    Column("escalated", Boolean, nullable=False, default=False),
    Column("intent", String(80), nullable=True, index=True),  # last intent of the call
    Column("emotion", String(32), nullable=True, index=True),  # last emotion of the caller
    Column("node", String(80), nullable=True),  # current, then final, dialog node
    Column("last_text", Text, nullable=True),  # last utterance (redacted), for the live view
    Column("duration_ms", Float, nullable=True),
    Column("sample_rate_hz", Integer, nullable=True),
    Column("reviewed_at", DateTime(timezone=True), nullable=True),  # QA: when a supervisor reviewed the call
    Column("reviewed_by", String(80), nullable=True),
    Column("score", Float, nullable=True),  # QA: the latest scorecard's score, 0-100
    # live supervision (migration 7): the caller's smoothed negativity, and when the call became upset
    Column("smoothed_negativity", Float, nullable=True),
    Column("upset_at", DateTime(timezone=True), nullable=True),
    # for the KPI dashboard (migration 5), kept by the writer as the call goes on:
    Column("flow", String(80), nullable=True, index=True),  # the dialog flow's name
    Column("no_inputs", Integer, nullable=True),  # no-input timeouts (the agent asked and heard nothing)
    Column("replies", Integer, nullable=True),  # agent replies with a measured voice-to-voice latency
    Column("reply_ms_total", Float, nullable=True),  # their latencies added up (mean: reply_ms_total / replies)
    Column("negativity", Float, nullable=True),  # the caller turns' mean negativity, 0 (calm) to 1 (upset)
    Column("doc_id", Integer, nullable=True),  # SQLite: its search document's id (its first turn's), set by triggers
    Index("ix_calls_transfer_target", "transfer_target"),
    Index("ix_calls_started_id", "started_at", "id"),  # a page of the list: its ids from the index alone
    Index("ix_calls_id_filters", "id", "started_at", "source", "flow", "transfer_target"),  # turns -> their calls
    Index("ix_calls_outcome_escalated_started", "outcome", "escalated", "started_at"),
    Index("ix_calls_escalated_started", "escalated", "started_at"),
    Index("ix_calls_doc", "doc_id", "started_at", "id"),  # a word search's calls, their page, from the index alone
    # a date range with an intent or emotion filter: counted from the index alone (migration 9)
    Index("ix_calls_started_intent_emotion", "started_at", "id", "intent", "emotion"),
)

turns = Table(
    "turns", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_id", String(64), ForeignKey("calls.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("speaker", String(16), nullable=False),  # caller | agent
    Column("start_ms", Float, nullable=False),
    Column("end_ms", Float, nullable=True),
    Column("text", Text, nullable=False, default=""),
    Column("words", JSON, nullable=True),  # [{text, start_s, end_s, confidence}]
    Column("confidence", Float, nullable=True),
    Column("intent", String(80), nullable=True),
    Column("slots", JSON, nullable=True),
    Column("emotion", String(32), nullable=True),
    Column("emotion_scores", JSON, nullable=True),  # {label: score}
    Column("interrupted", Boolean, nullable=False, default=False),
    Column("nlu_miss", String(16), nullable=True),  # a caller turn not understood: out-of-scope | no-match
    Index("ix_turns_call_seq", "call_id", "seq"),
    Index("ix_turns_intent_call", "intent", "call_id"),
    Index("ix_turns_emotion_call", "emotion", "call_id"),
    Index("ix_turns_nlu_miss", "call_id", "speaker", "text", "nlu_miss", sqlite_where=text("nlu_miss IS NOT NULL"),
          postgresql_where=text("nlu_miss IS NOT NULL")),  # the few turns not understood, by call, their words too
)

events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_id", String(64), ForeignKey("calls.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("t_ms", Float, nullable=False),
    Column("type", String(40), nullable=False),
    Column("data", JSON, nullable=False),
    Index("ix_events_call_seq", "call_id", "seq"),
)

recordings = Table(
    "recordings", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_id", String(64), ForeignKey("calls.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("kind", String(16), nullable=False, default="stereo"),  # stereo: caller left, agent right
    Column("path", Text, nullable=False),  # relative to the store's data dir
    Column("sha256", String(64), nullable=False),  # of the plain WAV
    Column("encrypted", Boolean, nullable=False),
    Column("size_bytes", Integer, nullable=False),
)

users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(80), nullable=False, unique=True),
    Column("role", String(16), nullable=False),  # admin | supervisor
    Column("password_hash", String(256), nullable=False),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

web_sessions = Table(
    "web_sessions", metadata,
    Column("token_hash", String(64), primary_key=True),  # sha256 of the cookie value
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("csrf", String(64), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

audit = Table(
    "audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("user_name", String(80), nullable=False),
    Column("action", String(40), nullable=False),  # open | listen | export | login | erase ...
    Column("call_id", String(64), nullable=True, index=True),  # no foreign key: kept after erasure
    Column("detail", Text, nullable=True),
)

kpi_hours = Table(
    "kpi_hours", metadata,  # the dashboard's sums by hour, flow and queue, kept by the writer (see ivr.store.kpistore)
    Column("hour", String(13), primary_key=True),  # UTC, "2026-03-02 10"
    Column("flow", String(80), primary_key=True),  # "" when unknown
    Column("queue", String(200), primary_key=True),  # the transfer target, "" when not transferred
    Column("calls", Integer, nullable=False, default=0),  # started (live ones too)
    Column("ended", Integer, nullable=False, default=0),
    Column("transferred", Integer, nullable=False, default=0),
    Column("abandoned", Integer, nullable=False, default=0),
    Column("ended_no_input", Integer, nullable=False, default=0),  # ended because of no input
    Column("counted_no_input", Integer, nullable=False, default=0),  # ended calls whose no-inputs were counted
    Column("had_no_input", Integer, nullable=False, default=0),  # of those, with at least one
    Column("handle_ms", Float, nullable=False, default=0.0),
    Column("handled", Integer, nullable=False, default=0),  # ended calls with a duration
    Column("negativity_total", Float, nullable=False, default=0.0),
    Column("negativity_calls", Integer, nullable=False, default=0),
    Column("reply_ms_total", Float, nullable=False, default=0.0),
    Column("replies", Integer, nullable=False, default=0),
    sqlite_with_rowid=False,  # rows kept in key order: a date range reads them in place
)

kpi_transfers = Table(
    "kpi_transfers", metadata,  # transferred calls by UTC day, flow, queue and reason, kept by the writer
    Column("day", String(10), primary_key=True),  # "2026-03-02"
    Column("flow", String(80), primary_key=True),
    Column("queue", String(200), primary_key=True),
    Column("reason", String(200), primary_key=True),
    Column("calls", Integer, nullable=False, default=0),
    sqlite_with_rowid=False,
)

filter_values = Table(
    "filter_values", metadata,  # the call list's filter menus, kept by the writer (no scan of turns per page)
    Column("name", String(16), primary_key=True),  # outcome | intent | emotion
    Column("value", String(80), primary_key=True),
)

outbox = Table(
    "outbox", metadata,  # webhook events, written in the call update's transaction, delivered by ivr.store.outbox
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(40), nullable=False, unique=True),  # evt_...: the receiver's idempotency key
    Column("event_type", String(40), nullable=False),  # call.started | call.ended | ...
    Column("call_id", String(64), nullable=True, index=True),  # no foreign key: erasure deletes these rows itself
    Column("body", Text, nullable=False),  # the JSON body, as sent (and signed) on every attempt
    Column("status", String(16), nullable=False),  # pending | delivered | dead
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("claimed_until", DateTime(timezone=True), nullable=True),  # a worker's lease on the row
    Column("claimed_by", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    Column("last_status", Integer, nullable=True),  # the receiver's last HTTP status (None: no answer)
    Column("last_error", String(200), nullable=True),
    Index("ix_outbox_due", "status", "next_attempt_at"),
)

labels = Table(
    "labels", metadata,  # a supervisor's corrections of a caller turn: training data (ivr.store.labels)
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_id", String(64), ForeignKey("calls.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("turn_seq", Integer, nullable=False),  # the turn's seq in its call (stable; turn ids are not)
    Column("kind", String(16), nullable=False),  # transcript | intent | faq | emotion
    Column("value", Text, nullable=False),  # the right text (redacted), intent, FAQ entry id or emotion
    Column("previous", Text, nullable=True),  # what the turn had (intent, emotion; not the text)
    Column("user_name", String(80), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
)

SORT_COLUMNS = ("started_at", "duration_ms", "caller_tail", "source", "outcome", "intent", "emotion", "score",
                "reviewed_at")
"""The call list's sortable columns: each has an index on (column, id, ...), so a sorted page reads 100 entries."""
SORT_INDEX_FILTERS = ("started_at", "outcome", "source", "escalated", "reviewed_at", "score")
"""Filters the sort indexes carry after (column, id): SQLite checks them in the index, reading only the rows shown."""
SORT_INDEXES = tuple(Index(f"ix_calls_sort_{name}", calls.c[name], calls.c.id,
                           *(calls.c[f] for f in SORT_INDEX_FILTERS if f != name)) for name in SORT_COLUMNS)
TURN_SEARCH_INDEX = Index("ix_turns_search", turns.c.id, turns.c.speaker, turns.c.call_id)
"""Transcript search: a full-text match's turn id to its call and speaker without reading the turn's row."""

saved_searches = Table(
    "saved_searches", metadata,  # a user's named call list filters
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(80), nullable=False),
    Column("query", LargeBinary, nullable=False),  # the list's query string, encrypted (it may hold a number)
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("user_id", "name", name="uq_saved_searches_user_name"),
)

scorecards = Table(
    "scorecards", metadata,  # QA questions; never edited once made (reviews point at them): retired instead
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(80), nullable=False, unique=True),
    Column("questions", JSON, nullable=False),  # [{text, kind: yesno | scale5, weight}]
    Column("created_by", String(80), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
)

reviews = Table(
    "reviews", metadata,  # a filled scorecard of a call
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_id", String(64), ForeignKey("calls.id", ondelete="CASCADE"), nullable=False),
    Column("scorecard_id", Integer, ForeignKey("scorecards.id"), nullable=False),
    Column("reviewer", String(80), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("answers", JSON, nullable=False),  # one per question: true/false or 1-5
    Column("score", Float, nullable=False),
    Index("ix_reviews_call", "call_id", "id"),
)

comments = Table(
    "comments", metadata,  # supervisors' notes on a call
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_id", String(64), ForeignKey("calls.id", ondelete="CASCADE"), nullable=False),
    Column("author", String(80), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("text", Text, nullable=False),
    Index("ix_comments_call", "call_id", "id"),
)

schema_version = Table(
    "schema_version", metadata,
    Column("version", Integer, primary_key=True),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)
