"""Administration, for the admin role: the users (create, delete, new password, role, unlock) and the audit log.
Every change is written to the audit log; an admin cannot delete themselves or change their own role."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ivr.console import views
from ivr.console.access import Console
from ivr.console.auth import DEFAULT_ROLE, ROLES, WebSession
from ivr.console.guards import GateFull
from ivr.console.params import MAX_LIMIT, MAX_OFFSET, int_param
from models.errors import AgentError

AUDIT_PAGE = 100
BUSY = "the console is busy: try again in a few seconds"


def back_to_users(message: str) -> Response:
    return RedirectResponse("/admin/users?message=" + quote(message), status_code=303)


def register(app: FastAPI, console: Console) -> None:
    register_users(app, console)
    register_user_changes(app, console)
    register_audit(app, console)


def register_users(app: FastAPI, console: Console) -> None:
    """The user list, creating a user and deleting one (after a confirmation page)."""
    store, users, gate = console.store, console.users, console.gate

    @app.get("/admin/users", response_class=HTMLResponse)
    def users_page(request: Request, ws: WebSession = console.admin, message: str = "") -> Response:
        return console.page(request, "users.html", ws, users=users.list(), roles=ROLES, default_role=DEFAULT_ROLE,
                            message=message)

    @app.post("/admin/users")
    async def create_user(request: Request, ws: WebSession = console.admin_post) -> Response:
        form = await request.form()
        try:
            user = await gate.run(users.add, str(form.get("username") or ""), str(form.get("role") or ""),
                                  str(form.get("password") or ""))
        except AgentError as exc:
            return back_to_users(str(exc))
        except GateFull:
            return back_to_users(BUSY)
        await run_in_threadpool(store.audit, ws.user.name, "user-create", None, f"{user.name} ({user.role})")
        return back_to_users(f"created {user.name}")

    @app.get("/admin/users/{name}/delete", response_class=HTMLResponse)
    def confirm_delete_user(request: Request, name: str, ws: WebSession = console.admin) -> Response:
        return console.page(request, "confirm_delete.html", ws, user_name=name)

    @app.post("/admin/users/{name}/delete")
    async def delete_user(request: Request, name: str, ws: WebSession = console.admin_post) -> Response:
        if name == ws.user.name:
            return back_to_users("you cannot delete yourself")
        if (await request.form()).get("confirm") != "yes":
            return back_to_users(f"{name} not deleted: confirm first")
        done = users.delete(name)
        if done:
            store.audit(ws.user.name, "user-delete", None, name)
        return back_to_users(f"deleted {name}" if done else f"no user {name}")


def register_user_changes(app: FastAPI, console: Console) -> None:
    """A user's new password, role and unlocking."""
    store, users, gate = console.store, console.users, console.gate

    @app.post("/admin/users/{name}/reset")
    async def reset_user(request: Request, name: str, ws: WebSession = console.admin_post) -> Response:
        form = await request.form()
        try:
            done = await gate.run(users.reset_password, name, str(form.get("password") or ""))
        except AgentError as exc:
            return back_to_users(str(exc))
        except GateFull:
            return back_to_users(BUSY)
        if done:
            await run_in_threadpool(store.audit, ws.user.name, "user-reset", None, name)
        return back_to_users(f"new password set for {name}" if done else f"no user {name}")

    @app.post("/admin/users/{name}/role")
    async def change_role(request: Request, name: str, ws: WebSession = console.admin_post) -> Response:
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
    def unlock_user(name: str, ws: WebSession = console.admin_post) -> Response:
        done = users.unlock(name)
        if done:
            store.audit(ws.user.name, "user-unlock", None, name)
        return back_to_users(f"unlocked {name}" if done else f"no user {name}")


def register_audit(app: FastAPI, console: Console) -> None:
    store = console.store

    @app.get("/admin/audit", response_class=HTMLResponse)
    def audit_page(request: Request, ws: WebSession = console.admin) -> Response:
        params = request.query_params
        offset = int_param(params, "offset", 0, 0, MAX_OFFSET)
        limit = int_param(params, "limit", AUDIT_PAGE, 1, MAX_LIMIT)
        entries = store.audit_log(limit=limit, offset=offset)
        return console.page(request, "audit.html", ws, entries=entries,
                            paging=views.paging(params, offset, limit, len(entries), store.count_audit()))
