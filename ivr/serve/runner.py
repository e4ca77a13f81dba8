"""The runner thread of one SIP call: drives its CallSession at the media clock's pace.

The runner is paced by the media clock: it blocks on the media port for the caller's next 20 ms
frame, ticks the session with it, and queues the agent's frame for the port's next request.
A tick never waits on a model, so the runner keeps up; the port's outbound deque absorbs jitter.

When the session ends with a transfer, the runner carries it out (see `_transfer`): REFER first; if
the caller's side refuses it or the human does not answer, a second call to the human (`HumanCall`)
bridged to the caller's audio, recorded on the agent's channel; if that fails too, the caller hears
that an agent will call back. The session keeps recording throughout.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ivr.call.driver import drive
from ivr.call.events import (
    BridgeEnded,
    ReplyStarted,
    TransferBridge,
    TransferDone,
    TransferFailed,
    TransferRefer,
    TransferReferFailed,
    WebhookRequested,
)
from ivr.call.observers import close_session
from ivr.call.services import Services
from ivr.call.session import CallSession
from ivr.serve.transfer import TransferContext, context_from_session, post_webhook
from ivr.serve.webhooks import retry_policy
from telephony.audio.frame import Frame
from telephony.clock import WallClock
from telephony.sip.call import HumanCall, SipCall
from telephony.sip.media import FRAME_BYTES, LINE_RATE_HZ, CallMediaPort
from telephony.sip.security import peer_text
from telephony.sip.transport import READ_TIMEOUT_S, SipTransport

log = logging.getLogger(__name__)

DRAIN_TIMEOUT_S = 2.0
"""After the session ends, how long its last words may take to leave before the hangup."""
TAIL_S = 0.3
"""Silence after the last agent frame, so the caller's jitter buffer plays it out before BYE."""
ANNOUNCE_LIMIT_S = 30.0
"""Longest wait for an announcement (the callback offer) to be spoken before the hangup."""


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
            observer.call_started(self.session, peer_text(call.getInfo().remoteUri))
        self.line = SipTransport(port, self.clock, call.server.config.rtp_timeout_s)
        self._hung_up = self.line.hung_up
        self.result = ""
        self.transfer: dict[str, Any] = {}
        self.started_at = time.time()
        self.finished = threading.Event()

    def remote_hung_up(self) -> None:
        self.line.disconnected(self.call.ended_by_server)

    def rtp_timed_out(self) -> None:
        """From the SIP thread: no RTP from the caller for too long; the call ends (BYE)."""
        self.line.rtp_timed_out.set()

    def key(self, digit: str, method: str) -> None:
        """A key press, from the SIP thread; the driver hands it to the session (digits are never logged)."""
        self.line.key(digit, method)

    def run(self) -> None:
        session = self.session
        try:
            end = drive(session, self.line, self.clock)
            if end is not None and end.outcome == "rtp-timeout":
                self.result = "rtp-timeout"
                self.call.server.hang_up(self.call)
            elif not self._hung_up.is_set():
                self._drain()
                if session.outcome == "transferred":
                    self.result = self._transfer()
                else:
                    self.call.server.hang_up(self.call)
        except Exception:
            log.exception("call %s: the session failed", self.call.id)
            self.result = "error"
            self.call.server.hang_up(self.call)
        finally:
            try:
                close_session(session, self.out_dir, self.observers, self._write_metadata, log,
                              f"call {self.call.id}")
            finally:
                self.finished.set()
                self.call.server.runner_finished()

    # ---- transfer to a human ---------------------------------------------------------------------------

    def _transfer(self) -> str:
        """REFER, else a bridged call, else a callback offer; returns the call's outcome."""
        server, call, session = self.call.server, self.call, self.session
        cfg = server.config
        uri = cfg.resolve_transfer(session.transfer_target)
        context = context_from_session(session, call.id, call.sip_call_id, self.started_at)
        self.transfer = {"flow_target": session.transfer_target, "uri": uri, "summary": context.summary}
        if not uri:
            session.log.emit(TransferFailed(step="route", target=session.transfer_target))
            return self._offer_callback(context, uri, "no transfer target configured")
        self._webhook("call.transferred", context.webhook_payload(uri))
        # 1. blind transfer: the caller's phone calls the human
        session.log.emit(TransferRefer(uri=uri))
        server.refer(call, uri, context)
        self._keep_line(lambda: call.transfer_done.is_set(), cfg.refer_timeout_s)
        if self._hung_up.is_set():  # the caller's phone left us for the human
            self.transfer["method"] = "refer"
            return "transferred"
        if 200 <= call.transfer_status < 300:
            session.log.emit(TransferDone(method="refer", status=call.transfer_status))
            self.transfer["method"] = "refer"
            server.hang_up(call)
            return "transferred"
        session.log.emit(TransferReferFailed(status=call.transfer_status or "timeout"))
        # 2. bridged transfer: the agent calls the human and joins the audio
        session.log.emit(TransferBridge(uri=uri))
        server.dial_human(call, uri, context)
        self._keep_line(lambda: call.human is not None and (call.human.connected.is_set()
                                                             or call.human.ended.is_set()),
                        cfg.bridge_timeout_s)
        human = call.human
        if human is not None and human.connected.is_set() and not human.ended.is_set() \
                and not self._hung_up.is_set():
            session.log.emit(TransferDone(method="bridge"))
            self.transfer["method"] = "bridge"
            self._bridge(human)
            server.hang_up(call)
            return "transferred"
        server.hang_up_human(call)
        if self._hung_up.is_set():
            return "caller-hangup"
        status = human.status_code if human is not None else 0
        session.log.emit(TransferFailed(step="bridge", status=status or "timeout"))
        return self._offer_callback(context, uri, f"bridged call failed ({status or 'no answer'})")

    def _offer_callback(self, context: TransferContext, uri: str, why: str) -> str:
        cfg = self.call.server.config
        log.warning("call %s: transfer failed (%s); offering a callback", self.call.id, why)
        self._webhook("call.callback_requested", context.webhook_payload(uri, error=why))
        self.transfer["method"] = "callback"
        self.session.announce(cfg.callback_prompt)
        self._keep_line(lambda: not self.session.playing, ANNOUNCE_LIMIT_S)
        if not self._hung_up.is_set():
            self._drain()
            self.call.server.hang_up(self.call)
        return "callback"

    def _webhook(self, name: str, data: dict[str, Any]) -> None:
        """A webhook event about this call: into the event log, from where the call store puts it in its
        outbox (in the transaction that stores the event); without a store, posted from here (in memory)."""
        cfg = self.call.server.config
        if not cfg.webhook_url:
            return
        self.session.log.emit(WebhookRequested(name=name, data=data))
        if not any(getattr(observer, "webhooks", None) is not None for observer in self.observers):
            post_webhook(cfg.webhook_url, name, self.call.id, data, cfg.webhook_secret(), retry_policy(cfg))

    def _keep_line(self, done: Callable[[], bool], timeout_s: float) -> None:
        """Tick the (ended) session, so the recording goes on and announcements play, until done()."""
        deadline = time.monotonic() + timeout_s
        while not done() and not self._hung_up.is_set() and time.monotonic() < deadline:
            self.line.write(self.session.tick(self.line.read(self.clock.now_ms())))

    def _bridge(self, human: HumanCall) -> None:
        """Caller and human talk; the recording gets the caller left and the human right."""
        silence = bytes(FRAME_BYTES)
        while not self._hung_up.is_set() and not human.ended.is_set():
            _, pcm = self.port.read(READ_TIMEOUT_S)
            other = None
            if human.port is not None:
                _, other = human.port.read(0.0)
            now = self.clock.now_ms()
            self.session.record(Frame(pcm or silence, LINE_RATE_HZ, now), Frame(other or silence, LINE_RATE_HZ, now))
        self.session.log.emit(BridgeEnded(by="caller" if self._hung_up.is_set() else "human"))

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
                "outcome": self.result or session.outcome
                or ("caller-hangup" if self._hung_up.is_set() else "unfinished"),
                "reason": session.end_reason, "transfer_target": session.transfer_target,
                "transfer": self.transfer,
                "frames_received": self.port.frames_received, "frames_sent": self.port.frames_sent,
                "voice_to_voice_ms": [e.latency_ms for e in session.log.of_type(ReplyStarted)]}
        try:
            (self.out_dir / "sip.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        except OSError as exc:
            log.error("call %s: cannot write metadata: %s", self.call.id, exc)
