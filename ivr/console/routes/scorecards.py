"""Scorecards, for the admin role: the list, a new scorecard (a name and up to QUESTION_ROWS questions, each
answered yes/no or 1-5, with a weight), retiring one (no longer offered on call pages; its reviews stay) and
using it again. Every change is audited."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ivr.console.access import Console
from ivr.console.auth import WebSession
from ivr.errors import IvrError
from ivr.store.qa import KINDS, Question, Reviews

QUESTION_ROWS = 8
"""Empty question rows on the new scorecard form (rows left empty are skipped; at most MAX_QUESTIONS)."""


def questions_from(form: Any) -> list[Question]:
    """The filled rows of the form: q{i}_text, q{i}_kind, q{i}_weight (default 1)."""
    questions = []
    for i in range(QUESTION_ROWS):
        text = str(form.get(f"q{i}_text") or "").strip()
        if not text:
            continue
        raw_weight = str(form.get(f"q{i}_weight") or "").strip() or "1"
        try:
            weight = float(raw_weight)
        except ValueError:
            raise IvrError(f"question {i + 1}: the weight is a number") from None
        questions.append(Question(text, str(form.get(f"q{i}_kind") or ""), weight))
    return questions


def register(app: FastAPI, console: Console) -> None:
    store, reviews = console.store, Reviews(console.store)

    def page(request: Request, ws: WebSession, message: str = "", status: int = 200,
             form: Any = None) -> Response:
        return console.page(request, "scorecards.html", ws, status=status, scorecards=reviews.scorecards(),
                            kinds=KINDS, rows=range(QUESTION_ROWS), message=message, form=form or {})

    @app.get("/admin/scorecards", response_class=HTMLResponse)
    def scorecards_page(request: Request, ws: WebSession = console.admin, message: str = "") -> Response:
        return page(request, ws, message[:200])

    @app.post("/admin/scorecards")
    async def create_scorecard(request: Request, ws: WebSession = console.admin_post) -> Response:
        form = await request.form()
        name = str(form.get("name") or "")
        try:
            card_id = reviews.create_scorecard(name, questions_from(form), ws.user.name)
        except IvrError as exc:  # the form again, as filled, with what is wrong
            return page(request, ws, str(exc), status=422, form={k: str(v) for k, v in form.items()})
        card = reviews.scorecard(card_id)
        assert card is not None
        store.audit(ws.user.name, "scorecard-create", None, f"{card['name']} ({len(card['questions'])} questions)")
        return RedirectResponse("/admin/scorecards?message=" + quote(f"created {card['name']}"), status_code=303)

    @app.post("/admin/scorecards/{card_id}/active")
    async def set_active(request: Request, card_id: int, ws: WebSession = console.admin_post) -> Response:
        active = (await request.form()).get("active") == "yes"
        name = reviews.set_active(card_id, active) if 0 < card_id < 2**31 else None
        if name is None:
            raise HTTPException(404, "no such scorecard")
        store.audit(ws.user.name, "scorecard-use" if active else "scorecard-retire", None, name)
        word = "in use again" if active else "retired"
        return RedirectResponse("/admin/scorecards?message=" + quote(f"{name} {word}"), status_code=303)
