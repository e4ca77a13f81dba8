"""What every page of the console shares: the store, the users, the templates and the access checks.

Access: a route asks for a session with a role (`Console.supervisor`, `Console.admin`), or for a session,
a role and the session's CSRF token on a POST (`Console.supervisor_post`, `Console.admin_post`).
Logged out: 401; wrong role: 403; a POST without the session's CSRF token: 403.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Depends, HTTPException, Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

from ivr.console import views
from ivr.console.auth import ROLES, Users, WebSession
from ivr.console.guards import HashGate, LoginThrottle
from ivr.store import Store

HERE = Path(__file__).parent
SESSION_COOKIE = "ivr_session"
LOGIN_CSRF_COOKIE = "ivr_login_csrf"


def json_default(value: Any) -> Any:
    """`json.dumps(default=...)` for the store's rows: datetimes as ISO text, anything else as str."""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))  # autoescape is on for .html
    templates.env.filters["clock"] = views.clock
    templates.env.filters["utc_time"] = views.utc_time
    return templates


@dataclass
class Console:
    """One console app's shared parts; the route groups (ivr.console.routes) are registered over it."""

    store: Store
    users: Users
    throttle: LoginThrottle
    gate: HashGate
    secure_cookies: bool = False
    templates: Jinja2Templates = field(default_factory=make_templates)
    supervisor: Any = field(init=False)
    """`ws: WebSession = console.supervisor`: a route for the supervisor or admin role."""
    admin: Any = field(init=False)
    supervisor_post: Any = field(init=False)
    """The same for a POST, which must also carry the session's CSRF token."""
    admin_post: Any = field(init=False)

    def __post_init__(self) -> None:
        self.supervisor = Depends(self.need("supervisor"))
        self.admin = Depends(self.need("admin"))
        self.supervisor_post = Depends(self.need_post("supervisor"))
        self.admin_post = Depends(self.need_post("admin"))

    def is_secure(self, request: Request) -> bool:
        return self.secure_cookies or request.url.scheme == "https"

    def session_of(self, request: Request) -> WebSession | None:
        return self.users.session(request.cookies.get(SESSION_COOKIE))

    def need(self, role: str) -> Callable[[Request], WebSession]:
        def dependency(request: Request) -> WebSession:
            ws = self.session_of(request)
            if ws is None:
                raise HTTPException(401, "log in first")
            if role == "admin" and not ws.user.is_admin:
                raise HTTPException(403, "this needs the admin role")
            if role == "supervisor" and ws.user.role not in ROLES:
                raise HTTPException(403, "this needs the supervisor role")
            return ws
        return dependency

    def need_post(self, role: str) -> Callable[[Request], Any]:
        check = self.need(role)

        async def dependency(request: Request) -> WebSession:
            ws = check(request)
            form = await request.form()
            sent = str(form.get("csrf") or request.headers.get("x-csrf-token") or "")
            if not sent or not secrets.compare_digest(sent, ws.csrf):
                raise HTTPException(403, "missing or wrong CSRF token")
            return ws
        return dependency

    def page(self, request: Request, name: str, ws: WebSession | None, status: int = 200,
             **context: Any) -> Response:
        return self.templates.TemplateResponse(request, name, {"session": ws, **context}, status_code=status)

    def call_or_404(self, call_id: str) -> dict[str, Any]:
        call = self.store.get_call(call_id)
        if call is None:
            raise HTTPException(404, "no such call")
        return call
