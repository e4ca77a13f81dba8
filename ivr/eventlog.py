"""The call's event log: one JSON object a line, each with the call time in milliseconds."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from ivr.clock import Clock


class EventLog:
    def __init__(self, clock: Clock, path: Path | None = None,
                 redact: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
        """redact: applied to what is written to `path` only; `events` and listeners get the event as is."""
        self._clock = clock
        self._redact = redact
        self.events: list[dict[str, Any]] = []
        self._file: IO[str] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("w", encoding="utf-8")
        self._listeners: list[Any] = []

    def subscribe(self, listener: Any) -> None:
        """listener(event_dict) is called for each event (the CLI prints the conversation this way)."""
        self._listeners.append(listener)

    def emit(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"t_ms": round(self._clock.now_ms(), 1), "type": kind, **fields}
        self.events.append(event)
        if self._file is not None:
            written = self._redact(event) if self._redact is not None else event
            self._file.write(json.dumps(written, ensure_ascii=False) + "\n")
            self._file.flush()
        for listener in self._listeners:
            listener(event)
        return event

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
