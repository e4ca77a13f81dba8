"""Login and logout (and the unauthenticated health check).

Password hashing runs in a few worker threads of its own (ivr.console.guards), never on the event loop;
one client address gets a few attempts a minute (then 429 with Retry-After); a wrong password, an unknown
user and a locked account all get the same answer.
"""

from __future__ import annotations

import secrets

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ivr.console.access import LOGIN_CSRF_COOKIE, SESSION_COOKIE, Console
from ivr.console.auth import User, WebSession
from ivr.console.guards import BUSY_RETRY_AFTER_S, GateFull, client_key

LOGIN_FAILED = ("Wrong user name or password. After 5 failed logins an account is locked for 15 minutes: "
                "then wait, or ask an admin to set a new password.")


def safe_next(value: str | None) -> str:
    """Where to go after the login: a path on this site, else the call list."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/calls"


def register(app: FastAPI, console: Console) -> None:
    store, users, throttle, gate = console.store, console.users, console.throttle, console.gate

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    def login_page(request: Request, nxt: str, error: str = "", status: int = 200,
                   headers: dict[str, str] | None = None) -> Response:
        token = secrets.token_urlsafe(32)
        response = console.page(request, "login.html", None, status=status, csrf=token, next=nxt, error=error)
        response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                            secure=console.is_secure(request), max_age=3600)
        response.headers.update(headers or {})
        return response

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/calls", error: str = "") -> Response:
        return login_page(request, safe_next(next), error[:200])

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        sent, expected = str(form.get("csrf") or ""), request.cookies.get(LOGIN_CSRF_COOKIE) or ""
        if not sent or not expected or not secrets.compare_digest(sent, expected):
            raise HTTPException(403, "missing or wrong CSRF token: reload the login page")
        name, password = str(form.get("username") or ""), str(form.get("password") or "")
        nxt = safe_next(str(form.get("next") or ""))
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
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict",
                            secure=console.is_secure(request), path="/")
        response.delete_cookie(LOGIN_CSRF_COOKIE)
        return response

    def start_session(user: User) -> str:
        store.audit(user.name, "login")
        return users.start_session(user)

    @app.post("/logout")
    def logout(request: Request, ws: WebSession = console.supervisor_post) -> Response:
        users.end_session(request.cookies.get(SESSION_COOKIE))
        store.audit(ws.user.name, "logout")
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response
