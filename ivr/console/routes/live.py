"""The live calls: a page, and a server-sent event stream of the active calls while it is open.

Each call says when it started (`started_ms`, for the page's ticking elapsed time), whether its caller is
upset (ivr.store.upset: `upset`, `negativity`) and whether its audio can be listened to live
(`listen`: its process spools it, ivr.store.liveaudio; the socket is ivr.console.routes.listen). A `now`
event after each update gives the server's clock, so the elapsed times do not depend on the browser's.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from ivr.console import views
from ivr.console.access import Console
from ivr.console.auth import WebSession
from ivr.store import CallFilter
from ivr.store.liveaudio import is_spooling

LIVE_POLL_S = 1.0
LIVE_STREAM_MAX_S = 300.0


def register(app: FastAPI, console: Console) -> None:
    store = console.store

    def live_snapshot() -> list[dict[str, Any]]:
        rows = store.list_calls(CallFilter(active=True, limit=200))
        return [{"id": c["id"], "started_at": views.utc_time(c["started_at"]), "node": c.get("node") or "",
                 "last_text": c.get("last_text") or "", "emotion": c.get("emotion") or "",
                 "intent": c.get("intent") or "", "source": c.get("source"), **supervision(c)} for c in rows]

    def supervision(call: dict[str, Any]) -> dict[str, Any]:
        negativity = call.get("smoothed_negativity")
        return {"started_ms": int(call["started_at"].timestamp() * 1000), "upset": call.get("upset_at") is not None,
                "negativity": round(negativity, 2) if negativity is not None else None,
                "listen": is_spooling(store.config.data_dir, call["id"])}

    @app.get("/live", response_class=HTMLResponse)
    def live_page(request: Request, ws: WebSession = console.supervisor) -> Response:
        return console.page(request, "live.html", ws, calls=live_snapshot())

    @app.get("/api/live")
    async def live_stream(request: Request, once: bool = False, ws: WebSession = console.supervisor) -> Response:
        async def stream() -> AsyncIterator[str]:
            waited = 0.0
            last = None
            while waited < LIVE_STREAM_MAX_S:
                snapshot = await asyncio.to_thread(live_snapshot)
                data = json.dumps(snapshot)
                if data != last:
                    yield f"event: calls\ndata: {data}\n\n"
                    last = data
                else:  # nothing changed: say when it was checked (the page's clock goes on)
                    yield f"event: checked\ndata: {json.dumps(views.utc_time(datetime.now(UTC)))}\n\n"
                yield f"event: now\ndata: {int(datetime.now(UTC).timestamp() * 1000)}\n\n"
                if once or await request.is_disconnected():
                    return
                await asyncio.sleep(LIVE_POLL_S)
                waited += LIVE_POLL_S
        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
