"""Listening in: a live call's audio over a WebSocket, for the live board's and the call page's Listen button.

The call's process spools its audio (ivr.store.liveaudio); this socket tails the spool and sends it on:
first a JSON text message {"type": "format", "rate": 8000, "encoding": "s16le", "channels": 1}, then
binary messages of PCM16 mono (caller and agent mixed) as the call goes, and {"type": "ended"} when the
call has ended.

Access, as every call page: a supervisor's or admin's session cookie, and a page of this console: the
handshake is refused (HTTP 403) without a session, with another role, or from another site's page (its
Origin is not this console's), and the first message must be {"csrf": <the session's CSRF token>} (within
AUTH_WAIT_S) or the socket is closed (1008) before any audio is sent. Each listen is in the audit log.
"""

from __future__ import annotations

import asyncio
import json
import secrets

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from sqlalchemy import select

from ivr.console.access import SESSION_COOKIE, Console
from ivr.console.auth import ROLES, WebSession
from ivr.store import schema
from ivr.store.liveaudio import LiveTail

POLICY_VIOLATION = 1008
AUTH_WAIT_S = 5.0
POLL_S = 0.05
"""How often the spool is looked at for new audio (records come every 100 ms)."""
CHECK_ENDED_S = 1.0
START_WAIT_S = 10.0
"""How long a call's spool may bring no audio (a call just starting; a spool being started afresh) before the
socket gives up on it."""


def register(app: FastAPI, console: Console) -> None:
    @app.websocket("/api/live/{call_id}/listen")
    async def listen(ws: WebSocket, call_id: str) -> None:
        session = allowed(console, ws)
        if session is None:
            await ws.close(POLICY_VIOLATION)  # before accept: the handshake gets HTTP 403
            return
        await ws.accept()
        try:
            if not await csrf_ok(ws, session):
                await ws.close(POLICY_VIOLATION, "missing or wrong CSRF token")
                return
            if await asyncio.to_thread(ended, console, call_id):
                await ws.send_json({"type": "error", "detail": "no such call in progress"})
                await ws.close(1000)
                return
            await asyncio.to_thread(console.store.audit, session.user.name, "listen-live", call_id)
            await stream(console, ws, call_id)
        except WebSocketDisconnect:
            return


def allowed(console: Console, ws: WebSocket) -> WebSession | None:
    """The session of a supervisor or admin connecting from a page of this console, else None."""
    session = console.users.session(ws.cookies.get(SESSION_COOKIE))
    if session is None or session.user.role not in ROLES:
        return None
    own = ("https" if ws.url.scheme in ("https", "wss") else "http") + "://" + ws.headers.get("host", "")
    origin = ws.headers.get("origin", "")
    if not origin or not secrets.compare_digest(origin.rstrip("/"), own):
        return None
    return session


async def csrf_ok(ws: WebSocket, session: WebSession) -> bool:
    try:
        first = await asyncio.wait_for(ws.receive_text(), AUTH_WAIT_S)
        sent = json.loads(first).get("csrf")
    except (TimeoutError, ValueError, AttributeError, KeyError):
        return False
    return isinstance(sent, str) and bool(sent) and secrets.compare_digest(sent, session.csrf)


async def stream(console: Console, ws: WebSocket, call_id: str) -> None:
    """The call's audio from now until it ends (or the listener goes); a listener that falls behind skips
    ahead (LiveTail), so what it hears is never more than a moment old."""
    tail = LiveTail(console.store.config.data_dir, console.store.config.key(), call_id)
    rate = 0
    missing_s = since_check = 0.0
    try:
        while missing_s < START_WAIT_S:  # no audio for that long: the call's process is gone or never spooled
            records = await asyncio.to_thread(tail.read)
            missing_s = 0.0 if records else missing_s + POLL_S  # a live call spools every RECORD_MS, silence too
            for record_rate, pcm in records or []:
                if record_rate != rate:
                    rate = record_rate
                    await ws.send_json({"type": "format", "rate": rate, "encoding": "s16le", "channels": 1})
                await ws.send_bytes(pcm)
            await asyncio.sleep(POLL_S)
            since_check += POLL_S
            if since_check >= CHECK_ENDED_S or (records is None and rate):
                since_check = 0.0
                if await asyncio.to_thread(ended, console, call_id):
                    break
    finally:
        tail.close()
    await ws.send_json({"type": "ended"})
    await ws.close(1000)


def ended(console: Console, call_id: str) -> bool:
    """Whether the call has ended (or is gone): one indexed read, not the whole call."""
    c = schema.calls.c
    with console.store.engine.connect() as conn:
        row = conn.execute(select(c.ended_at).where(c.id == call_id)).first()
    return row is None or row.ended_at is not None
