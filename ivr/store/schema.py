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
    Column("negativity", Float, nullable=True),
    Column("upset_at", DateTime(timezone=True), nullable=True),
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
    Index("ix_turns_call_seq", "call_id", "seq"),
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
