"""Talk to the agent in the browser: the web call page, and the offer/answer exchange that starts a call.

The page (supervisor role) sends its complete WebRTC offer as JSON with the session's CSRF token; the answer
comes back whole (non-trickle ICE). The call itself then runs over the peer connection
(ivr.webcall: microphone in, the agent out, the call's events on the data channel).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from ivr.console.access import Console
from ivr.console.auth import WebSession
from ivr.webcall.calls import WebCalls, WebCallsBusy
from models.errors import AgentError
from telephony.webrtc import OfferError

MAX_SDP_CHARS = 64_000


def register(app: FastAPI, console: Console) -> None:
    webcalls: WebCalls = app.state.webcalls

    @app.get("/webcall", response_class=HTMLResponse)
    def webcall_page(request: Request, ws: WebSession = console.supervisor) -> Response:
        return console.page(request, "webcall.html", ws, ice=json.dumps(webcalls.settings.webrtc.for_browser()),
                            loaded=webcalls.loaded)

    @app.post("/api/webcall/offer")
    async def webcall_offer(request: Request, ws: WebSession = console.supervisor_post) -> dict[str, Any]:
        sdp, kind = await _offer(request)
        try:
            answer = await webcalls.start(sdp, kind)
        except OfferError as exc:
            raise HTTPException(400, str(exc)) from None
        except WebCallsBusy as exc:
            raise HTTPException(503, str(exc)) from None
        except AgentError as exc:  # a model missing, aiortc not installed: one line, no traceback
            raise HTTPException(503, f"the agent cannot take calls: {exc}") from None
        console.store.audit(ws.user.name, "webcall", answer["call_id"])
        return answer


async def _offer(request: Request) -> tuple[str, str]:
    try:
        body = await request.json()
    except ValueError:
        raise HTTPException(400, "the body is a JSON object: {\"sdp\": ..., \"type\": \"offer\"}") from None
    if not isinstance(body, dict):
        raise HTTPException(400, "the body is a JSON object: {\"sdp\": ..., \"type\": \"offer\"}")
    sdp, kind = body.get("sdp"), body.get("type")
    if not isinstance(sdp, str) or not sdp or len(sdp) > MAX_SDP_CHARS or kind != "offer":
        raise HTTPException(400, f"sdp is the offer's SDP (at most {MAX_SDP_CHARS} characters), type is \"offer\"")
    return sdp, kind
