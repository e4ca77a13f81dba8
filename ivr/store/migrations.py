"""Versioned schema migrations: an ordered list of steps, each applied once, recorded in schema_version.

A released step is never edited; a schema change is a new step (ALTER TABLE, new tables, data moves).
Step 1 creates the first schema; later steps are appended below it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, inspect, select

from ivr.errors import IvrError
from ivr.store import schema

Step = Callable[[Connection], None]


def _v1_initial(conn: Connection) -> None:
    tables = [t for t in schema.metadata.sorted_tables if t.name != "schema_version"]
    schema.metadata.create_all(conn, tables=tables)


MIGRATIONS: list[tuple[int, str, Step]] = [
    (1, "calls, turns, events, recordings, users, web sessions, audit", _v1_initial),
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
