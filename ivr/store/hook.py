"""Connecting live calls to the store: `ivr call` (a listener plus finish) and `ivr serve` (an observer).

A store that cannot be opened never stops a call: the call goes on, unstored, with one warning.
"""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path
from typing import Any

from ivr.store.db import Store
from ivr.store.writer import StoreWriter

log = logging.getLogger(__name__)


def open_store_or_none(db_url: str | None = None, data_dir: str | Path | None = None) -> Store | None:
    try:
        return Store.open(db_url, data_dir)
    except Exception as exc:
        log.warning("call store unavailable (%s: %s); calls are not stored", type(exc).__name__, exc)
        return None


def call_store_writer(args: argparse.Namespace) -> StoreWriter | None:
    """The writer for one `ivr call`, or None with --no-store."""
    if getattr(args, "no_store", False):
        return None
    store = open_store_or_none()
    return StoreWriter(store, source="sim") if store is not None else None


def caller_number(remote_uri: str) -> str | None:
    """The user part of a SIP remote URI, when it looks like a phone number."""
    match = re.search(r"(?:sips?|tel):(\+?[\d().\- ]{3,})[@;>]?", remote_uri)
    return match.group(1) if match else None


class SipStoreObserver:
    """For `ivr serve`: a writer per call, subscribed when the session is made, finished when it closes."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._writers: dict[int, StoreWriter] = {}

    def call_started(self, session: Any, remote_uri: str) -> None:
        writer = StoreWriter(self.store, source="sip", caller=caller_number(remote_uri))
        self._writers[id(session)] = writer
        session.log.subscribe(writer)

    def call_closed(self, session: Any, out_dir: Path) -> None:
        writer = self._writers.pop(id(session), None)
        if writer is not None:
            writer.finish(session.transcript, out_dir / "recording.wav")
