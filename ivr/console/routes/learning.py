"""The learning loop in the console: supervisors label caller turns on a call's page (transcript, intent,
"should have been FAQ X", emotion); admins list the intent model versions with their figures, accept a
candidate and roll back (`/admin/models`). Every label, acceptance and rollback is audited; POSTs carry the
session's CSRF token. Retraining itself is `ivr train intents --from-store` (ivr.learn.retrain)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from dialog.emotion.fusion import CLASSES as EMOTIONS
from dialog.nlu.faq import default_faq_path
from dialog.nlu.model import CONFIG_FILE, FAQ_PREFIX, OOS_LABEL, default_model_dir
from ivr.console.access import Console
from ivr.console.auth import WebSession
from ivr.errors import IvrError
from ivr.learn.versions import SHIPPED, ModelVersions, default_models_dir
from ivr.store.labels import add_label, call_labels

MAX_FORM_CHARS = 500


def register(app: FastAPI, console: Console) -> None:
    if not hasattr(app.state, "models_dir"):
        app.state.models_dir = default_models_dir(None, console.store.config.data_dir)
    versions = ModelVersions(app.state.models_dir)
    console.templates.env.globals["labelling"] = functools.partial(labelling, console, versions)
    register_labels(app, console, versions)
    register_models(app, console, versions)


@functools.lru_cache(maxsize=8)
def _intents(model_dir: str, _mtime: float) -> tuple[str, ...]:
    labels = json.loads((Path(model_dir) / CONFIG_FILE).read_text(encoding="utf-8"))["labels"]
    return tuple(x for x in labels if not x.startswith(FAQ_PREFIX) and x != OOS_LABEL)


@functools.lru_cache(maxsize=8)
def _faq_entries(path: str, _mtime: float) -> tuple[tuple[str, str], ...]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    return tuple((str(e["id"]), str(e.get("question", ""))) for e in data.get("entries", []) if "id" in e)


def choices(versions: ModelVersions) -> dict[str, Any]:
    """What a turn can be labelled: the intents of the model in use, its FAQ's entries (id, question), emotions."""
    try:
        version = versions.current()
    except IvrError:  # `current` names a version removed since: its calls run on the model loaded before
        version = versions.get(SHIPPED)
    model_dir = version.path or default_model_dir()
    faq = version.faq_path or default_faq_path()
    return {"intents": _intents(str(model_dir), (model_dir / CONFIG_FILE).stat().st_mtime),
            "faqs": _faq_entries(str(faq), faq.stat().st_mtime), "emotions": EMOTIONS, "oos": OOS_LABEL}


def labelling(console: Console, versions: ModelVersions, call: dict[str, Any]) -> dict[str, Any]:
    """The call page's labelling section: the caller turns, the choices and the call's labels (a template global)."""
    turns = [t for t in call.get("turns", []) if t.get("speaker") == "caller"]
    return {"turns": turns, "labels": call_labels(console.store, call["id"]), **choices(versions)}


def _form_text(form: Any, name: str) -> str:
    value = str(form.get(name) or "").strip()
    if len(value) > MAX_FORM_CHARS:
        raise HTTPException(400, f"{name}: at most {MAX_FORM_CHARS} characters")
    return value


def register_labels(app: FastAPI, console: Console, versions: ModelVersions) -> None:
    store = console.store

    @app.post("/calls/{call_id}/labels")
    async def label_turn(request: Request, call_id: str, ws: WebSession = console.supervisor_post) -> Response:
        """One caller turn's corrections: each field filled in that differs from the turn is stored as a label."""
        call = await run_in_threadpool(console.call_or_404, call_id)
        form = await request.form()
        try:
            seq = int(_form_text(form, "turn"))
        except ValueError:
            raise HTTPException(400, "pick the caller turn to label") from None
        turn = next((t for t in call["turns"] if t["seq"] == seq and t["speaker"] == "caller"), None)
        if turn is None:
            raise HTTPException(400, f"this call has no caller turn {seq}")
        wanted = _wanted(form, turn, choices(versions))
        if not wanted:
            raise HTTPException(400, "nothing to label: correct the transcript, or pick an intent, FAQ entry or "
                                     "emotion")
        try:
            for kind, value in wanted:
                await run_in_threadpool(add_label, store, call_id, seq, kind, value, ws.user.name)
        except IvrError as exc:
            raise HTTPException(400, str(exc)) from None
        message = f"labelled turn {seq}: " + ", ".join(kind for kind, _ in wanted)
        return RedirectResponse(f"/calls/{quote(call_id)}?labelled={quote(message)}#labels", status_code=303)


def _wanted(form: Any, turn: dict[str, Any], options: dict[str, Any]) -> list[tuple[str, str]]:
    """(kind, value) of each correction the form asks for; an unknown intent, FAQ entry or emotion is a 400."""
    wanted: list[tuple[str, str]] = []
    text = " ".join(_form_text(form, "transcript").split())
    if text and text != " ".join(str(turn.get("text") or "").split()):
        wanted.append(("transcript", text))
    target = _form_text(form, "target")
    if target.startswith(FAQ_PREFIX):
        if target[len(FAQ_PREFIX):] not in {entry_id for entry_id, _ in options["faqs"]}:
            raise HTTPException(400, f"no FAQ entry {target[len(FAQ_PREFIX):]!r}")
        wanted.append(("faq", target[len(FAQ_PREFIX):]))
    elif target:
        if target not in options["intents"] and target != options["oos"]:
            raise HTTPException(400, f"no intent {target!r} in the model in use")
        wanted.append(("intent", target))
    emotion = _form_text(form, "emotion")
    if emotion:
        if emotion not in options["emotions"]:
            raise HTTPException(400, f"no emotion {emotion!r}: one of {', '.join(options['emotions'])}")
        wanted.append(("emotion", emotion))
    return wanted


def register_models(app: FastAPI, console: Console, versions: ModelVersions) -> None:
    store = console.store

    def back(message: str) -> Response:
        return RedirectResponse("/admin/models?message=" + quote(message), status_code=303)

    @app.get("/admin/models", response_class=HTMLResponse)
    def models_page(request: Request, ws: WebSession = console.admin, message: str = "") -> Response:
        current = versions.current_name()
        used = versions.accepted_before()
        return console.page(request, "models.html", ws, versions=versions.all(), current=current, used=used,
                            history=list(reversed(versions.history()))[:20], message=message,
                            models_dir=str(versions.root), shipped=SHIPPED)

    @app.post("/admin/models/{name}/accept")
    def accept(name: str, ws: WebSession = console.admin_post) -> Response:
        try:
            versions.accept(name, ws.user.name)
        except IvrError as exc:
            raise HTTPException(400, str(exc)) from None
        store.audit(ws.user.name, "model-accept", None, name)
        return back(f"{name} is in use: ivr serve takes it for new calls")

    @app.post("/admin/models/{name}/rollback")
    def rollback(name: str, ws: WebSession = console.admin_post) -> Response:
        try:
            versions.rollback(ws.user.name, name)
        except IvrError as exc:
            raise HTTPException(400, str(exc)) from None
        store.audit(ws.user.name, "model-rollback", None, name)
        return back(f"rolled back: {name} is in use for new calls")
