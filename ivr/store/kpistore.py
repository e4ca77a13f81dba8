"""The dashboard's running sums: per UTC hour, flow and queue, what the calls added up to (kpi_hours), and the
transferred calls per day, flow, queue and reason (kpi_transfers).

The writer adds a call when it starts (calls) and when it ends (everything else, moved to its queue when
it was transferred); `rebuild` sums the stored calls again (migration 5, the benchmark's bulk fill). The
dashboard then reads at most a row per hour, flow and queue instead of every call. Imported recordings are
not counted (no agent served them). The sums hold no personal data, so erasing a caller's calls leaves
them as they are (as it leaves the audit log's counts).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, case, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.elements import ColumnElement

from ivr.store import schema

SUMS = ("calls", "ended", "transferred", "abandoned", "ended_no_input", "counted_no_input", "had_no_input",
        "handle_ms", "handled", "negativity_total", "negativity_calls", "reply_ms_total", "replies")
ABANDON_OUTCOMES = ("caller-hangup", "abandoned")
"""The caller hung up (a chat: was left) before the agent ended the call."""
TRANSFER_OUTCOME = "transferred"
NO_INPUT_REASON = "no-input"
NOT_COUNTED_SOURCES = ("import",)


def hour_of(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H")


def add(conn: Connection, hour: str, flow: str | None, queue: str | None, sums: dict[str, float]) -> None:
    """Add `sums` to a row of kpi_hours (made when missing)."""
    k = schema.kpi_hours
    key = {"hour": hour, "flow": (flow or "")[:80], "queue": (queue or "")[:200]}
    values = {name: sums.get(name, 0) for name in SUMS}
    if conn.dialect.name in ("sqlite", "postgresql"):
        insert = (sqlite_insert if conn.dialect.name == "sqlite" else pg_insert)(k).values(**key, **values)
        conn.execute(insert.on_conflict_do_update(index_elements=["hour", "flow", "queue"],
                                                  set_={n: k.c[n] + insert.excluded[n] for n in SUMS}))
        return
    where = and_(*(k.c[n] == v for n, v in key.items()))
    if conn.execute(update(k).where(where).values({n: k.c[n] + v for n, v in values.items()})).rowcount == 0:
        conn.execute(k.insert().values(**key, **values))


def add_transfer(conn: Connection, day: str, flow: str | None, queue: str | None, reason: str | None) -> None:
    """One more transferred call in kpi_transfers."""
    k = schema.kpi_transfers
    key = {"day": day, "flow": (flow or "")[:80], "queue": (queue or "")[:200], "reason": (reason or "")[:200]}
    if conn.dialect.name in ("sqlite", "postgresql"):
        insert = (sqlite_insert if conn.dialect.name == "sqlite" else pg_insert)(k).values(**key, calls=1)
        conn.execute(insert.on_conflict_do_update(index_elements=list(key), set_={"calls": k.c.calls + 1}))
        return
    where = and_(*(k.c[n] == v for n, v in key.items()))
    if conn.execute(update(k).where(where).values(calls=k.c.calls + 1)).rowcount == 0:
        conn.execute(k.insert().values(**key, calls=1))


def ended_sums(outcome: str, reason: str, duration_ms: float, no_inputs: int, negativity: float | None,
               replies: int, reply_ms_total: float) -> dict[str, float]:
    """What an ended call adds (its start was counted when it began)."""
    return {"ended": 1, "transferred": int(outcome == TRANSFER_OUTCOME),
            "abandoned": int(outcome in ABANDON_OUTCOMES), "ended_no_input": int(reason == NO_INPUT_REASON),
            "counted_no_input": 1, "had_no_input": int(no_inputs > 0), "handle_ms": duration_ms, "handled": 1,
            "negativity_total": negativity or 0.0, "negativity_calls": int(negativity is not None),
            "replies": replies, "reply_ms_total": reply_ms_total}


def _hour(dialect: str) -> ColumnElement[Any]:
    started = schema.calls.c.started_at
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", started), "YYYY-MM-DD HH24")
    return func.substr(started, 1, 13)  # SQLite keeps UTC times as 'YYYY-MM-DD HH:MM:SS.ffffff'


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def rebuild(conn: Connection) -> None:
    """kpi_hours summed again from the calls stored (one GROUP BY)."""
    c, k = schema.calls.c, schema.kpi_hours
    ended = c.ended_at.is_not(None)
    hour, flow, queue = _hour(conn.dialect.name), func.coalesce(c.flow, ""), func.coalesce(c.transfer_target, "")
    sums = [
        func.count(), _count_if(ended), _count_if(and_(ended, c.outcome == TRANSFER_OUTCOME)),
        _count_if(and_(ended, c.outcome.in_(ABANDON_OUTCOMES))), _count_if(and_(ended, c.reason == NO_INPUT_REASON)),
        _count_if(and_(ended, c.no_inputs.is_not(None))), _count_if(and_(ended, c.no_inputs > 0)),
        func.coalesce(func.sum(case((ended, c.duration_ms), else_=None)), 0.0),
        func.count(case((ended, c.duration_ms), else_=None)),
        func.coalesce(func.sum(case((ended, c.negativity), else_=None)), 0.0),
        func.count(case((ended, c.negativity), else_=None)),
        func.coalesce(func.sum(case((ended, c.reply_ms_total), else_=None)), 0.0),
        func.coalesce(func.sum(case((ended, c.replies), else_=None)), 0)]
    query = (select(hour, flow, queue, *sums).where(c.source.not_in(NOT_COUNTED_SOURCES))
             .group_by(hour, flow, queue))
    conn.execute(k.delete())
    conn.execute(k.insert().from_select(["hour", "flow", "queue", *SUMS], query))
    day, reason = func.substr(hour, 1, 10), func.coalesce(c.reason, "")
    transfers = (select(day, flow, queue, reason, func.count())
                 .where(c.source.not_in(NOT_COUNTED_SOURCES), ended, c.outcome == TRANSFER_OUTCOME)
                 .group_by(day, flow, queue, reason))
    conn.execute(schema.kpi_transfers.delete())
    conn.execute(schema.kpi_transfers.insert().from_select(["day", "flow", "queue", "reason", "calls"], transfers))
