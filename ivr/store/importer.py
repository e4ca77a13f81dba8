"""`ivr store import-dir`: calls already on disk (from `ivr call` or `ivr serve`) into the store.

A call directory holds events.jsonl (required), recording.wav, and transcript.json (`ivr call`)
or sip.json (`ivr serve`). The events go through the same StoreWriter as a live call.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ivr.call.events import CallStarted, from_dict
from ivr.errors import IvrError
from ivr.store.db import Store
from ivr.store.writer import StoreWriter

log = logging.getLogger(__name__)


def find_call_dirs(root: Path) -> list[Path]:
    """root itself when it is a call directory, else every call directory below it."""
    if (root / "events.jsonl").is_file():
        return [root]
    return sorted(p.parent for p in root.rglob("events.jsonl"))


def _read_events(path: Path) -> list[dict[str, Any]]:
    events = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            raise IvrError(f"{path}:{number}: not a JSON event") from None
        if isinstance(event, dict) and "type" in event:
            events.append(event)
    return events


def import_call_dir(store: Store, call_dir: Path, caller: str | None = None) -> str:
    """Store one call directory; returns the call id. Importing the same directory again replaces it."""
    events = [from_dict(e) for e in _read_events(call_dir / "events.jsonl")]
    if not events:
        raise IvrError(f"{call_dir}: events.jsonl has no events")
    meta: dict[str, Any] = {}
    source = "import"
    for name in ("sip.json", "summary.json"):
        if (call_dir / name).is_file():
            meta = json.loads((call_dir / name).read_text(encoding="utf-8"))
            source = "sip" if name == "sip.json" else "sim"
            break
    first = events[0]
    if not isinstance(first, CallStarted):
        events.insert(0, CallStarted(meta.get("call_id") or call_dir.name))
    elif not first.call_id:
        events[0] = dataclasses.replace(first, call_id=meta.get("call_id") or call_dir.name)
    started = meta.get("started_at")
    if isinstance(started, int | float):
        start_wall = datetime.fromtimestamp(float(started), UTC)
    else:  # the events file was last written when the call ended
        end_wall = datetime.fromtimestamp((call_dir / "events.jsonl").stat().st_mtime, UTC)
        start_wall = end_wall - timedelta(milliseconds=events[-1].t_ms)
    writer = StoreWriter(store, source=source, caller=caller, background=False)
    batch = [(start_wall + timedelta(milliseconds=e.t_ms), e) for e in events]
    transcript: list[Any] = []
    if (call_dir / "transcript.json").is_file():
        transcript = json.loads((call_dir / "transcript.json").read_text(encoding="utf-8"))
    recording = call_dir / "recording.wav"
    writer.apply([*batch, ("finish", transcript, recording if recording.is_file() else None)])
    if writer.failed or writer.call_id is None:
        raise IvrError(f"{call_dir}: could not be stored (see the log)")
    return writer.call_id
