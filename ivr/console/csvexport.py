"""The call list as CSV: every call that matches the filters (not only a page), streamed in chunks.

It holds what the list page shows and no more: texts as stored (redacted), the caller only as the last two
digits, times in UTC. A cell a spreadsheet would take for a formula (starting with = + - @, a tab or a carriage
return) is written with a leading apostrophe, so that it opens as text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

HEADER = ("call_id", "started_utc", "channel", "duration_s", "caller", "outcome", "escalated", "reason", "intent",
          "emotion", "score", "reviewed_by", "reviewed_utc", "last_words")
COLUMNS = ("id", "started_at", "source", "duration_ms", "caller_tail", "outcome", "escalated", "reason", "intent",
           "emotion", "score", "reviewed_by", "reviewed_at", "last_text")
"""The store's columns the rows are made of (Store.iter_calls reads only these)."""
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ROWS_PER_CHUNK = 200


def safe_cell(value: Any) -> str:
    """A value as CSV cell text that no spreadsheet runs as a formula."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text[:1] in FORMULA_STARTS else text


def _time(value: datetime | None) -> str:
    """A UTC time as 'YYYY-MM-DD HH:MM:SS' (a naive one is UTC already: SQLite gives them back so)."""
    if value is None:
        return ""
    return (value if value.tzinfo is None else value.astimezone(UTC)).isoformat(" ", "seconds")[:19]


def row_of(call: Mapping[str, Any], sources: dict[str, str]) -> list[str]:
    duration = call.get("duration_ms")
    score = call.get("score")
    cells = [call["id"], _time(call.get("started_at")), sources.get(call["source"], call["source"]),
             f"{duration / 1000.0:.1f}" if duration is not None else "",
             "…" + call["caller_tail"] if call.get("caller_tail") else "", call.get("outcome"),
             "yes" if call.get("escalated") else "no", call.get("reason"), call.get("intent"), call.get("emotion"),
             f"{score:.1f}" if score is not None else "", call.get("reviewed_by"), _time(call.get("reviewed_at")),
             call.get("last_text")]
    return [safe_cell(cell) for cell in cells]


def csv_chunks(calls: Iterable[Mapping[str, Any]], sources: dict[str, str]) -> Iterator[str]:
    """The header line, then the calls' lines, ROWS_PER_CHUNK to a chunk."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    for rows, call in enumerate(calls, start=1):
        writer.writerow(row_of(call, sources))
        if rows % ROWS_PER_CHUNK == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
