"""Writing a benchmark's or a report's results as JSON, where the user asked for them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_json_report(path: str | Path, report: dict[str, Any]) -> Path:
    """`report` as indented JSON at `path` (its folder made when missing); returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return out
