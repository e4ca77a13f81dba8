"""The end of a live call's session, the same for a phone call (ivr.serve.runner) and a web call
(ivr.webcall.runner): the session closes, the call's metadata is written, and its observers (the call store,
metrics, headroom) are told, even when closing failed."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ivr.call.session import CallSession


def close_session(session: CallSession, out_dir: Path, observers: Iterable[Any],
                  write_metadata: Callable[[], None], log: logging.Logger, label: str) -> None:
    """Close the session, then write the call's metadata and tell each observer `call_closed(session, out_dir)`;
    an observer that fails is logged (as "<label>: observer failed") and the others are still told."""
    try:
        session.close()
    finally:
        write_metadata()
        for observer in observers:
            try:
                observer.call_closed(session, out_dir)
            except Exception:
                log.exception("%s: observer failed", label)
