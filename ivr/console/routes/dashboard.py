"""The KPI dashboard (supervisor and admin): a page of figures and SVG plots, and the same data as JSON.

Filters: `date_from`, `date_to` (YYYY-MM-DD, inclusive, UTC), `flow`, `queue` (a transfer target); what
each figure means is in ivr.console.kpis and said on the page.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from ivr.console import charts, kpis
from ivr.console.access import Console
from ivr.console.auth import WebSession
from ivr.console.params import date_param
from ivr.console.routes.calls import json_response

MAX_CHOICE_CHARS = 200


def filter_from(params: Mapping[str, str]) -> kpis.KpiFilter:
    """The dashboard's filter from query parameters (HTTPException 422 when one is bad)."""
    for name in ("flow", "queue"):
        if len(params.get(name) or "") > MAX_CHOICE_CHARS:
            raise HTTPException(422, f"{name} is at most {MAX_CHOICE_CHARS} characters")
    date_from, date_to = date_param(params, "date_from"), date_param(params, "date_to")
    if date_from and date_to and date_from > date_to:
        raise HTTPException(422, "date_from is after date_to")
    return kpis.KpiFilter(date_from, date_to, params.get("flow") or None, params.get("queue") or None)


def _percent(value: float) -> str:
    return f"{100 * value:.0f}%"


def _seconds(value: float) -> str:
    return f"{value:.0f} s"


def _ms(value: float) -> str:
    return f"{value:.0f} ms"


def _decimal(value: float) -> str:
    return f"{value:.2f}"


def _count(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _span_days(data: dict[str, Any], f: kpis.KpiFilter) -> int:
    """Over how many days the calls per hour are averaged: the filter's dates, else the days with calls."""
    days = [date.fromisoformat(d["day"]) for d in data["per_day"]]
    first = f.date_from or (min(days) if days else None)
    last = f.date_to or (max(days) if days else None)
    return (last - first).days + 1 if first and last else 1


def plots(data: dict[str, Any], f: kpis.KpiFilter) -> dict[str, Any]:
    """The page's charts from the dashboard data."""
    days = _span_days(data, f)
    per_day = data["per_day"]

    def trend(key: str, fmt: Any, top: float | None = None) -> dict[str, Any] | None:
        return charts.line_chart([(d["day"][5:], d[key]) for d in per_day], fmt, top)

    hourly = [(f"{h['hour']:02d}", h["calls"] / days) for h in data["per_hour_of_day"]]
    reasons = [(r["reason"], r["rate"] or 0.0) for r in data["transfer_reasons"]]
    return {"span_days": days, "per_hour": charts.bar_chart(hourly, _count),
            "hourly_rows": [(label, _count(v), h["calls"]) for (label, v), h in zip(hourly, data["per_hour_of_day"],
                                                                                      strict=True)],
            "reasons": charts.bar_chart(reasons, _percent) if reasons else None,
            "containment": trend("containment", _percent, 1.0), "handle": trend("handle_s", _seconds),
            "abandon": trend("abandon_rate", _percent, 1.0), "no_input": trend("no_input_rate", _percent, 1.0),
            "negativity": trend("negativity", _decimal, 1.0), "latency": trend("latency_ms", _ms)}


def register(app: FastAPI, console: Console) -> None:
    store = console.store

    @app.get("/dashboard", response_class=HTMLResponse)
    def dashboard_page(request: Request, ws: WebSession = console.supervisor) -> Response:
        f = filter_from(request.query_params)
        data = kpis.dashboard(store, f)
        return console.page(request, "dashboard.html", ws, data=data, plots=plots(data, f),
                            choices=kpis.choices(store), params=request.query_params, percent=_percent,
                            seconds=_seconds, ms=_ms, decimal=_decimal)

    @app.get("/api/dashboard")
    def dashboard_api(request: Request, ws: WebSession = console.supervisor) -> Response:
        return json_response(kpis.dashboard(store, filter_from(request.query_params)))
