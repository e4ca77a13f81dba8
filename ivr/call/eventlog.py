"""The call's event log: typed events (`ivr.call.events`), each stamped with the call time in milliseconds,
written one JSON object a line."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

from ivr.call.events import CallEvent, to_dict
from telephony.clock import Clock

E = TypeVar("E", bound=CallEvent)


class EventLog:
    def __init__(self, clock: Clock, path: Path | None = None,
                 redact: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
        """redact: applied to what is written to `path` only; `events` and listeners get the event as is."""
        self._clock = clock
        self._redact = redact
        self.events: list[CallEvent] = []
        self._file: IO[str] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("w", encoding="utf-8")
        self._listeners: list[Callable[[CallEvent], Any]] = []

    def subscribe(self, listener: Callable[[CallEvent], Any]) -> None:
        """listener(event) is called for each event (the CLI prints the conversation this way)."""
        self._listeners.append(listener)

    def emit(self, event: E) -> E:
        event = dataclasses.replace(event, t_ms=round(self._clock.now_ms(), 1))
        self.events.append(event)
        if self._file is not None:
            record = to_dict(event)
            written = self._redact(record) if self._redact is not None else record
            self._file.write(json.dumps(written, ensure_ascii=False) + "\n")
            self._file.flush()
        for listener in self._listeners:
            listener(event)
        return event

    def of_type(self, cls: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, cls)]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
