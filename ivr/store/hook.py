"""Connecting live calls to the store: `ivr call` (a listener plus finish) and `ivr serve` (an observer).

A store that cannot be opened never stops a call: the call goes on, unstored, with one warning.

Plain files: a session writes its call folder (recording.wav, events.jsonl, ...) unencrypted. `ivr serve`
removes that folder once the store holds the call (encrypted recording, redacted events), unless it runs
with --keep-call-files (or IVR_KEEP_CALL_FILES=1): a privacy risk, for debugging only. When the call could
not be stored the folder is kept, so nothing is lost. `ivr call` (a developer's simulation) keeps its folder.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
from pathlib import Path
from typing import Any

from ivr.store.db import Store, shred
from ivr.store.hookevents import WebhookOptions
from ivr.store.liveaudio import LiveSpool
from ivr.store.upset import UpsetRule
from ivr.store.writer import StoreWriter

log = logging.getLogger(__name__)


def open_store_or_none(db_url: str | None = None, data_dir: str | Path | None = None) -> Store | None:
    try:
        return Store.open(db_url, data_dir)
    except Exception as exc:
        log.warning("call store unavailable (%s: %s); calls are not stored", type(exc).__name__, exc)
        return None


def call_store_writer(args: argparse.Namespace, flow: Any = None) -> StoreWriter | None:
    """The writer for one `ivr call` of `flow` (its upset rule), or None with --no-store."""
    if getattr(args, "no_store", False):
        return None
    store = open_store_or_none()
    return StoreWriter(store, source="sim", upset=UpsetRule.from_flow(flow)) if store is not None else None


def live_spool(store: Store, session: Any) -> LiveSpool | None:
    """Spool a call's audio for supervisors listening in (ivr.store.liveaudio), tapped from its session;
    None when the session has no audio taps or the spool cannot be made (the call goes on, unheard)."""
    if not hasattr(session, "add_audio_tap"):
        return None
    try:
        spool = LiveSpool(store.config.data_dir, store.config.key(), session.call_id, session.sample_rate_hz)
    except Exception as exc:
        log.warning("live listening unavailable for this call (%s: %s)", type(exc).__name__, exc)
        return None
    session.add_audio_tap(spool)
    return spool


def caller_number(remote_uri: str) -> str | None:
    """The user part of a SIP remote URI, when it looks like a phone number."""
    match = re.search(r"(?:sips?|tel):(\+?[\d().\- ]{3,})[@;>]?", remote_uri)
    return match.group(1) if match else None


PLAIN_CALL_FILES = ("recording.wav", "agent.wav", "events.jsonl", "transcript.txt", "transcript.json",
                    "summary.json", "sip.json", "web.json")
"""What a call folder holds in plain (audio, transcripts, the caller's number in sip.json)."""


def remove_call_files(out_dir: Path) -> int:
    """Overwrite and delete a call folder's plain files, then the folder if nothing else is in it."""
    removed = 0
    for name in PLAIN_CALL_FILES:
        path = out_dir / name
        if path.is_file():
            shred(path)
            removed += 1
    with contextlib.suppress(OSError):  # not empty (files this module does not know) or already gone
        out_dir.rmdir()
    return removed


class SipStoreObserver:
    """For `ivr serve` (and the console's web calls, `source="web"`): a writer per call, subscribed when the
    session is made, finished when it closes; then the call's plain folder is removed unless `keep_files`."""

    def __init__(self, store: Store, keep_files: bool = False, source: str = "sip") -> None:
        self.store = store
        self.keep_files = keep_files
        self.source = source
        self.webhooks: WebhookOptions | None = None
        """Set by `ivr serve` with a webhook URL: the writers add webhook events to the outbox."""
        self._writers: dict[int, StoreWriter] = {}
        self._spools: dict[int, LiveSpool] = {}

    def call_started(self, session: Any, remote_uri: str) -> None:
        writer = StoreWriter(self.store, source=self.source, caller=caller_number(remote_uri), webhooks=self.webhooks,
                             upset=UpsetRule.from_flow(getattr(session, "flow", None)))
        self._writers[id(session)] = writer
        session.log.subscribe(writer)
        spool = live_spool(self.store, session)
        if spool is not None:
            self._spools[id(session)] = spool

    def call_closed(self, session: Any, out_dir: Path) -> None:
        spool = self._spools.pop(id(session), None)
        if spool is not None:
            spool.close()
        writer = self._writers.pop(id(session), None)
        if writer is None:
            return
        writer.finish(session.transcript, out_dir / "recording.wav")
        if self.keep_files:
            return
        if not writer.finished:
            log.warning("call %s was not stored completely; its plain files are kept in %s",
                        writer.call_id, out_dir)
            return
        remove_call_files(out_dir)
