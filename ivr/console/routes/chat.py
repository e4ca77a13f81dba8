"""The text chat for a website's visitors: WS /chat/ws, POST /api/chat (one protocol: ivr.chat.protocol),
the embeddable widget (/static/chat-widget.js) and its demo page (GET /chat/demo).

No console login: anyone may chat, within the hub's limits (ivr.chat.hub). Chats are stored with source
"chat" and reviewed in the console like calls (the call list's Channel filter)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import Mapping, MutableMapping
from typing import Any

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ivr.chat.hub import ChatHub, messages_json
from ivr.chat.protocol import MAX_FRAME_BYTES, ProtocolError, parse
from ivr.console.access import Console
from ivr.console.guards import client_key

log = logging.getLogger(__name__)

PUSH_EVERY_S = 1.0
"""How often an open WebSocket looks for messages the user has not seen (a no-input reprompt, expiry)."""
MAX_ERRORS_IN_A_ROW = 10
"""A WebSocket that sends this many refused frames in a row is closed (1008)."""
SOCKETS_PER_CLIENT = 6
"""Open WebSockets per client address (and twice the hub's max_chats in all)."""
WS_POLICY_VIOLATION = 1008


def register(app: FastAPI, console: Console) -> None:
    """The routes over the app's chat hub (`app.state.chat`, made by create_app)."""
    hub: ChatHub = app.state.chat
    sockets: Counter[str] = Counter()

    @app.get("/chat/demo", response_class=HTMLResponse)
    def chat_demo(request: Request) -> Response:
        return console.page(request, "chat_demo.html", None)

    @app.post("/api/chat")
    async def chat_api(request: Request) -> Response:
        host = request.client.host if request.client else None
        try:
            check_origin(hub, request.headers, request.url.scheme)
            body = await read_body(request)
            return JSONResponse(await asyncio.to_thread(answer_http, hub, body, host))
        except ProtocolError as exc:
            headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s else None
            return JSONResponse(exc.to_json(), status_code=exc.http_status, headers=headers)

    @app.websocket("/chat/ws")
    async def chat_ws(ws: WebSocket) -> None:
        host = ws.client.host if ws.client else None
        client = client_key(host)
        await ws.accept()
        error = socket_refusal(hub, ws, sockets, client)
        if error is not None:
            await ws.send_json(error.to_json())
            await ws.close(WS_POLICY_VIOLATION)
            return
        sockets[client] += 1
        try:
            await ChatSocket(hub, ws, host).run()
        finally:
            sockets[client] -= 1
            if sockets[client] <= 0:
                del sockets[client]


def socket_refusal(hub: ChatHub, ws: WebSocket, sockets: Counter[str], client: str) -> ProtocolError | None:
    """Why a new WebSocket is refused (a foreign page, too many sockets from its address or in all), or None."""
    try:
        check_origin(hub, ws.headers, ws.url.scheme)
    except ProtocolError as refused:
        return refused
    if sockets[client] >= SOCKETS_PER_CLIENT:
        return ProtocolError("too_many_sessions", "too many open chat connections from this address")
    if sum(sockets.values()) >= 2 * hub.limits.max_chats:
        return ProtocolError("busy", "too many chats right now; try again later", 30)
    return None


def check_origin(hub: ChatHub, headers: Mapping[str, str], scheme: str) -> None:
    """ProtocolError when a browser page of a site the chat is not for (ChatLimits.origins) sends this."""
    own = ("https" if scheme in ("https", "wss") else "http") + "://" + headers.get("host", "")
    if not hub.limits.allows(headers.get("origin"), own):
        raise ProtocolError("forbidden_origin", "this chat is not offered to pages of that site")


async def read_body(request: Request) -> bytes:
    """The request body, refused past MAX_FRAME_BYTES without reading the rest."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FRAME_BYTES:
        raise ProtocolError("too_large", f"a request is at most {MAX_FRAME_BYTES} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FRAME_BYTES:
            raise ProtocolError("too_large", f"a request is at most {MAX_FRAME_BYTES} bytes")
    return body


def answer_http(hub: ChatHub, body: bytes, host: str | None) -> dict[str, Any]:
    """One HTTP request of the protocol: the chat's secret, id and messages after `after` (blocking)."""
    req = parse(body)
    hub.sweep()
    if req.type == "start":
        secret, chat = hub.start(host)
    elif req.type == "resume":
        raise ProtocolError("bad_request", "resume is for the WebSocket; over HTTP send poll with 'after'")
    else:
        secret = req.session
        if req.type == "message":
            chat = hub.send(secret, host, req.text)
        elif req.type == "end":
            chat = hub.end(secret)
        else:
            chat = hub.chat(secret)
    with chat.lock:
        messages = messages_json(chat.session.after(req.after))
        return {"session": secret, "chat": chat.session.chat_id, "ended": chat.session.ended,
                "messages": messages}


class ChatSocket:
    """One WebSocket: frames in, the chat's new messages out (also between frames, once a second)."""

    def __init__(self, hub: ChatHub, ws: WebSocket, host: str | None) -> None:
        self.hub, self.ws, self.host = hub, ws, host
        self.secret = ""
        self.sent = 0
        self.errors = 0
        self.done = False
        self._send_lock = asyncio.Lock()

    async def run(self) -> None:
        pusher = asyncio.create_task(self._push_regularly())
        try:
            while not self.done:
                frame = await self.ws.receive()
                if frame["type"] == "websocket.disconnect":
                    return
                await self._take(frame)
        except (WebSocketDisconnect, RuntimeError):
            return
        finally:
            pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pusher
            if self.done:
                with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                    await self.ws.close()

    async def _take(self, frame: MutableMapping[str, Any]) -> None:
        try:
            raw = frame.get("text")
            if raw is None:
                raise ProtocolError("bad_json", "send JSON in text frames")
            await self._handle(raw)
            self.errors = 0
        except ProtocolError as exc:
            self.errors += 1
            await self._send(exc.to_json())
            if self.errors >= MAX_ERRORS_IN_A_ROW:
                await self.ws.close(WS_POLICY_VIOLATION)
                self.done = True

    async def _handle(self, raw: str) -> None:
        req = parse(raw)
        if req.type in ("start", "resume") and self.secret:
            raise ProtocolError("bad_request", "this connection has a chat already")
        if req.type == "start":
            self.secret, chat = await asyncio.to_thread(self.hub.start, self.host)
            await self._send({"type": "started", "session": self.secret, "chat": chat.session.chat_id})
        elif req.type == "resume":
            chat = self.hub.chat(req.session)
            self.secret, self.sent = req.session, req.after
            await self._send({"type": "started", "session": self.secret, "chat": chat.session.chat_id})
        elif not self.secret:
            raise ProtocolError("no_session", "start a chat first: {\"type\": \"start\"}")
        elif req.type == "message":
            await asyncio.to_thread(self.hub.send, self.secret, self.host, req.text)
        elif req.type == "end":
            await asyncio.to_thread(self.hub.end, self.secret)
        elif req.type == "poll":
            self.sent = min(self.sent, req.after)
        await self._push()

    async def _push(self) -> None:
        """Send the chat's messages the client has not had; after the last one of an ended chat, close."""
        if not self.secret:
            return
        try:
            chat = self.hub.chat(self.secret)
        except ProtocolError as exc:
            await self._send(exc.to_json())
            self.done = True
            return
        ended = chat.session.ended  # before the messages: an ended chat's last message is in them
        new = messages_json(chat.session.after(self.sent))  # the list only grows: no lock on the event loop
        for message in new:
            await self._send(message)
            self.sent += 1
        if ended:
            self.done = True

    async def _push_regularly(self) -> None:
        while not self.done:
            await asyncio.sleep(PUSH_EVERY_S)
            await asyncio.to_thread(self.hub.sweep)
            await self._push()
            if self.done:
                with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                    await self.ws.close()

    async def _send(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            await self.ws.send_text(json.dumps(message))
