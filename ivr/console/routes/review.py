"""Review at scale and QA, for supervisors: saved searches, the CSV export of the filtered call list, and on a
call's page its scorecards, its "reviewed" status and its comments. Every change and export is audited."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from ivr.console.access import Console
from ivr.console.auth import WebSession
from ivr.console.csvexport import COLUMNS, csv_chunks
from ivr.console.listview import clean_query
from ivr.console.params import SOURCES, filter_from
from ivr.errors import IvrError
from ivr.store.qa import Reviews
from ivr.store.searches import SavedSearches

MAX_ID = 2**31 - 1


def register(app: FastAPI, console: Console) -> None:
    register_searches(app, console)
    register_export(app, console)
    register_qa(app, console)


def call_qa(console: Console, call_id: str) -> dict[str, Any]:
    """What the call page's review section shows: the scorecards in use, the call's reviews and comments."""
    reviews = Reviews(console.store)
    return {"scorecards": reviews.scorecards(active_only=True), "reviews": reviews.of_call(call_id),
            "comments": reviews.comments(call_id)}


def register_searches(app: FastAPI, console: Console) -> None:
    store, searches = console.store, SavedSearches(console.store)

    @app.post("/saved-searches")
    async def save_search(request: Request, ws: WebSession = console.supervisor_post) -> Response:
        form = await request.form()
        query = clean_query(str(form.get("query") or ""))
        filter_from(dict(parse_qsl(query)))  # a 422 for a filter the list would refuse
        name = str(form.get("name") or "")
        try:
            searches.save(ws.user.id, name, query)
        except IvrError as exc:
            raise HTTPException(422, str(exc)) from None
        store.audit(ws.user.name, "search-save", None, " ".join(name.split()))
        return RedirectResponse("/calls?" + query, status_code=303)

    @app.post("/saved-searches/{search_id}/delete")
    def delete_search(search_id: int, ws: WebSession = console.supervisor_post) -> Response:
        name = searches.delete(ws.user.id, search_id) if 0 < search_id <= MAX_ID else None
        if name is None:
            raise HTTPException(404, "you have no saved search of that number")
        store.audit(ws.user.name, "search-delete", None, name)
        return RedirectResponse("/calls", status_code=303)


def register_export(app: FastAPI, console: Console) -> None:
    store = console.store

    @app.get("/calls.csv")
    def calls_csv(request: Request, ws: WebSession = console.supervisor) -> Response:
        f = filter_from(request.query_params)
        store.audit(ws.user.name, "export-list", None, f"csv of {store.count_calls(f)} call(s)")
        name = datetime.now(UTC).strftime("calls-%Y%m%d-%H%M%S.csv")
        rows = store.iter_calls(f, columns=COLUMNS)
        return StreamingResponse(csv_chunks(rows, SOURCES), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": f'attachment; filename="{name}"'})


def register_qa(app: FastAPI, console: Console) -> None:
    store, reviews = console.store, Reviews(console.store)

    def back(call_id: str) -> Response:
        return RedirectResponse(f"/calls/{call_id}#qa", status_code=303)

    @app.post("/calls/{call_id}/reviews")
    async def submit_review(request: Request, call_id: str, ws: WebSession = console.supervisor_post) -> Response:
        console.call_or_404(call_id)
        form = await request.form()
        try:
            card_id = int(str(form.get("scorecard") or ""))
        except ValueError:
            raise HTTPException(422, "which scorecard? (a number)") from None
        card = reviews.scorecard(card_id) if 0 < card_id <= MAX_ID else None
        if card is None:
            raise HTTPException(422, "no such scorecard")
        answers = [str(form.get(f"q{i}") or "") for i in range(len(card["questions"]))]
        try:
            score = reviews.submit(call_id, card_id, ws.user.name, answers)
        except IvrError as exc:
            raise HTTPException(422, str(exc)) from None
        store.audit(ws.user.name, "review", call_id, f"{card['name']}: {score:.1f}")
        return back(call_id)

    @app.post("/calls/{call_id}/reviewed")
    def mark_reviewed(call_id: str, ws: WebSession = console.supervisor_post) -> Response:
        console.call_or_404(call_id)
        reviews.mark_reviewed(call_id, ws.user.name)
        store.audit(ws.user.name, "reviewed", call_id)
        return back(call_id)

    @app.post("/calls/{call_id}/comments")
    async def add_comment(request: Request, call_id: str, ws: WebSession = console.supervisor_post) -> Response:
        console.call_or_404(call_id)
        try:
            reviews.add_comment(call_id, ws.user.name, str((await request.form()).get("text") or ""))
        except IvrError as exc:
            raise HTTPException(422, str(exc)) from None
        store.audit(ws.user.name, "comment", call_id)
        return back(call_id)
