"""The calls: the list (a page and its API; sortable, with saved searches), one call's page (with its review
section, ivr.console.routes.review) and API, its live progress, its recording
(whole or by byte range), its waveform peaks and its export. Every opening, listening and export is audited."""

from __future__ import annotations

import io
import json
import re
import zipfile
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from ivr.console import listview, views
from ivr.console.access import Console, json_default
from ivr.console.auth import WebSession
from ivr.console.params import SOURCES, filter_from
from ivr.console.routes import review
from ivr.store.liveaudio import is_spooling
from ivr.store.searches import SavedSearches
from models.errors import AgentError

RANGE = re.compile(r"bytes=(\d{0,15})-(\d{0,15})")  # a byte range; longer numbers are no range at all


def json_response(body: Any) -> Response:
    return Response(json.dumps(body, default=json_default), media_type="application/json")


def register(app: FastAPI, console: Console) -> None:
    register_list(app, console)
    register_call(app, console)
    register_recording(app, console)


def register_list(app: FastAPI, console: Console) -> None:
    store, searches = console.store, SavedSearches(console.store)

    @app.get("/", response_class=HTMLResponse)
    def home(ws: WebSession = console.supervisor) -> Response:
        return RedirectResponse("/calls", status_code=303)

    @app.get("/calls", response_class=HTMLResponse)
    def calls_page(request: Request, ws: WebSession = console.supervisor) -> Response:
        params = request.query_params
        f = filter_from(params)
        calls = store.list_calls(f)
        choices = {col: store.distinct_values(col) for col in ("outcome", "intent", "emotion")}
        return console.page(request, "calls.html", ws, calls=calls, params=params, choices=choices, sources=SOURCES,
                            paging=views.paging(params, f.offset, f.limit, len(calls), store.count_calls(f)),
                            headers=listview.headers(params), saved=searches.of_user(ws.user.id),
                            save_query=listview.list_query(params),
                            csv_query=listview.list_query(params, drop=("offset", "limit")))

    @app.get("/api/calls")
    def calls_api(request: Request, ws: WebSession = console.supervisor) -> Response:
        f = filter_from(request.query_params)
        calls = store.list_calls(f)
        return json_response({"calls": calls, "total": store.count_calls(f), "offset": f.offset, "limit": f.limit})


def register_call(app: FastAPI, console: Console) -> None:
    store = console.store

    @app.get("/calls/{call_id}", response_class=HTMLResponse)
    def call_page(request: Request, call_id: str, ws: WebSession = console.supervisor) -> Response:
        call = console.call_or_404(call_id)
        store.audit(ws.user.name, "open", call_id)
        plot = views.emotion_plot(call["turns"], call.get("duration_ms"))
        intents = [t for t in call["turns"] if t.get("intent")]
        events = [{**e, "summary": views.event_summary(e)} for e in call["events"]]
        return console.page(request, "call.html", ws, call=call, plot=plot, intents=intents, events=events,
                            has_audio=bool(call["recordings"]), speakers_from=views.speakers_from(call["events"]),
                            qa=review.call_qa(console, call_id),
                            listen=call["ended_at"] is None and is_spooling(store.config.data_dir, call_id),
                            reads=views.import_reads(call["events"]))

    @app.get("/api/calls/{call_id}/progress")
    def call_progress(call_id: str, after: int = 0, ws: WebSession = console.supervisor) -> Response:
        """A live call's new turns (after the first `after`) and state, for its open page (audited on opening)."""
        call = console.call_or_404(call_id)
        turns = [{"speaker": t["speaker"], "text": t["text"], "start_ms": t["start_ms"],
                  "clock": views.clock(t["start_ms"]), "intent": t.get("intent") or "",
                  "emotion": t.get("emotion") or ""}
                 for t in call["turns"][max(0, after):]]
        return json_response({"ended": call["ended_at"] is not None, "outcome": call.get("outcome") or "",
                              "node": call.get("node"), "turns": turns, "upset": call.get("upset_at") is not None})

    @app.get("/api/calls/{call_id}")
    def call_api(call_id: str, ws: WebSession = console.supervisor) -> Response:
        call = console.call_or_404(call_id)
        store.audit(ws.user.name, "open", call_id, "api")
        return json_response(call)


def register_recording(app: FastAPI, console: Console) -> None:
    store = console.store

    def recording_or_404(call_id: str) -> bytes:
        console.call_or_404(call_id)
        try:
            wav = store.read_recording(call_id)
        except AgentError as exc:
            raise HTTPException(500, str(exc)) from None
        if wav is None:
            raise HTTPException(404, "this call has no recording")
        return wav

    @app.get("/api/calls/{call_id}/audio")
    def call_audio(request: Request, call_id: str, ws: WebSession = console.supervisor) -> Response:
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
    def call_peaks(call_id: str, ws: WebSession = console.supervisor) -> Response:
        return JSONResponse(views.peaks(recording_or_404(call_id)))

    @app.get("/api/calls/{call_id}/export")
    def call_export(call_id: str, ws: WebSession = console.supervisor) -> Response:
        call = console.call_or_404(call_id)
        store.audit(ws.user.name, "export", call_id)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("call.json", json.dumps(call, default=json_default, indent=2, ensure_ascii=False))
            wav = store.read_recording(call_id) if call["recordings"] else None
            if wav is not None:
                z.writestr("recording.wav", wav)
        return Response(buffer.getvalue(), media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="call-{call_id}.zip"'})
