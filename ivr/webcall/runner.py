"""The thread of one web call: a CallSession at 16 kHz driven by the one driver loop over a WebRtcTransport,
recorded and stored like a phone call (source "web").

Transfer: a web call has no SIP leg to refer or bridge, so when the flow hands the caller to a person the
runner records a callback request (a `callback_requested` event, and the `call.callback_requested` webhook
event when a webhook URL is configured: through the store's outbox, or posted from memory with retries),
tells the caller an agent will call back, and ends the call; the call's outcome stays "transferred" with the
flow's reason, as for a phone call whose transfer fell back to a callback.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr.call.driver import drive
from ivr.call.events import CallbackRequested, CallEvent, ReplyStarted, WebhookRequested
from ivr.call.observers import close_session
from ivr.call.services import Services
from ivr.call.session import CallSession
from ivr.serve.transfer import context_from_session, post_webhook
from ivr.webcall.page import page_message
from ivr.webhooks import RetryPolicy
from telephony.audio.frame import INTERNAL_RATE_HZ
from telephony.clock import WallClock
from telephony.sip.config import CALLBACK_PROMPT
from telephony.webrtc.config import WebRtcConfig
from telephony.webrtc.transport import WebRtcTransport

log = logging.getLogger(__name__)

DRAIN_TIMEOUT_S = 3.0
"""After the session ends, how long its last words may take to leave before the connection closes."""
TAIL_S = 0.4
"""Silence after the last agent frame, so the browser's jitter buffer plays it out."""
ANNOUNCE_LIMIT_S = 30.0
CALLBACK_WEBHOOK = "call.callback_requested"


@dataclass(frozen=True)
class WebCallSettings:
    out_dir: Path = Path("calls/web")
    """Each call's folder (recording.wav, events.jsonl, web.json) until the store has it."""
    max_calls: int = 2
    """Web calls at once; above, the page is told the agent is busy."""
    keep_call_files: bool = False
    """Keep the plain call folders after the store has the call (a privacy risk, for debugging)."""
    webhook_url: str = ""
    """Told of each callback request (JSON POST), as `ivr serve` tells of a failed transfer."""
    webhook_timeout_s: float = 3.0
    callback_prompt: str = CALLBACK_PROMPT
    connect_timeout_s: float = 20.0
    """How long the page's connection may take to come up (ICE, DTLS); a page that never connects ends the call."""
    webrtc: WebRtcConfig = field(default_factory=WebRtcConfig.from_env)


class WebCallRunner(threading.Thread):
    def __init__(self, call_id: str, services: Services, peer: Any, settings: WebCallSettings,
                 observers: list[Any], on_finished: Callable[[WebCallRunner], None]) -> None:
        """peer: a telephony.webrtc.peer.WebRtcPeer whose offer has been answered."""
        super().__init__(name=f"webcall-{call_id}", daemon=True)
        self.call_id = call_id
        self.peer = peer
        self.settings = settings
        self.out_dir = settings.out_dir / call_id
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.clock = WallClock()
        self.session = CallSession(services, self.clock, INTERNAL_RATE_HZ, self.out_dir, call_id=call_id)
        self.line = WebRtcTransport(self.clock, peer.track)
        peer.on_audio = self.line.hear
        peer.on_message = self._message
        peer.on_closed = self.line.caller_left
        self.session.log.subscribe(self._to_page)
        self.observers = observers
        for observer in observers:
            observer.call_started(self.session, "")
        self._on_finished = on_finished
        self.started_at = time.time()
        self.result = ""
        self.finished = threading.Event()

    def _to_page(self, event: CallEvent) -> None:
        message = page_message(event)
        if message is not None:
            self.peer.send(message)

    def _message(self, message: dict[str, Any]) -> None:
        """From the page (the event loop): a key of its keypad, or the hang-up button."""
        kind = message.get("type")
        if kind == "key":
            self.line.key(str(message.get("key", "")))
        elif kind == "hangup":
            self.line.caller_left("caller hung up")

    def hang_up(self, reason: str) -> None:
        """End the call from the server's side (the console is stopping)."""
        self.line.caller_left(reason)

    def run(self) -> None:
        session = self.session
        try:
            # the greeting starts when the caller can hear it; a page that never connects ends the call at once
            if not self.peer.connected.wait(self.settings.connect_timeout_s):
                self.line.caller_left("the page never connected")
            end = drive(session, self.line, self.clock)
            if end is None and session.outcome == "transferred":
                self._request_callback()
            if end is None:
                self._drain()
            self.result = "callback" if session.outcome == "transferred" and end is None else (
                session.outcome or "caller-hangup")
        except Exception:
            log.exception("web call %s: the session failed", self.call_id)
            self.result = "error"
        finally:
            self._finish()

    def _finish(self) -> None:
        try:
            close_session(self.session, self.out_dir, self.observers, self._write_metadata, log,
                          f"web call {self.call_id}")
        finally:
            self.peer.send({"type": "bye", "outcome": self.result})
            time.sleep(0.1)  # the bye leaves before the connection closes
            closing = self.peer.close()
            if closing is not None:
                try:
                    closing.result(5.0)
                except Exception:  # noqa: BLE001 - the connection is gone either way
                    log.debug("web call %s: closing the connection failed", self.call_id)
            self.finished.set()
            self._on_finished(self)

    def _request_callback(self) -> None:
        session = self.session
        session.log.emit(CallbackRequested(target=session.transfer_target, reason=session.end_reason))
        if self.settings.webhook_url:  # as `ivr serve`: into the log (the store's outbox), else posted from here
            context = context_from_session(session, self.call_id, "", self.started_at)
            data = context.webhook_payload("", error="web call: no SIP leg to transfer", channel="web")
            session.log.emit(WebhookRequested(name=CALLBACK_WEBHOOK, data=data))
            if not any(getattr(observer, "webhooks", None) is not None for observer in self.observers):
                post_webhook(self.settings.webhook_url, CALLBACK_WEBHOOK, self.call_id, data,
                             policy=RetryPolicy(timeout_s=self.settings.webhook_timeout_s))
        session.announce(self.settings.callback_prompt)
        deadline = time.monotonic() + ANNOUNCE_LIMIT_S
        while session.playing and not self.line.closed and time.monotonic() < deadline:
            self.line.write(session.tick(self.line.read(self.clock.now_ms())))

    def _drain(self) -> None:
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while self.peer.track.queued and not self.line.closed and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(TAIL_S)

    def _write_metadata(self) -> None:
        session = self.session
        meta = {"call_id": self.call_id, "channel": "web", "started_at": self.started_at, "ended_at": time.time(),
                "outcome": self.result or session.outcome or "unfinished", "reason": session.end_reason,
                "transfer_target": session.transfer_target,
                "frames_received": self.line.frames_received, "frames_sent": self.peer.track.frames_sent,
                "silent_frames_shed": self.line.silence_shed,
                "voice_to_voice_ms": [e.latency_ms for e in session.log.of_type(ReplyStarted)]}
        try:
            (self.out_dir / "web.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        except OSError as exc:
            log.error("web call %s: cannot write metadata: %s", self.call_id, exc)
