"""The dashboard's figures, aggregated in the database (GROUP BY), never by reading every call here.

Over the calls the agent served (imported recordings are left out: no agent served them) that match a
filter (start date range, flow, queue = the transfer target), by day and by hour of the day (UTC), read
from the sums the writer keeps by hour (ivr.store.kpistore), never from every call:
  calls;  contained: ended without a transfer to a person;  transferred, by reason;
  abandoned: the caller hung up (a chat: left) before the agent ended the call;
  no-input: at least one no-input timeout (the agent asked and heard nothing);
  handle time: start to end of an ended call;  caller negativity: the mean over the calls' caller turns
  (0 calm, 1 upset);  voice-to-voice latency: end of the caller's turn to the agent's first audio;
  the phrases most often not understood (caller turns the dialog could not place: out-of-scope/no-match).
Rates are over the ended calls; the per-call figures the writer keeps since migration 5 (flow, no-inputs,
latencies, negativity, NLU misses) are over the calls that have them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, func, literal_column, select
from sqlalchemy.sql.elements import ColumnElement

from ivr.store import Store, schema
from ivr.store.db import started_between, unindexed
from ivr.store.kpistore import SUMS

TOP_PHRASES = 10


@dataclass(frozen=True)
class KpiFilter:
    date_from: date | None = None
    date_to: date | None = None
    flow: str | None = None
    queue: str | None = None
    """A transfer target: the calls transferred to it."""


def _where(f: KpiFilter, sqlite: bool = False) -> list[ColumnElement[bool]]:
    """The filter on calls (no condition on their source: the writer marks no misses in imports). With
    `sqlite`, flow and queue are written `+flow = ?`: SQLite then takes the turns not understood (a few, in
    their own index) and checks each one's call, instead of every turn of every call of the flow (28 -> 11 ms
    at 50k calls)."""
    c = schema.calls.c
    where = started_between(f.date_from, f.date_to)
    for column, value in ((c.flow, f.flow), (c.transfer_target, f.queue)):
        if value:
            where.append((unindexed(column) if sqlite else column) == value)
    return where


def _hours_where(f: KpiFilter) -> list[ColumnElement[bool]]:
    k = schema.kpi_hours.c
    where: list[ColumnElement[bool]] = []
    if f.date_from:
        where.append(k.hour >= f"{f.date_from.isoformat()} 00")
    if f.date_to:
        where.append(k.hour <= f"{f.date_to.isoformat()} 23")
    if f.flow:
        where.append(k.flow == f.flow)
    if f.queue:
        where.append(k.queue == f.queue)
    return where


def _per_day(conn: Connection, f: KpiFilter) -> list[dict[str, Any]]:
    """Every sum by UTC day, from the writer's sums by hour (kpi_hours)."""
    k = schema.kpi_hours.c
    day = func.substr(k.hour, 1, 10)
    query = (select(day.label("day"), *(func.sum(k[name]).label(name) for name in SUMS))
             .where(*_hours_where(f)).group_by(day).order_by(day))
    return [dict(r) for r in conn.execute(query).mappings()]


def _per_hour_of_day(conn: Connection, f: KpiFilter) -> list[int]:
    """Calls by hour of the day (UTC), 0 to 23."""
    k = schema.kpi_hours.c
    hour = func.substr(k.hour, 12, 2)
    calls = [0] * 24
    for at, n in conn.execute(select(hour, func.sum(k.calls)).where(*_hours_where(f)).group_by(hour)):
        calls[int(at)] = int(n or 0)
    return calls


def _add(into: dict[str, Any], row: dict[str, Any]) -> None:
    for key in SUMS:
        into[key] = (into.get(key) or 0) + (row[key] or 0)


def _ratio(part: float, whole: float, scale: float = 1.0) -> float | None:
    return round(scale * part / whole, 4) if whole else None


def _figures(s: dict[str, Any]) -> dict[str, Any]:
    """The rates and means of summed counts."""
    ended = s.get("ended") or 0
    return {"calls": s.get("calls") or 0, "ended": ended,
            "containment": _ratio(ended - (s.get("transferred") or 0), ended),
            "transfer_rate": _ratio(s.get("transferred") or 0, ended),
            "abandon_rate": _ratio(s.get("abandoned") or 0, ended),
            "no_input_rate": _ratio(s.get("had_no_input") or 0, s.get("counted_no_input") or 0),
            "ended_by_no_input_rate": _ratio(s.get("ended_no_input") or 0, ended),
            "handle_s": _ratio(s.get("handle_ms") or 0, s.get("handled") or 0, 0.001),
            "negativity": _ratio(s.get("negativity_total") or 0, s.get("negativity_calls") or 0),
            "latency_ms": _ratio(s.get("reply_ms_total") or 0, s.get("replies") or 0),
            "replies": s.get("replies") or 0}


def _reasons(conn: Connection, f: KpiFilter, ended: int) -> list[dict[str, Any]]:
    """Transferred calls by reason, from the writer's sums by day (kpi_transfers)."""
    k = schema.kpi_transfers.c
    where: list[ColumnElement[bool]] = []
    if f.date_from:
        where.append(k.day >= f.date_from.isoformat())
    if f.date_to:
        where.append(k.day <= f.date_to.isoformat())
    if f.flow:
        where.append(k.flow == f.flow)
    if f.queue:
        where.append(k.queue == f.queue)
    calls = func.sum(k.calls)
    query = select(k.reason, calls.label("calls")).where(*where).group_by(k.reason).order_by(calls.desc(), k.reason)
    return [{"reason": r["reason"] or "(none given)", "calls": r["calls"], "rate": _ratio(r["calls"], ended)}
            for r in conn.execute(query).mappings()]


def _phrases(conn: Connection, f: KpiFilter, sqlite: bool) -> list[dict[str, Any]]:
    """The caller turns most often not understood, the same words counted together (case aside)."""
    c, t = schema.calls.c, schema.turns.c
    phrase = func.lower(func.trim(t.text))
    query = (select(phrase.label("phrase"), func.count().label("turns"))
             .where(t.nlu_miss.is_not(None), t.speaker == "caller")
             .group_by(literal_column("phrase")).order_by(func.count().desc(), literal_column("phrase"))
             .limit(TOP_PHRASES))
    if f != KpiFilter():  # the calls' dates, flow or queue: through the calls (the writer marks no misses in imports)
        query = query.select_from(schema.turns.join(schema.calls, t.call_id == c.id)).where(*_where(f, sqlite))
    return [dict(r) for r in conn.execute(query).mappings()]


def dashboard(store: Store, f: KpiFilter) -> dict[str, Any]:
    """Everything the dashboard shows, as JSON-ready data."""
    with store.engine.connect() as conn:
        days = _per_day(conn, f)
        hours = _per_hour_of_day(conn, f)
        total: dict[str, Any] = {}
        for row in days:  # a row a day: the writer and the database did the counting
            _add(total, row)
        figures = _figures(total)
        reasons = _reasons(conn, f, figures["ended"])
        phrases = _phrases(conn, f, store.dialect == "sqlite")
    return {"filter": {"date_from": f.date_from.isoformat() if f.date_from else None,
                       "date_to": f.date_to.isoformat() if f.date_to else None, "flow": f.flow, "queue": f.queue},
            "totals": figures, "per_hour_of_day": [{"hour": h, "calls": n} for h, n in enumerate(hours)],
            "days_with_calls": len(days), "per_day": [{"day": d["day"], **_figures(d)} for d in days],
            "transfer_reasons": reasons, "not_understood": phrases}


def choices(store: Store) -> dict[str, list[str]]:
    """The flows and queues to filter by (from the small table of sums, not the calls)."""
    k = schema.kpi_hours.c
    with store.engine.connect() as conn:
        return {name: sorted(v for v in conn.execute(select(col).distinct().where(col != "")).scalars() if v)
                for name, col in (("flow", k.flow), ("queue", k.queue))}
