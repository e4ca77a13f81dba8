"""One SIP call: pjsua2 callbacks (SIP thread) and the runner thread that drives its CallSession.

The runner is paced by the media clock: it blocks on the media port for the caller's next 20 ms
frame, ticks the session with it, and queues the agent's frame for the port's next request.
A tick never waits on a model, so the runner keeps up; the port's outbound deque absorbs jitter.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pjsua2 as pj

from ivr.clock import WallClock
from ivr.frame import Frame
from ivr.services import Services
from ivr.session import CallSession
from telephony.sip.media import LINE_RATE_HZ, CallMediaPort, audio_format

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 0.1
"""With no frame from the media clock for this long, the session ticks on silence anyway."""
DRAIN_TIMEOUT_S = 2.0
"""After the session ends, how long its last words may take to leave before the hangup."""
TAIL_S = 0.3
"""Silence after the last agent frame, so the caller's jitter buffer plays it out before BYE."""
DTMF_METHODS = {0: "rfc4733", 1: "sip-info", 2: "inband"}


def redact(value: str) -> str:
    """A stable, non-reversible tag for a caller number or URI (never logged in plain text)."""
    return "h:" + hashlib.sha256(value.encode()).hexdigest()[:12]


class SipCall(pj.Call):
    """pjsua2's call object. Every callback runs on the SIP thread and must never raise."""

    def __init__(self, account: pj.Account, call_id: int, server: Any) -> None:
        super().__init__(account, call_id)
        self.server = server
        self.id = uuid.uuid4().hex[:12]
        self.runner: CallRunner | None = None
        self.port: CallMediaPort | None = None
        self.disconnected = False
        self.sip_call_id = ""
        self.caller = ""

    def _guard(self, what: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception:
            log.exception("call %s: %s failed", self.id, what)

    def onCallState(self, prm: pj.OnCallStateParam) -> None:  # noqa: N802 (pjsua2 name)
        self._guard("call state", self._on_state)

    def _on_state(self) -> None:
        info = self.getInfo()
        log.info("call %s: %s (%d)", self.id, info.stateText, info.lastStatusCode)
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.disconnected = True
            if self.runner is not None:
                self.runner.remote_hung_up()
            self.server.call_disconnected(self)

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:  # noqa: N802
        self._guard("media state", self._on_media)

    def _on_media(self) -> None:
        info = self.getInfo()
        for index, media in enumerate(info.media):
            if media.type != pj.PJMEDIA_TYPE_AUDIO or media.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            audio = self.getAudioMedia(index)
            if self.port is None:
                self.port = CallMediaPort()
                self.port.createPort(f"call-{self.id}", audio_format(LINE_RATE_HZ))
            audio.startTransmit(self.port)
            self.port.startTransmit(audio)
            if self.runner is None:
                self.runner = CallRunner(self, self.port, self.server.services, self.server.config.out_dir)
                self.runner.start()
            return

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:  # noqa: N802 (RFC 4733 and SIP INFO)
        def deliver() -> None:
            if self.runner is not None:
                self.runner.key(str(prm.digit), DTMF_METHODS.get(int(prm.method), str(prm.method)))
        self._guard("DTMF", deliver)

    def onCallTransferStatus(self, prm: pj.OnCallTransferStatusParam) -> None:  # noqa: N802
        def status() -> None:
            log.info("call %s: transfer status %d (final=%s)", self.id, prm.statusCode, prm.finalNotify)
            if prm.finalNotify or prm.statusCode >= 200:
                prm.cont = False
                self.server.hang_up(self)
        self._guard("transfer status", status)


class CallRunner(threading.Thread):
    """Drives one CallSession from the media port until either side ends the call."""

    def __init__(self, call: SipCall, port: CallMediaPort, services: Services, out_root: Path) -> None:
        super().__init__(name=f"call-{call.id}", daemon=True)
        self.call = call
        self.port = port
        self.out_dir = out_root / call.id
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.clock = WallClock()
        self.session = CallSession(services, self.clock, LINE_RATE_HZ, self.out_dir, call_id=call.id)
        self.observers = list(getattr(call.server, "observers", ()))  # e.g. the call store
        for observer in self.observers:
            observer.call_started(self.session, call.getInfo().remoteUri)
        self._hung_up = threading.Event()
        self._keys: deque[tuple[str, str]] = deque()
        self.started_at = time.time()
        self.finished = threading.Event()

    def remote_hung_up(self) -> None:
        self._hung_up.set()

    def key(self, digit: str, method: str) -> None:
        """A key press, from the SIP thread; the runner hands it to the session (digits are never logged)."""
        self._keys.append((digit, method))

    def _take_keys(self) -> None:
        while self._keys:
            digit, method = self._keys.popleft()
            self.session.log.emit("dtmf_received", method=method)
            self.session.dtmf(digit)

    def run(self) -> None:
        session = self.session
        try:
            session.start()
            while not session.ended:
                if self._hung_up.is_set():
                    session.caller_hung_up()
                    break
                _, pcm = self.port.read(READ_TIMEOUT_S)
                self._take_keys()
                frame = Frame(pcm, LINE_RATE_HZ, self.clock.now_ms()) if pcm is not None else None
                self.port.write(session.tick(frame).pcm)
            if not self._hung_up.is_set():
                self._drain()
                self.call.server.end_call(self.call, session.outcome, session.transfer_target)
        except Exception:
            log.exception("call %s: the session failed", self.call.id)
            self.call.server.end_call(self.call, "error", "")
        finally:
            try:
                session.close()
            finally:
                self._write_metadata()
                for observer in self.observers:
                    try:
                        observer.call_closed(self.session, self.out_dir)
                    except Exception:
                        log.exception("call %s: observer failed", self.call.id)
                self.finished.set()

    def _drain(self) -> None:
        """Let the agent's last frames reach the caller before hanging up."""
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while self.port.queued_out and time.monotonic() < deadline and not self._hung_up.is_set():
            self.port.read(READ_TIMEOUT_S)
        time.sleep(TAIL_S)

    def _write_metadata(self) -> None:
        session = self.session
        meta = {"call_id": self.call.id, "sip_call_id": self.call.sip_call_id, "caller": self.call.caller,
                "started_at": self.started_at, "ended_at": time.time(),
                "outcome": session.outcome or ("caller-hangup" if self._hung_up.is_set() else "unfinished"),
                "reason": session.end_reason, "transfer_target": session.transfer_target,
                "frames_received": self.port.frames_received, "frames_sent": self.port.frames_sent,
                "voice_to_voice_ms": [e["latency_ms"] for e in session.log.of_type("reply_started")]}
        try:
            (self.out_dir / "sip.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        except OSError as exc:
            log.error("call %s: cannot write metadata: %s", self.call.id, exc)
