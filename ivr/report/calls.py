"""Where reports read stored calls from. Today: call directories with events.jsonl (what `ivr call`
and `ivr serve` write); a database-backed source only has to implement `CallSource`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from ivr.call.events import CallStarted, from_dict
from ivr.errors import IvrError


@dataclass(frozen=True)
class StoredCall:
    call_id: str
    started_at: datetime
    events: list[dict[str, Any]]


class CallSource(Protocol):
    def calls(self, since: datetime | None = None) -> Iterator[StoredCall]:
        """Stored calls started at or after `since` (all when None)."""
        ...


class CallDirSource:
    """Every directory under `root` (or `root` itself) holding an events.jsonl; the call's start time
    is the file's modification time less the last event's call time."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise IvrError(f"{root}: no such directory of calls (give --calls DIR)")
        self.root = root

    def calls(self, since: datetime | None = None) -> Iterator[StoredCall]:
        paths = [self.root / "events.jsonl"] if (self.root / "events.jsonl").is_file() else sorted(
            self.root.rglob("events.jsonl"))
        for path in paths:
            events = _read(path)
            last_ms = float(events[-1].get("t_ms", 0.0)) if events else 0.0
            started = datetime.fromtimestamp(path.stat().st_mtime - last_ms / 1000.0, tz=UTC)
            if since is not None and started < since:
                continue
            call_id = next((e.call_id for e in map(from_dict, events) if isinstance(e, CallStarted) and e.call_id),
                           path.parent.name)
            yield StoredCall(call_id, started, events)


def _read(path: Path) -> list[dict[str, Any]]:
    events = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # a call cut off mid-write leaves a partial last line
        if isinstance(event, dict):
            events.append(event)
    return events
