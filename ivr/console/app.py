"""`ivr console`: the supervisor web app (FastAPI, server-rendered Jinja2 pages, a little vanilla JS).

Access: every route but /login, /static, /healthz, /metrics and the text chat (/chat, /api/chat: for a
website's visitors, bounded by ivr.chat.hub's limits) needs a session; call review needs the supervisor or
admin role, user management the admin role. Logged out: pages redirect to the login page (the API: 401);
wrong role: 403; a POST without the session's CSRF token: 403. Every opening, listening and
export of a call is written to the audit log. Cookies: HttpOnly, SameSite=Strict, Secure over HTTPS.

This module builds the app: the security headers, the error pages and the route groups of
ivr.console.routes (login, calls, live, listen, dashboard, webcall, admin, webhooks, chat, learning, review,
scorecards), all over one
ivr.console.access.Console (the store, users, templates and access checks). A new page is a route group: a
module there with `register(app, console)`.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ivr.chat.hub import ChatHub
from ivr.console.access import HERE, SESSION_COOKIE, Console
from ivr.console.auth import Users
from ivr.console.guards import HashGate, LoginThrottle
from ivr.console.metrics import install as install_metrics
from ivr.console.routes import (
    admin,
    calls,
    chat,
    dashboard,
    learning,
    listen,
    live,
    login,
    review,
    scorecards,
    webcall,
    webhooks,
)
from ivr.learn.versions import default_models_dir
from ivr.store import Store
from ivr.webcall.calls import WebCalls

__all__ = ["PUBLIC_PATHS", "SESSION_COOKIE", "create_app"]

PUBLIC_PATHS = ("/login", "/static", "/healthz", "/metrics", "/chat", "/api/chat")
"""Served without a console login: the chat is for a website's visitors (ivr.console.routes.chat)."""
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "media-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
                               "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
ROUTE_GROUPS = (login.register, calls.register, live.register, listen.register, dashboard.register, webcall.register,
                admin.register, webhooks.register, chat.register, learning.register, review.register,
                scorecards.register)


def create_app(store: Store, secure_cookies: bool = False, throttle: LoginThrottle | None = None,
               gate: HashGate | None = None, chat_hub: ChatHub | None = None,
               webcalls: WebCalls | None = None, models_dir: str | Path | None = None) -> FastAPI:
    """The console app over a store; `secure_cookies` forces the Secure flag (e.g. behind a TLS proxy).
    `throttle`: login attempts per client address; `gate`: where password hashes run (defaults of guards);
    `chat_hub`: the text chat's sessions (default: one over `store` that loads the models on the first chat);
    `webcalls`: the agent behind the web call page (default: the bank flow's models, loaded on the first
    web call, calls stored with source "web"); `models_dir`: the intent model versions the admin's Models page
    lists (default: ivr.learn.versions.default_models_dir)."""
    console = Console(store, Users(store), throttle or LoginThrottle(), gate or HashGate(), secure_cookies)
    hub = chat_hub if chat_hub is not None else ChatHub(store)
    webcalls = webcalls or default_webcalls(store)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # What start-up made (modules, templates, routes) is never freed: kept out of the cycle collector's
        # full passes, which otherwise paused a request now and then for 130-170 ms (50k-call benchmark).
        gc.collect()
        gc.freeze()
        yield
        await webcalls.aclose()
        hub.close()
        console.gate.close()

    app = FastAPI(title="ivr console", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    install_metrics(app)
    app.state.store = store
    app.state.users = console.users
    app.state.throttle = console.throttle
    app.state.gate = console.gate
    app.state.chat = hub
    app.state.webcalls = webcalls
    app.state.models_dir = default_models_dir(models_dir, store.config.data_dir)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    add_headers_and_errors(app, console)
    for register in ROUTE_GROUPS:
        register(app, console)
    return app


def default_webcalls(store: Store, keep_call_files: bool = False) -> WebCalls:
    """Web calls with the default agent, stored in `store` like phone calls (source "web")."""
    from ivr.store.hook import SipStoreObserver

    return WebCalls(observers=[SipStoreObserver(store, keep_files=keep_call_files or store.config.keep_call_files,
                                                source="web")])


def add_headers_and_errors(app: FastAPI, console: Console) -> None:
    """The security headers on every answer; errors as JSON for the API, else the login page (a GET while
    logged out) or an error page."""

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
        context = {"status": exc.status_code, "detail": exc.detail, "session": console.session_of(request),
                   "login_url": login_url}
        return console.templates.TemplateResponse(request, "error.html", context, status_code=exc.status_code,
                                                  headers=exc.headers)
