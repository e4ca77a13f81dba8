"""The call store: calls, turns, events and encrypted recordings in SQLite or PostgreSQL.

One `Store` per process; it is thread-safe (SQLAlchemy's pooled engine). Texts arrive here already
redacted (see ivr.store.writer); caller numbers never arrive in plain text at all, only as keyed hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Select,
    and_,
    create_engine,
    delete,
    event,
    func,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.sql.elements import ColumnElement, UnaryExpression
from sqlalchemy.sql.operators import custom_op
from sqlalchemy.sql.visitors import replacement_traverse

from ivr.call import privacy
from ivr.errors import IvrError
from ivr.store import schema, search
from ivr.store.config import StoreConfig
from ivr.store.files import private_dir, private_file, tighten
from ivr.store.migrations import (
    CALL_FTS_TABLE,
    FTS_TABLE,
    fulltext_kind,
    has_call_documents,
    migrate,
)
from models.atomicfile import atomic_write

log = logging.getLogger(__name__)

RECORDINGS_DIR = "recordings"
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def utc(value: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back: everything the store writes is UTC."""
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
            database = private_file(Path(parsed.database))  # 0600 before SQLite makes it with the umask
            for suffix in SQLITE_SIDE_FILES:  # SQLite gives these the database's mode when it makes them
                tighten(database.with_name(database.name + suffix))
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA secure_delete=ON")  # erased transcripts are overwritten in the file too
            cur.close()

        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = str(parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False))
    try:
        return create_engine(url, pool_pre_ping=True)
    except ModuleNotFoundError as exc:
        raise IvrError(f"database driver missing ({exc.name}): pip install 'ivr-agent[postgres]'") from None


@dataclass(frozen=True)
class CallFilter:
    """What the call list shows; every field optional."""

    date_from: date | None = None
    date_to: date | None = None
    outcome: str | None = None
    intent: str | None = None
    emotion: str | None = None
    escalated: bool | None = None
    caller: str | None = None  # a phone number in any form, or its last 2-4 digits
    text: str | None = None  # words from the transcript
    speaker: str | None = None  # whose turns `text` searches: caller, agent, or None (anyone)
    active: bool | None = None  # True: calls not ended yet
    source: str | None = None  # sim | sip | import | chat (the channel)
    reviewed: bool | None = None  # QA: True: calls a supervisor has reviewed
    score_min: float | None = None  # QA: the latest scorecard's score, 0-100
    score_max: float | None = None
    sort: str = "started_at"  # one of schema.SORT_COLUMNS (each indexed with the id, the tie-breaker)
    descending: bool = True
    limit: int = 100
    offset: int = 0


def started_between(date_from: date | None, date_to: date | None) -> list[ColumnElement[bool]]:
    """Calls started on the UTC days from `date_from` to `date_to`, both included (either may be open)."""
    c = schema.calls.c
    where: list[ColumnElement[bool]] = []
    if date_from:
        where.append(c.started_at >= datetime.combine(date_from, time.min, UTC))
    if date_to:
        where.append(c.started_at < datetime.combine(date_to + timedelta(days=1), time.min, UTC))
    return where


class Store(AbstractContextManager["Store"]):
    def __init__(self, config: StoreConfig, engine: Engine | None = None) -> None:
        self.config = config
        self.engine = engine or make_engine(config.db_url)
        migrate(self.engine)
        with self.engine.connect() as conn:
            self.fulltext = fulltext_kind(conn)
            self.call_documents = self.fulltext == "fts5" and has_call_documents(conn)
        """How the call list searches transcripts: 'fts5' (SQLite), 'tsvector' (PostgreSQL) or 'like'; with
        `call_documents`, FTS5 over one document per call (ivr.store.migrations.CALL_FTS_TABLE)."""
        self._pepper: bytes | None = None

    @classmethod
    def open(cls, db_url: str | None = None, data_dir: str | Path | None = None) -> Store:
        return cls(StoreConfig.from_env(db_url, data_dir))

    def close(self) -> None:
        """SQLite: the planner's statistics are brought up to date first (`PRAGMA optimize`, bounded by
        analysis_limit; under a second for 50k calls): without them it may start a filtered list from the
        wrong index (a week's angry balance calls: 81 -> 68 ms at 50k calls)."""
        if self.dialect == "sqlite":
            try:
                with self.engine.begin() as conn:
                    conn.execute(text("PRAGMA analysis_limit=1000"))
                    conn.execute(text("PRAGMA optimize"))
            except Exception as exc:  # noqa: BLE001 - statistics are an optimisation; closing goes on
                log.debug("store: PRAGMA optimize failed: %s", type(exc).__name__)
        self.engine.dispose()

    def __exit__(self, *exc: object) -> None:  # `with Store.open() as store:` (AbstractContextManager)
        self.close()

    def reachable(self) -> bool:
        """Whether the database answers a trivial query now (a readiness check)."""
        try:
            with self.engine.connect() as conn:
                conn.execute(select(literal_column("1")))
        except Exception:
            return False
        return True

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # ---- personal data ----------------------------------------------------------------------------

    def _key(self) -> bytes:
        return self.config.key()

    def caller_hash(self, number: str) -> str:
        if self._pepper is None:
            self._pepper = privacy.derive_pepper(self._key())
        return privacy.caller_hash(number, self._pepper)

    def redact(self, text: str) -> str:
        return privacy.redact_text(text) if self.config.redact else text

    # ---- writing calls -----------------------------------------------------------------------------

    def _suffix_hash(self, digits: str) -> str:
        """A keyed hash of the last digits of a number (the caller filter's match for 7 or 10 digits)."""
        self.caller_hash("0")  # the pepper
        assert self._pepper is not None
        return hmac.new(self._pepper, b"caller-suffix:" + digits.encode(), hashlib.sha256).hexdigest()

    def _caller_columns(self, caller: str | None) -> dict[str, str | None]:
        if not caller:
            return {}
        digits = re.sub(r"\D", "", privacy.normalize_number(caller))
        return {"caller_hash": self.caller_hash(caller), "caller_tail": privacy.caller_tail(caller),
                "caller_last4": digits[-4:] or None,
                "caller_hash7": self._suffix_hash(digits[-7:]) if len(digits) >= 7 else None,
                "caller_hash10": self._suffix_hash(digits[-10:]) if len(digits) >= 7 else None}

    def begin_call(self, conn: Connection, call_id: str, started_at: datetime, source: str,
                   caller: str | None = None, sample_rate_hz: int | None = None) -> None:
        """A new call row; a call with the same id is replaced (re-importing a directory is idempotent)."""
        self._delete_calls(conn, [call_id])
        conn.execute(schema.calls.insert().values(
            id=call_id, source=source, started_at=started_at, escalated=False, sample_rate_hz=sample_rate_hz,
            **self._caller_columns(caller)))

    def set_caller(self, conn: Connection, call_id: str, caller: str) -> None:
        conn.execute(update(schema.calls).where(schema.calls.c.id == call_id).values(**self._caller_columns(caller)))

    @staticmethod
    def note_filter_value(conn: Connection, name: str, value: str | None) -> None:
        """Remember a value for the call list's filter menus (outcome, intent, emotion)."""
        if not value:
            return
        fv = schema.filter_values
        value = value[:80]
        # known already, or two calls bringing the same new value at once: the insert is ignored, never an error
        if conn.dialect.name == "postgresql":
            conn.execute(pg_insert(fv).values(name=name, value=value).on_conflict_do_nothing())
        elif conn.dialect.name == "sqlite":
            conn.execute(sqlite_insert(fv).values(name=name, value=value).on_conflict_do_nothing())
        elif conn.execute(select(fv.c.value).where(and_(fv.c.name == name, fv.c.value == value))).first() is None:
            conn.execute(fv.insert().values(name=name, value=value))

    def attach_recording(self, conn: Connection, call_id: str, wav: Path, kind: str = "stereo") -> None:
        """Copy a finished recording into the store, encrypted (AES-256-GCM bound to the call id)."""
        plain = wav.read_bytes()
        digest = hashlib.sha256(plain).hexdigest()
        rel = Path(RECORDINGS_DIR) / f"{call_id}-{kind}.wav.enc"
        blob = privacy.encrypt(plain, self._key(), call_id.encode())
        private_dir(self.config.data_dir / RECORDINGS_DIR)
        atomic_write(self.config.data_dir / rel, blob, mode=0o600)
        conn.execute(delete(schema.recordings).where(and_(schema.recordings.c.call_id == call_id,
                                                          schema.recordings.c.kind == kind)))
        conn.execute(schema.recordings.insert().values(call_id=call_id, kind=kind, path=str(rel), sha256=digest,
                                                       encrypted=True, size_bytes=len(blob)))

    # ---- reading -----------------------------------------------------------------------------------

    def _where(self, f: CallFilter) -> list[ColumnElement[bool]]:
        c, t = schema.calls.c, schema.turns.c
        where = started_between(f.date_from, f.date_to)
        if f.outcome:
            where.append(c.outcome == f.outcome)
        if f.source:
            where.append(c.source == f.source)
        for column, turn_column, value in ((c.intent, t.intent, f.intent), (c.emotion, t.emotion, f.emotion)):
            if value:  # the call's value, or any turn's: "calls where the caller was angry" (the turns'
                # (intent|emotion, call_id) index gives the set once, not a lookup per call)
                where.append(or_(column == value, c.id.in_(select(t.call_id).where(turn_column == value))))
        if f.escalated is not None:
            where.append(c.escalated.is_(f.escalated))
        if f.active is not None:
            where.append(c.ended_at.is_(None) if f.active else c.ended_at.is_not(None))
        if f.caller and f.caller.strip():
            where.append(self._caller_condition(f.caller))
        if f.text and f.text.strip():
            where += search.text_conditions(self.fulltext, f.text, f.speaker, call_documents=self.call_documents)
        where += _review_conditions(f)
        return where

    def _caller_condition(self, caller: str) -> ColumnElement[bool]:
        """Any way of writing the number: '+1 555 010 4477', '(555) 010-4477', '5550104477', '010-4477'
        (the last 7 or 10 digits, by keyed hash), or its last 2 to 4 digits; a SIP URI by its full hash."""
        c = schema.calls.c
        digits = re.sub(r"\D", "", privacy.normalize_number(caller))
        if 1 <= len(digits) <= 2:
            return c.caller_tail == digits
        if len(digits) <= 4:
            return c.caller_last4.like("%" + digits) if len(digits) < 4 else c.caller_last4 == digits
        if len(digits) >= 10:
            return or_(c.caller_hash10 == self._suffix_hash(digits[-10:]), c.caller_hash == self.caller_hash(caller))
        if len(digits) >= 7:
            return or_(c.caller_hash7 == self._suffix_hash(digits[-7:]), c.caller_hash == self.caller_hash(caller))
        return c.caller_hash == self.caller_hash(caller)

    def _sorted_query(self, f: CallFilter) -> Select[Any]:
        if f.sort not in schema.SORT_COLUMNS:
            raise IvrError(f"the call list sorts by one of {', '.join(schema.SORT_COLUMNS)}")
        c = schema.calls.c
        keys = (c[f.sort], c.id)
        where = self._where(f)
        if self.dialect == "sqlite":
            where = [_checked_in_sort_index(condition, f.sort) for condition in where]
        return select(schema.calls).where(*where).order_by(*(key.desc() if f.descending else key.asc() for key in keys))

    def list_calls(self, f: CallFilter) -> list[dict[str, Any]]:
        query = self._sorted_query(f).limit(max(1, min(f.limit, 1000))).offset(max(0, f.offset))
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [_call_dict(dict(r)) for r in rows]

    def iter_calls(self, f: CallFilter, batch: int = 500,
                   columns: Sequence[str] | None = None) -> Iterator[Mapping[str, Any]]:
        """Every call that matches the filter, in its order (paging ignored), read `batch` rows at a time: for
        an export of the whole list (only `columns` of each, if given). The connection is held until the
        iterator is exhausted or closed."""
        query = self._sorted_query(f)
        if columns is not None:
            query = query.with_only_columns(*(schema.calls.c[name] for name in columns))
        with self.engine.connect() as conn:
            for row in conn.execution_options(yield_per=batch).execute(query).mappings():
                # with `columns`, the row as read (times may be naive UTC): no dict made per call
                yield _call_dict(dict(row)) if columns is None else cast(Mapping[str, Any], row)

    def count_calls(self, f: CallFilter | None = None) -> int:
        """How many calls match the filter (all calls without one); paging is ignored."""
        query = select(func.count()).select_from(schema.calls).where(*self._where(f or CallFilter()))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def get_call(self, call_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(schema.calls).where(schema.calls.c.id == call_id)).mappings().first()
            if row is None:
                return None
            call = _call_dict(dict(row))
            call["turns"] = [dict(r) for r in conn.execute(
                select(schema.turns).where(schema.turns.c.call_id == call_id).order_by(schema.turns.c.seq)
            ).mappings()]
            call["events"] = [{"t_ms": r["t_ms"], **(r["data"] or {}), "type": r["type"]} for r in conn.execute(
                select(schema.events).where(schema.events.c.call_id == call_id).order_by(schema.events.c.seq)
            ).mappings()]
            call["recordings"] = [dict(r) for r in conn.execute(
                select(schema.recordings).where(schema.recordings.c.call_id == call_id)).mappings()]
        return call

    def distinct_values(self, column: str) -> list[str]:
        """The values seen of outcome, intent or emotion (of calls and turns), for the filter menus: read
        from the small table the writer keeps, never by scanning calls or turns."""
        fv = schema.filter_values
        with self.engine.connect() as conn:
            return sorted(conn.execute(select(fv.c.value).where(fv.c.name == column)).scalars())

    def recording_path(self, call_id: str, kind: str = "stereo") -> tuple[Path, bool] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(schema.recordings).where(and_(
                schema.recordings.c.call_id == call_id, schema.recordings.c.kind == kind))).mappings().first()
        if row is None:
            return None
        return self.config.data_dir / row["path"], bool(row["encrypted"])

    def read_recording(self, call_id: str, kind: str = "stereo") -> bytes | None:
        """The plain WAV bytes (decrypted in memory; never written to disk in plain)."""
        found = self.recording_path(call_id, kind)
        if found is None or not found[0].exists():
            return None
        path, encrypted = found
        blob = path.read_bytes()
        return privacy.decrypt(blob, self._key(), call_id.encode()) if encrypted else blob

    # ---- deleting ----------------------------------------------------------------------------------

    def _delete_calls(self, conn: Connection, call_ids: list[str]) -> int:
        if not call_ids:
            return 0
        for path in conn.execute(select(schema.recordings.c.path).where(
                schema.recordings.c.call_id.in_(call_ids))).scalars():
            file = self.config.data_dir / path
            if file.exists():
                shred(file)
        # the outbox: its webhooks too; labels: what supervisors said of its turns; reviews and comments
        for table in (schema.recordings, schema.events, schema.turns, schema.outbox, schema.labels, schema.reviews,
                      schema.comments):
            conn.execute(delete(table).where(table.c.call_id.in_(call_ids)))
        result = conn.execute(delete(schema.calls).where(schema.calls.c.id.in_(call_ids)))
        return int(result.rowcount or 0)

    def delete_calls(self, call_ids: list[str]) -> int:
        with self.engine.begin() as conn:
            return self._delete_calls(conn, call_ids)

    def erase_caller(self, number: str, by: str = "cli") -> int:
        """GDPR erasure: every call of this caller number, with its turns, events and recordings."""
        digest = self.caller_hash(number)
        with self.engine.begin() as conn:
            ids = list(conn.execute(select(schema.calls.c.id).where(schema.calls.c.caller_hash == digest)).scalars())
            count = self._delete_calls(conn, ids)
            self._purge_index(conn)
            self._audit(conn, by, "erase-caller", None, f"{count} call(s)")
        return count

    def apply_retention(self, days: float, by: str = "retention") -> int:
        """Delete calls (and their audio) that started more than `days` ago."""
        cutoff = datetime.now(UTC) - timedelta(days=days)
        with self.engine.begin() as conn:
            ids = list(conn.execute(select(schema.calls.c.id).where(schema.calls.c.started_at < cutoff)).scalars())
            count = self._delete_calls(conn, ids)
            self._purge_index(conn)
            self._audit(conn, by, "retention", None, f"{count} call(s) older than {days:g} days")
        return count

    def _purge_index(self, conn: Connection) -> None:
        """FTS5 keeps deleted words in its segments until they are merged: merge now, after an erasure."""
        for table in (FTS_TABLE, CALL_FTS_TABLE) if self.fulltext == "fts5" else ():
            if table == FTS_TABLE or self.call_documents:
                conn.exec_driver_sql(f"INSERT INTO {table}({table}) VALUES ('optimize')")

    # ---- audit -------------------------------------------------------------------------------------

    @staticmethod
    def _audit(conn: Connection, user: str, action: str, call_id: str | None, detail: str | None = None) -> None:
        conn.execute(schema.audit.insert().values(at=datetime.now(UTC), user_name=user, action=action,
                                                  call_id=call_id, detail=detail))

    def audit(self, user: str, action: str, call_id: str | None = None, detail: str | None = None) -> None:
        with self.engine.begin() as conn:
            self._audit(conn, user, action, call_id, detail)

    def audit_log(self, limit: int = 500, call_id: str | None = None, offset: int = 0) -> list[dict[str, Any]]:
        query = select(schema.audit).order_by(schema.audit.c.id.desc()).limit(limit).offset(max(0, offset))
        if call_id:
            query = query.where(schema.audit.c.call_id == call_id)
        with self.engine.connect() as conn:
            return [{**dict(r), "at": utc(r["at"])} for r in conn.execute(query).mappings()]

    def count_audit(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(schema.audit)).scalar_one())


def unindexed(column: Any) -> Any:
    """SQLite's `+column`: the same value, but a term on it uses no index of its own (the planner then picks
    another way in). SQLite only: PostgreSQL has no unary plus on text."""
    return UnaryExpression(column, operator=custom_op("+"), type_=column.type)


def _checked_in_sort_index(condition: ColumnElement[bool], sort: str) -> ColumnElement[bool]:
    """SQLite without statistics takes any index on `outcome = ?` (or source, escalated, reviewed, score, a date
    range) as selective: it would read all 40,000 completed calls and sort them. Written `+outcome = ?`, the
    term uses no index of its own: SQLite walks the sort index, which holds these columns, and stops at the
    page's last row (a filter that matches nothing costs one pass over that index, never over the rows). So
    too `+id IN (calls whose transcript matches)`: not thousands of matching rows read and sorted."""
    names = {name for name in schema.SORT_INDEX_FILTERS if name != sort} | {"id"}

    def no_index(element: Any, **_kw: Any) -> Any:
        if isinstance(element, Column) and element.table is schema.calls and element.name in names:
            return unindexed(element)
        return None

    return replacement_traverse(condition, {}, no_index)


def _review_conditions(f: CallFilter) -> list[ColumnElement[bool]]:
    c = schema.calls.c
    where: list[ColumnElement[bool]] = []
    if f.reviewed is not None:
        where.append(c.reviewed_at.is_not(None) if f.reviewed else c.reviewed_at.is_(None))
    if f.score_min is not None:
        where.append(c.score >= f.score_min)
    if f.score_max is not None:
        where.append(c.score <= f.score_max)
    return where


def _call_dict(row: dict[str, Any]) -> dict[str, Any]:
    row["started_at"] = utc(row.get("started_at"))
    row["ended_at"] = utc(row.get("ended_at"))
    if "upset_at" in row:
        row["upset_at"] = utc(row["upset_at"])
    return row


def shred(path: Path) -> None:
    """Overwrite, then unlink (best effort on journaling file systems; the key is the real protection)."""
    try:
        size = path.stat().st_size
        with path.open("r+b") as f:
            f.write(b"\0" * size)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        log.warning("could not overwrite %s before deleting it: %s", path.name, exc)
    path.unlink(missing_ok=True)

