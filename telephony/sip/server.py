"""`ivr serve`: answers every INVITE with a CallSession; one account, many calls, a call limit.

Lifecycle of a call, by thread:
  SIP thread   INVITE -> onIncomingCall: 180, then 200 (or 503 above max_calls)
               onCallMediaState (active) -> media port joined to the call's audio, runner started
               onDtmfDigit -> runner.key ; onCallState(DISCONNECTED) -> runner told, call forgotten
  runner       ticks the session at the media clock's pace; when the session ends: REFER or BYE
               (posted to the SIP thread), then close the session and write sip.json
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pjsua2 as pj

from ivr.services import Services
from telephony.sip.call import SipCall, redact
from telephony.sip.config import SipConfig
from telephony.sip.endpoint import SipEndpoint

log = logging.getLogger(__name__)

SIP_RINGING = 180
SIP_OK = 200
SIP_SERVICE_UNAVAILABLE = 503
SHUTDOWN_WAIT_S = 3.0


class _Account(pj.Account):
    def __init__(self, server: SipServer) -> None:
        super().__init__()
        self.server = server

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:  # noqa: N802 (pjsua2 name)
        try:
            self.server.incoming(self, prm)
        except Exception:
            log.exception("incoming call: handling failed")


class SipServer:
    """Owns the endpoint, the account and the live calls; thread-safe start/stop."""

    def __init__(self, services: Services, config: SipConfig) -> None:
        self.services = services
        self.config = config
        self.endpoint = SipEndpoint(config, self._started, self._stopping, self._purge)
        self._account: _Account | None = None
        self._calls: dict[int, SipCall] = {}
        self._rejected: list[SipCall] = []
        self._closing: list[SipCall] = []
        self._lock = threading.Lock()
        self._accepting = True
        self.calls_answered = 0
        self.calls_rejected = 0
        self.observers: list[Any] = []
        """Told of each call: call_started(session, remote_uri), call_closed(session, out_dir)."""

    # ---- control, from any thread --------------------------------------------------------------------

    def start(self) -> None:
        self.config.out_dir.mkdir(parents=True, exist_ok=True)
        self.endpoint.start()

    def stop(self) -> None:
        """Refuse new calls, hang up the live ones, wait briefly for their sessions, stop pjsua2."""
        self._accepting = False
        self.endpoint.post(self._hang_up_all)
        deadline = time.monotonic() + SHUTDOWN_WAIT_S
        for call in self.live_calls():
            if call.runner is not None:
                call.runner.finished.wait(max(0.0, deadline - time.monotonic()))
        self.endpoint.stop()

    def live_calls(self) -> list[SipCall]:
        with self._lock:
            return list(self._calls.values())

    def end_call(self, call: SipCall, outcome: str, transfer_target: str) -> None:
        """From a runner: the session ended. Transfer with REFER to a SIP target, otherwise hang up."""
        if outcome == "transferred" and transfer_target.startswith(("sip:", "sips:", "tel:")):
            self.endpoint.post(lambda: self._refer(call, transfer_target))
        else:
            self.endpoint.post(lambda: self._bye(call))

    def hang_up(self, call: SipCall) -> None:
        self.endpoint.post(lambda: self._bye(call))

    # ---- SIP thread ----------------------------------------------------------------------------------

    def _started(self, ep: pj.Endpoint) -> None:
        cfg = pj.AccountConfig()
        cfg.idUri = f"sip:ivr@{self.config.bind}:{self.config.port}"
        if self.config.rtp_port:
            cfg.mediaConfig.transportConfig.port = self.config.rtp_port
        cfg.mediaConfig.transportConfig.boundAddress = self.config.bind
        account = _Account(self)
        account.create(cfg, True)
        self._account = account

    def _stopping(self) -> None:
        self._hang_up_all()

    def incoming(self, account: _Account, prm: pj.OnIncomingCallParam) -> None:
        call = SipCall(account, prm.callId, self)
        info = call.getInfo()
        call.sip_call_id = info.callIdString
        call.caller = redact(info.remoteUri)
        with self._lock:
            full = len(self._calls) >= self.config.max_calls
            if not (full or not self._accepting):
                self._calls[prm.callId] = call
        if full or not self._accepting:
            self.calls_rejected += 1
            log.warning("call %s from %s refused: %s", call.id, call.caller,
                        "call limit reached" if full else "shutting down")
            op = pj.CallOpParam()
            op.statusCode = SIP_SERVICE_UNAVAILABLE
            header = pj.SipHeader()
            header.hName = "Retry-After"
            header.hValue = str(self.config.retry_after_s)
            op.txOption.headers.append(header)
            self._rejected.append(call)
            call.answer(op)
            return
        self.calls_answered += 1
        log.info("call %s from %s: answering", call.id, call.caller)
        ringing = pj.CallOpParam()
        ringing.statusCode = SIP_RINGING
        call.answer(ringing)
        ok = pj.CallOpParam()
        ok.statusCode = SIP_OK
        call.answer(ok)

    def call_disconnected(self, call: SipCall) -> None:
        """The call is over on the SIP side; pjsua2 objects are dropped on a later poll, not inside
        their own callback."""
        with self._lock:
            for key, live in list(self._calls.items()):
                if live is call:
                    del self._calls[key]
        self.endpoint.post(lambda: self._forget(call))

    def _forget(self, call: SipCall) -> None:
        if call in self._rejected:
            self._rejected.remove(call)
        self._closing.append(call)

    def _purge(self) -> None:
        """Drop ended calls once their runner is done, here on the SIP thread, so pjsua2 objects (the
        call and its media port) are destroyed on a pjsip-registered thread and never from a callback."""
        if not self._closing:
            return
        keep = []
        for call in self._closing:
            runner = call.runner
            if runner is not None and not runner.finished.is_set():
                keep.append(call)
                continue
            call.runner = None  # breaks the call <-> runner cycle so nothing is left to the cyclic GC
            call.port = None
        self._closing = keep

    def _bye(self, call: SipCall) -> None:
        if call.disconnected:
            return
        try:
            call.hangup(pj.CallOpParam())
        except Exception:
            log.exception("call %s: hangup failed", call.id)

    def _refer(self, call: SipCall, target: str) -> None:
        if call.disconnected:
            return
        op = pj.CallOpParam()
        for name, value in self._transfer_headers(call).items():
            header = pj.SipHeader()
            header.hName = name
            header.hValue = value
            op.txOption.headers.append(header)
        try:
            call.xfer(target, op)
            log.info("call %s: REFER sent", call.id)
        except Exception:
            log.exception("call %s: REFER failed; hanging up", call.id)
            self._bye(call)

    @staticmethod
    def _transfer_headers(call: SipCall) -> dict[str, str]:
        runner: Any = call.runner
        reason = runner.session.end_reason if runner is not None else ""
        return {"X-IVR-Call-ID": call.id, "X-IVR-Reason": reason.replace("\r", " ").replace("\n", " ")}

    def _hang_up_all(self) -> None:
        for call in self.live_calls():
            self._bye(call)
