"""`ivr console`: the supervisor web app (FastAPI, server-rendered Jinja2 pages, a little vanilla JS).

Access: every route but /login and /static needs a session; call review needs the supervisor or
admin role, user management the admin role. Logged out: pages redirect to the login page (the API: 401);
wrong role: 403; a POST without the session's CSRF token: 403. Every opening, listening and
export of a call is written to the audit log. Cookies: HttpOnly, SameSite=Strict, Secure over HTTPS.

Logins: password hashing runs in a few worker threads of its own (ivr.console.guards), never on the
event loop; one client address gets a few attempts a minute (then 429 with Retry-After); a wrong
password, an unknown user and a locked account all get the same answer.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import secrets
import zipfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ivr.console import views, webhooks
from ivr.console.auth import DEFAULT_ROLE, ROLES, User, Users, WebSession
from ivr.console.guards import BUSY_RETRY_AFTER_S, GateFull, HashGate, LoginThrottle, client_key
from ivr.console.metrics import install as install_metrics
from ivr.console.params import MAX_LIMIT, MAX_OFFSET, filter_from, int_param
from ivr.store import CallFilter, Store
from models.errors import AgentError

HERE = Path(__file__).parent
SESSION_COOKIE = "ivr_session"
LOGIN_CSRF_COOKIE = "ivr_login_csrf"
PUBLIC_PATHS = ("/login", "/static", "/healthz", "/metrics")
LIVE_POLL_S = 1.0
AUDIT_PAGE = 100
LIVE_STREAM_MAX_S = 300.0
RANGE = re.compile(r"bytes=(\d{0,15})-(\d{0,15})")  # a byte range; longer numbers are no range at all
LOGIN_FAILED = ("Wrong user name or password. After 5 failed logins an account is locked for 15 minutes: "
                "then wait, or ask an admin to set a new password.")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "media-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
                               "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def _json_default(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _safe_next(value: str | None) -> str:
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/calls"


def create_app(store: Store, secure_cookies: bool = False, throttle: LoginThrottle | None = None,
               gate: HashGate | None = None) -> FastAPI:
    """The console app over a store; `secure_cookies` forces the Secure flag (e.g. behind a TLS proxy).
    `throttle`: login attempts per client address; `gate`: where password hashes run (defaults of guards)."""
    throttle = throttle or LoginThrottle()
    gate = gate or HashGate()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        gate.close()

    app = FastAPI(title="ivr console", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    install_metrics(app)
    templates = Jinja2Templates(directory=str(HERE / "templates"))  # autoescape is on for .html
    templates.env.filters["clock"] = views.clock
    templates.env.filters["utc_time"] = views.utc_time
    users = Users(store)
    app.state.store = store
    app.state.users = users
    app.state.throttle = throttle
    app.state.gate = gate
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    def is_secure(request: Request) -> bool:
        return secure_cookies or request.url.scheme == "https"

    @app.middleware("http")
    async def headers(request: Request, call_next: Callable[[Request], Any]) -> Response:
        response: Response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.url.path.startswith("/static"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        target = request.url.path + ("?" + request.url.query if request.url.query else "")
        login_url = "/login?next=" + quote(target)
        if exc.status_code == 401 and request.method == "GET":
            return RedirectResponse(login_url, status_code=303)
        context = {"status": exc.status_code, "detail": exc.detail, "session": session_of(request),
                   "login_url": login_url}
        return templates.TemplateResponse(request, "error.html", context, status_code=exc.status_code,
                                          headers=exc.headers)

    # ---- access ----------------------------------------------------------------------------------

    def session_of(request: Request) -> WebSession | None:
        return users.session(request.cookies.get(SESSION_COOKIE))

    def need(role: str) -> Callable[[Request], WebSession]:
        def dependency(request: Request) -> WebSession:
            ws = session_of(request)
            if ws is None:
                raise HTTPException(401, "log in first")
            if role == "admin" and not ws.user.is_admin:
                raise HTTPException(403, "this needs the admin role")
            if role == "supervisor" and ws.user.role not in ROLES:
                raise HTTPException(403, "this needs the supervisor role")
            return ws
        return dependency

    def need_post(role: str) -> Callable[[Request], Any]:
        check = need(role)

        async def dependency(request: Request) -> WebSession:
            ws = check(request)
            form = await request.form()
            sent = str(form.get("csrf") or request.headers.get("x-csrf-token") or "")
            if not sent or not secrets.compare_digest(sent, ws.csrf):
                raise HTTPException(403, "missing or wrong CSRF token")
            return ws
        return dependency

    supervisor = Depends(need("supervisor"))
    admin = Depends(need("admin"))
    supervisor_post = Depends(need_post("supervisor"))
    admin_post = Depends(need_post("admin"))

    def page(request: Request, name: str, ws: WebSession | None, status: int = 200, **context: Any) -> Response:
        return templates.TemplateResponse(request, name, {"session": ws, **context}, status_code=status)

    def get_call_or_404(call_id: str) -> dict[str, Any]:
        call = store.get_call(call_id)
        if call is None:
            raise HTTPException(404, "no such call")
        return call

    # ---- login -----------------------------------------------------------------------------------

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    def login_page(request: Request, nxt: str, error: str = "", status: int = 200,
                   headers: dict[str, str] | None = None) -> Response:
        token = secrets.token_urlsafe(32)
        response = page(request, "login.html", None, status=status, csrf=token, next=nxt, error=error)
        response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=is_secure(request),
                            max_age=3600)
        response.headers.update(headers or {})
        return response

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/calls", error: str = "") -> Response:
        return login_page(request, _safe_next(next), error[:200])

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        sent, expected = str(form.get("csrf") or ""), request.cookies.get(LOGIN_CSRF_COOKIE) or ""
        if not sent or not expected or not secrets.compare_digest(sent, expected):
            raise HTTPException(403, "missing or wrong CSRF token: reload the login page")
        name, password = str(form.get("username") or ""), str(form.get("password") or "")
        nxt = _safe_next(str(form.get("next") or ""))
        wait_s = throttle.hit(client_key(request.client.host if request.client else None))
        if wait_s:
            return login_page(request, nxt, f"Too many login attempts from your address: try again in {wait_s} s.",
                              429, {"Retry-After": str(wait_s)})
        try:
            user, why = await gate.run(users.authenticate, name, password)
        except GateFull:
            return login_page(request, nxt, "The console is busy: try again in a few seconds.", 503,
                              {"Retry-After": str(BUSY_RETRY_AFTER_S)})
        if user is None:
            await run_in_threadpool(store.audit, name[:80] or "?", "login-failed", None, why)
            return login_page(request, nxt, LOGIN_FAILED, 401)  # the same whether unknown, wrong or locked
        token = await run_in_threadpool(start_session, user)
        response = RedirectResponse(nxt, status_code=303)
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", secure=is_secure(request),
                            path="/")
        response.delete_cookie(LOGIN_CSRF_COOKIE)
        return response

    def start_session(user: User) -> str:
        store.audit(user.name, "login")
        return users.start_session(user)

    @app.post("/logout")
    def logout(request: Request, ws: WebSession = supervisor_post) -> Response:
        users.end_session(request.cookies.get(SESSION_COOKIE))
        store.audit(ws.user.name, "logout")
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # ---- calls -----------------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    def home(ws: WebSession = supervisor) -> Response:
        return RedirectResponse("/calls", status_code=303)

    @app.get("/calls", response_class=HTMLResponse)
    def calls_page(request: Request, ws: WebSession = supervisor) -> Response:
        params = request.query_params
        f = filter_from(params)
        calls = store.list_calls(f)
        choices = {col: store.distinct_values(col) for col in ("outcome", "intent", "emotion")}
        return page(request, "calls.html", ws, calls=calls, params=params, choices=choices,
                    paging=views.paging(params, f.offset, f.limit, len(calls), store.count_calls(f)))

    @app.get("/api/calls")
    def calls_api(request: Request, ws: WebSession = supervisor) -> Response:
        f = filter_from(request.query_params)
        calls = store.list_calls(f)
        body = {"calls": calls, "total": store.count_calls(f), "offset": f.offset, "limit": f.limit}
        return Response(json.dumps(body, default=_json_default), media_type="application/json")

    @app.get("/calls/{call_id}", response_class=HTMLResponse)
    def call_page(request: Request, call_id: str, ws: WebSession = supervisor) -> Response:
        call = get_call_or_404(call_id)
        store.audit(ws.user.name, "open", call_id)
        plot = views.emotion_plot(call["turns"], call.get("duration_ms"))
        intents = [t for t in call["turns"] if t.get("intent")]
        events = [{**e, "summary": views.event_summary(e)} for e in call["events"]]
        return page(request, "call.html", ws, call=call, plot=plot, intents=intents, events=events,
                    has_audio=bool(call["recordings"]), speakers_from=views.speakers_from(call["events"]))

    @app.get("/api/calls/{call_id}/progress")
    def call_progress(call_id: str, after: int = 0, ws: WebSession = supervisor) -> Response:
        """A live call's new turns (after the first `after`) and state, for its open page (audited on opening)."""
        call = get_call_or_404(call_id)
        turns = [{"speaker": t["speaker"], "text": t["text"], "start_ms": t["start_ms"],
                  "clock": views.clock(t["start_ms"]), "intent": t.get("intent") or "",
                  "emotion": t.get("emotion") or ""}
                 for t in call["turns"][max(0, after):]]
        body = {"ended": call["ended_at"] is not None, "outcome": call.get("outcome") or "", "node": call.get("node"),
                "turns": turns}
        return Response(json.dumps(body, default=_json_default), media_type="application/json")

    @app.get("/api/calls/{call_id}")
    def call_api(call_id: str, ws: WebSession = supervisor) -> Response:
        call = get_call_or_404(call_id)
        store.audit(ws.user.name, "open", call_id, "api")
        return Response(json.dumps(call, default=_json_default), media_type="application/json")

    def recording_or_404(call_id: str) -> bytes:
        get_call_or_404(call_id)
        try:
            wav = store.read_recording(call_id)
        except AgentError as exc:
            raise HTTPException(500, str(exc)) from None
        if wav is None:
            raise HTTPException(404, "this call has no recording")
        return wav

    @app.get("/api/calls/{call_id}/audio")
    def call_audio(request: Request, call_id: str, ws: WebSession = supervisor) -> Response:
        wav = recording_or_404(call_id)
        range_header = request.headers.get("range", "")
        if not range_header:
            store.audit(ws.user.name, "listen", call_id)
        headers = {"Accept-Ranges": "bytes", "Cache-Control": "no-store"}
        match = RANGE.fullmatch(range_header.strip())
        if match and (match.group(1) or match.group(2)):
            size = len(wav)
            if match.group(1):
                start = int(match.group(1))
                end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
            else:
                start, end = max(0, size - int(match.group(2))), size - 1
            if start >= size or start > end:
                return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
            if start == 0:
                store.audit(ws.user.name, "listen", call_id)
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            return Response(wav[start:end + 1], status_code=206, media_type="audio/wav", headers=headers)
        return Response(wav, media_type="audio/wav", headers=headers)

    @app.get("/api/calls/{call_id}/peaks")
    def call_peaks(call_id: str, ws: WebSession = supervisor) -> Response:
        return JSONResponse(views.peaks(recording_or_404(call_id)))

    @app.get("/api/calls/{call_id}/export")
    def call_export(call_id: str, ws: WebSession = supervisor) -> Response:
        call = get_call_or_404(call_id)
        store.audit(ws.user.name, "export", call_id)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("call.json", json.dumps(call, default=_json_default, indent=2, ensure_ascii=False))
            wav = store.read_recording(call_id) if call["recordings"] else None
            if wav is not None:
                z.writestr("recording.wav", wav)
        return Response(buffer.getvalue(), media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="call-{call_id}.zip"'})

    # ---- live ------------------------------------------------------------------------------------

    def live_snapshot() -> list[dict[str, Any]]:
        rows = store.list_calls(CallFilter(active=True, limit=200))
        return [{"id": c["id"], "started_at": views.utc_time(c["started_at"]), "node": c.get("node") or "",
                 "last_text": c.get("last_text") or "", "emotion": c.get("emotion") or "",
                 "intent": c.get("intent") or "", "source": c.get("source")} for c in rows]

    @app.get("/live", response_class=HTMLResponse)
    def live_page(request: Request, ws: WebSession = supervisor) -> Response:
        return page(request, "live.html", ws, calls=live_snapshot())

    @app.get("/api/live")
    async def live_stream(request: Request, once: bool = False, ws: WebSession = supervisor) -> Response:
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
                if once or await request.is_disconnected():
                    return
                await asyncio.sleep(LIVE_POLL_S)
                waited += LIVE_POLL_S
        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    # ---- admin -----------------------------------------------------------------------------------

    @app.get("/admin/users", response_class=HTMLResponse)
    def users_page(request: Request, ws: WebSession = admin, message: str = "") -> Response:
        return page(request, "users.html", ws, users=users.list(), roles=ROLES, default_role=DEFAULT_ROLE,
                    message=message)

    def back_to_users(message: str) -> Response:
        return RedirectResponse("/admin/users?message=" + quote(message), status_code=303)

    @app.post("/admin/users")
    async def create_user(request: Request, ws: WebSession = admin_post) -> Response:
        form = await request.form()
        try:
            user = await gate.run(users.add, str(form.get("username") or ""), str(form.get("role") or ""),
                                  str(form.get("password") or ""))
        except AgentError as exc:
            return back_to_users(str(exc))
        except GateFull:
            return back_to_users("the console is busy: try again in a few seconds")
        await run_in_threadpool(store.audit, ws.user.name, "user-create", None, f"{user.name} ({user.role})")
        return back_to_users(f"created {user.name}")

    @app.get("/admin/users/{name}/delete", response_class=HTMLResponse)
    def confirm_delete_user(request: Request, name: str, ws: WebSession = admin) -> Response:
        return page(request, "confirm_delete.html", ws, user_name=name)

    @app.post("/admin/users/{name}/delete")
    async def delete_user(request: Request, name: str, ws: WebSession = admin_post) -> Response:
        if name == ws.user.name:
            return back_to_users("you cannot delete yourself")
        if (await request.form()).get("confirm") != "yes":
            return back_to_users(f"{name} not deleted: confirm first")
        done = users.delete(name)
        if done:
            store.audit(ws.user.name, "user-delete", None, name)
        return back_to_users(f"deleted {name}" if done else f"no user {name}")

    @app.post("/admin/users/{name}/reset")
    async def reset_user(request: Request, name: str, ws: WebSession = admin_post) -> Response:
        form = await request.form()
        try:
            done = await gate.run(users.reset_password, name, str(form.get("password") or ""))
        except AgentError as exc:
            return back_to_users(str(exc))
        except GateFull:
            return back_to_users("the console is busy: try again in a few seconds")
        if done:
            await run_in_threadpool(store.audit, ws.user.name, "user-reset", None, name)
        return back_to_users(f"new password set for {name}" if done else f"no user {name}")

    @app.post("/admin/users/{name}/role")
    async def change_role(request: Request, name: str, ws: WebSession = admin_post) -> Response:
        role = str((await request.form()).get("role") or "")
        if name == ws.user.name:
            return back_to_users("you cannot change your own role")
        try:
            done = users.set_role(name, role)
        except AgentError as exc:
            return back_to_users(str(exc))
        if done:
            store.audit(ws.user.name, "user-role", None, f"{name} ({role})")
        return back_to_users(f"{name} is now {role}" if done else f"no user {name}")

    @app.post("/admin/users/{name}/unlock")
    def unlock_user(name: str, ws: WebSession = admin_post) -> Response:
        done = users.unlock(name)
        if done:
            store.audit(ws.user.name, "user-unlock", None, name)
        return back_to_users(f"unlocked {name}" if done else f"no user {name}")

    @app.get("/admin/audit", response_class=HTMLResponse)
    def audit_page(request: Request, ws: WebSession = admin) -> Response:
        params = request.query_params
        offset = int_param(params, "offset", 0, 0, MAX_OFFSET)
        limit = int_param(params, "limit", AUDIT_PAGE, 1, MAX_LIMIT)
        entries = store.audit_log(limit=limit, offset=offset)
        return page(request, "audit.html", ws, entries=entries,
                    paging=views.paging(params, offset, limit, len(entries), store.count_audit()))

    webhooks.register(app, webhooks.Parts(store, page, admin, admin_post))  # the webhook outbox's page
    return app
