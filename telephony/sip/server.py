"""`ivr serve`: answers every INVITE with a CallSession; one account, many calls, a call limit.

Lifecycle of a call, by thread:
  SIP thread   INVITE -> onIncomingCall: 180, then 200 (or 503 above max_calls)
               onCallMediaState (active) -> media port joined to the call's audio, runner started
               onDtmfDigit -> runner.key ; onCallState(DISCONNECTED) -> runner told, call forgotten
  runner       ticks the session at the media clock's pace; when the session ends: BYE, or a transfer
               (REFER, else a bridged call to the human, else a callback offer), all SIP work posted
               to the SIP thread; then close the session and write sip.json
  SIP thread   every second: a call with no RTP for rtp_timeout_s (and not on hold) is ended
Only sources in the allow-list (if one is set) may call: others get 403.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Any

import pjsua2 as pj

from ivr.services import Services
from telephony.sip.call import HumanCall, SipCall, redact
from telephony.sip.config import SipConfig
from telephony.sip.endpoint import MAX_ANSWERED_CALLS, SipEndpoint
from telephony.sip.security import AllowList, source_ip
from telephony.sip.transfer import TransferContext, refer_to

log = logging.getLogger(__name__)

SIP_RINGING = 180
SIP_OK = 200
SIP_FORBIDDEN = 403
SIP_SERVICE_UNAVAILABLE = 503
SHUTDOWN_WAIT_S = 3.0
"""After the grace period (or at once, without one): how long hung-up calls get to close their sessions."""
RTP_CHECK_EVERY_S = 1.0
SRTP_USE = {"off": pj.PJMEDIA_SRTP_DISABLED, "optional": pj.PJMEDIA_SRTP_OPTIONAL,
            "mandatory": pj.PJMEDIA_SRTP_MANDATORY}


class _Account(pj.Account):
    def __init__(self, server: SipServer) -> None:
        super().__init__()
        self.server = server

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:  # noqa: N802 (pjsua2 name)
        try:
            self.server.incoming(self, prm)
        except Exception:
            log.exception("incoming call: handling failed")

    def onRegState(self, prm: pj.OnRegStateParam) -> None:  # noqa: N802 (pjsua2 name)
        try:
            self.server.registration_changed(self, prm)
        except Exception:
            log.exception("registration state: handling failed")


class SipServer:
    """Owns the endpoint, the account and the live calls; thread-safe start/stop."""

    def __init__(self, services: Services, config: SipConfig) -> None:
        self.services = services
        if config.max_calls > MAX_ANSWERED_CALLS:
            log.warning("max_calls %d is above what pjsua2 allows in one process; answering at most %d at once",
                        config.max_calls, MAX_ANSWERED_CALLS)
            config = dataclasses.replace(config, max_calls=MAX_ANSWERED_CALLS)
        self.config = config
        self.endpoint = SipEndpoint(config, self._started, self._stopping, self._poll)
        self.allow_list = AllowList(config.allow)
        self._next_rtp_check = 0.0
        self._account: _Account | None = None
        self._calls: dict[int, SipCall] = {}
        self._rejected: list[SipCall] = []
        self._closing: list[SipCall] = []
        self._lock = threading.Lock()
        self._accepting = True
        self.calls_answered = 0
        self.calls_rejected = 0
        self.calls_forbidden = 0
        self.registered = False
        self.observers: list[Any] = []
        """Told of each call: call_started(session, remote_uri), call_closed(session, out_dir)."""

    # ---- control, from any thread --------------------------------------------------------------------

    def start(self) -> None:
        self.config.out_dir.mkdir(parents=True, exist_ok=True)
        self.endpoint.start()

    def stop(self, grace_s: float = 0.0, hurry: threading.Event | None = None) -> None:
        """Refuse new calls (503); let live calls end by themselves for up to grace_s (or until `hurry`
        is set), then hang up the rest, wait briefly for their sessions, and stop pjsua2."""
        self._accepting = False
        deadline = time.monotonic() + grace_s
        if grace_s > 0 and self.live_calls():
            log.info("shutting down: %d call(s) may go on for up to %.0f s", len(self.live_calls()), grace_s)
        while self.live_calls() and time.monotonic() < deadline and not (hurry is not None and hurry.is_set()):
            time.sleep(0.1)
        self.endpoint.post(self._hang_up_all)
        deadline = time.monotonic() + SHUTDOWN_WAIT_S
        for call in self.live_calls():
            if call.runner is not None:
                call.runner.finished.wait(max(0.0, deadline - time.monotonic()))
        self.endpoint.stop()

    def live_calls(self) -> list[SipCall]:
        with self._lock:
            return list(self._calls.values())

    def refer(self, call: SipCall, uri: str, context: TransferContext) -> None:
        self.endpoint.post(lambda: self._refer(call, uri, context))

    def dial_human(self, call: SipCall, uri: str, context: TransferContext) -> None:
        self.endpoint.post(lambda: self._dial(call, uri, context))

    def hang_up_human(self, call: SipCall) -> None:
        self.endpoint.post(lambda: self._bye_human(call))

    def hang_up(self, call: SipCall) -> None:
        """BYE to the caller, and to the human if one is bridged in."""
        def both() -> None:
            self._bye(call)
            self._bye_human(call)
        self.endpoint.post(both)

    # ---- SIP thread ----------------------------------------------------------------------------------

    def _started(self, ep: pj.Endpoint) -> None:
        cfg = pj.AccountConfig()
        cfg.idUri = f"sip:ivr@{self.config.bind}:{self.config.port}"
        if self.config.rtp_port:
            cfg.mediaConfig.transportConfig.port = self.config.rtp_port
        cfg.mediaConfig.transportConfig.boundAddress = self.config.bind
        cfg.mediaConfig.srtpUse = SRTP_USE[self.config.srtp]
        # SDES keys travel in the SDP; 0: also over UDP/TCP signaling (put TLS in front to protect them)
        cfg.mediaConfig.srtpSecureSignaling = 0
        if self.config.register:
            cfg.idUri = self.config.register
            reg = cfg.regConfig
            reg.registrarUri = self.config.registrar_uri
            reg.registerOnAdd = True
            reg.timeoutSec = self.config.register_interval_s
            reg.retryIntervalSec = 30
            password = self.config.auth_password()
            if password:
                cfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", self.config.digest_user, 0,
                                                               password))
            log.info("registering with %s every %d s%s", self.config.registrar_uri, self.config.register_interval_s,
                     " (digest auth)" if password else "")
        account = _Account(self)
        account.create(cfg, True)
        self._account = account

    def registration_changed(self, account: _Account, prm: pj.OnRegStateParam) -> None:
        """Logs the registration's state: the registrar's status code and reason, never credentials."""
        info = account.getInfo()
        self.registered = bool(info.regIsActive)
        if self.registered:
            log.info("registration: registered with %s (%d %s, expires in %d s)", self.config.registrar_uri,
                     prm.code, prm.reason, info.regExpiresSec)
        elif prm.code // 100 == 2 or not self._accepting:  # shutting down: the un-REGISTER's answer
            log.info("registration: unregistered from %s (%d %s)", self.config.registrar_uri, prm.code, prm.reason)
        else:
            log.warning("registration: not registered with %s (%d %s); retrying", self.config.registrar_uri,
                        prm.code, prm.reason)

    def _stopping(self) -> None:
        self._hang_up_all()

    def incoming(self, account: _Account, prm: pj.OnIncomingCallParam) -> None:
        call = SipCall(account, prm.callId, self)
        info = call.getInfo()
        call.sip_call_id = info.callIdString
        call.caller = redact(info.remoteUri)
        source = str(prm.rdata.srcAddress)
        if not self.allow_list.allows(source):
            self.calls_forbidden += 1
            log.warning("call %s refused: source %s is not in the allow-list", call.id, source_ip(source))
            op = pj.CallOpParam()
            op.statusCode = SIP_FORBIDDEN
            self._rejected.append(call)
            call.answer(op)
            return
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

    def _poll(self) -> None:
        self._purge()
        if self.config.rtp_timeout_s > 0 and time.monotonic() >= self._next_rtp_check:
            self._next_rtp_check = time.monotonic() + RTP_CHECK_EVERY_S
            self._watch_rtp()

    def _watch_rtp(self) -> None:
        now = time.monotonic()
        for call in self.live_calls():
            runner = call.runner
            if runner is None or call.disconnected:
                continue
            try:
                packets, held = call.rx_state()
            except Exception:
                log.exception("call %s: RTP statistics failed", call.id)
                continue
            if held or packets != call.last_rx_packets:
                call.last_rx_packets = packets
                call.last_rtp_at = now
            elif now - call.last_rtp_at >= self.config.rtp_timeout_s:
                log.warning("call %s: no RTP for %.0f s; ending the call", call.id, now - call.last_rtp_at)
                call.last_rtp_at = float("inf")  # once
                runner.rtp_timed_out()

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
            call.audio = None
            if call.human is not None and call.human.ended.is_set():
                call.human.port = None
                call.human.audio = None
                call.human = None
            elif call.human is not None:
                keep.append(call)  # the human leg is still closing
                continue
        self._closing = keep

    def _bye(self, call: SipCall) -> None:
        if call.disconnected:
            return
        try:
            call.hangup(pj.CallOpParam())
        except Exception:
            log.exception("call %s: hangup failed", call.id)

    def _refer(self, call: SipCall, uri: str, context: TransferContext) -> None:
        if call.disconnected:
            return
        op = pj.CallOpParam()
        headers = context.headers()
        _add_headers(op, headers)
        call.transfer_done.clear()
        call.transfer_status = 0
        try:
            call.xfer(refer_to(uri, headers), op)
            log.info("call %s: REFER sent", call.id)
        except Exception:
            log.exception("call %s: REFER failed", call.id)
            call.transfer_status = 500
            call.transfer_done.set()

    def _dial(self, call: SipCall, uri: str, context: TransferContext) -> None:
        if call.disconnected or self._account is None:
            return
        human = HumanCall(self._account, call)
        call.human = human
        op = pj.CallOpParam(True)
        _add_headers(op, context.headers())
        try:
            human.makeCall(uri, op)
            log.info("call %s: calling the human for a bridged transfer", call.id)
        except Exception as exc:
            log.error("call %s: the bridged call could not start: %s", call.id, exc)
            human.ended.set()

    def _bye_human(self, call: SipCall) -> None:
        human = call.human
        if human is None or human.ended.is_set():
            return
        try:
            human.hangup(pj.CallOpParam())
        except Exception:
            log.exception("call %s: hanging up the human leg failed", call.id)
            human.ended.set()

    def _hang_up_all(self) -> None:
        for call in self.live_calls():
            self._bye(call)
            self._bye_human(call)


def _add_headers(op: pj.CallOpParam, headers: dict[str, str]) -> None:
    for name, value in headers.items():
        if value:
            header = pj.SipHeader()
            header.hName = name
            header.hValue = value
            op.txOption.headers.append(header)
