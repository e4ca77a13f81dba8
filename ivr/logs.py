"""How `ivr` logs: text for a person at a terminal, or JSON lines for a log pipeline (`--log-format json`).

A JSON line holds the time (UTC, ISO 8601), the level, the logger, the call id when the line is about a
call, `event` (the message's template: the same for every occurrence, so a pipeline can count it) and `msg`
(the message). The call id comes from `extra={"call_id": ...}` or from the thread (a call's runner thread is
named `call-<id>`). Messages never carry personal data: callers appear as keyed tags, never numbers, and
transcripts are not logged.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import UTC, datetime

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CALL_THREAD_PREFIX = "call-"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        call_id = getattr(record, "call_id", None) or _call_of_thread(record.threadName)
        if call_id:
            line["call_id"] = call_id
        line["event"] = str(record.msg)
        line["msg"] = record.getMessage()
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def _call_of_thread(name: str | None) -> str | None:
    if name and name.startswith(CALL_THREAD_PREFIX):
        return name[len(CALL_THREAD_PREFIX):]
    return None


def configure(verbose: bool, fmt: str | None = None) -> None:
    """Sets up the root logger on stderr: INFO with `verbose`, else WARNING; `fmt` text or json (default:
    $IVR_LOG_FORMAT, else text)."""
    fmt = fmt or os.environ.get("IVR_LOG_FORMAT", "text")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    threading.excepthook = _log_thread_crash


def _log_thread_crash(args: threading.ExceptHookArgs) -> None:
    """An exception that ends a thread goes to the log (so to the JSON pipeline too), not only to stderr."""
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("ivr").error("thread %s died", name,
                                   exc_info=(args.exc_type, args.exc_value, args.exc_traceback))  # type: ignore[arg-type]
