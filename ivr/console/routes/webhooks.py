"""The console's Webhooks page, for the admin role: the outbox's dead-lettered, pending and delivered events
(ivr.store.outbox), and Retry for a dead-lettered one or all of them (each retry is written to the audit log).

Bodies are not shown: a ticket's excerpt is redacted, but the page lists deliveries, not calls."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ivr.console import views
from ivr.console.access import Console
from ivr.console.auth import WebSession
from ivr.console.params import MAX_LIMIT, MAX_OFFSET, int_param
from ivr.store import outbox

PAGE = 100
SHOWN = ("dead", "pending", "delivered", "all")


def register(app: FastAPI, console: Console) -> None:
    store = console.store

    @app.get("/admin/webhooks", response_class=HTMLResponse)
    def webhooks_page(request: Request, ws: WebSession = console.admin, message: str = "") -> Response:
        params = request.query_params
        shown = params.get("status") if params.get("status") in SHOWN else "dead"
        status = None if shown == "all" else shown
        offset = int_param(params, "offset", 0, 0, MAX_OFFSET)
        limit = int_param(params, "limit", PAGE, 1, MAX_LIMIT)
        counts = outbox.counts(store)
        rows = outbox.list_events(store, status=status, limit=limit, offset=offset)
        total = sum(counts.values()) if status is None else counts[status]
        return console.page(request, "webhooks.html", ws, rows=rows, counts=counts, shown=shown, shows=SHOWN,
                            message=message[:200], paging=views.paging(params, offset, limit, len(rows), total))

    def retry(user: str, event_id: str) -> int:
        """`event_id` back to pending if it is dead-lettered ("all": every dead-lettered event); audited."""
        if event_id == "all":
            count = outbox.retry(store)
        elif event_id.startswith("evt_"):
            count = outbox.retry(store, [event_id[:40]])
        else:
            return 0
        if count:
            store.audit(user, "webhook-retry", None, f"{count} event(s)" if event_id == "all" else event_id)
        return count

    @app.post("/admin/webhooks/retry")
    async def retry_webhooks(request: Request, ws: WebSession = console.admin_post) -> Response:
        form = await request.form()
        event_id = str(form.get("event_id") or "")
        count = await run_in_threadpool(retry, ws.user.name, event_id)
        message = f"{count} event(s) will be sent again" if count else "nothing to retry (not dead-lettered)"
        return RedirectResponse("/admin/webhooks?message=" + quote(message), status_code=303)
