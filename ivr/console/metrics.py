"""The console's own Prometheus metrics: requests by route template, method and status, and their latency.

GET /metrics needs no login (counts only, no personal data); the route label is the route's template
(`/calls/{call_id}`), never the path itself, so one series stands for every call page."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest

REQUESTS = Counter("ivr_console_requests_total", "Console HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("ivr_console_request_seconds", "Console request latency", ["route"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
UNMATCHED = "(unmatched)"


def install(app: FastAPI) -> None:
    """Counts every request of `app` and serves GET /metrics."""

    @app.middleware("http")
    async def count(request: Request, call_next: Callable[[Request], Any]) -> Response:
        started = time.perf_counter()
        status = 500
        try:
            response: Response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = getattr(request.scope.get("route"), "path", UNMATCHED)
            REQUESTS.labels(method=request.method, route=route, status=str(status)).inc()
            LATENCY.labels(route=route).observe(time.perf_counter() - started)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
