"""Writing a benchmark's or a report's results as JSON, where the user asked for them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_json_report(path: str | Path, report: dict[str, Any]) -> Path:
    """`report` as indented JSON at `path` (its folder made when missing); returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return out


def publish_report(report: dict[str, Any], path: str | Path, table: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Print `report` as a table, write it as JSON at `path`, say where; returns the report."""
    table(report)
    out = write_json_report(path, report)
    print(f"results in {out}")
    return report


Column = tuple[str, int, Callable[[dict[str, Any]], str]]
"""(title, width, cell): a table column; the cell is the row's value already formatted."""


def print_rows(rows: list[dict[str, Any]], columns: list[Column], note: str = "") -> None:
    """A right-aligned table of `rows`, one line per row, the titles first (and `note` after them)."""
    print("  ".join(f"{title:>{width}}" for title, width, _ in columns) + (f"  {note}" if note else ""))
    for row in rows:
        print("  ".join(f"{cell(row):>{width}}" for _, width, cell in columns))
