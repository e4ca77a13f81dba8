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
import gc
import logging
import os
import threading
import time
from typing import Any

import pjsua2 as pj

from ivr.call.privacy import caller_tag, derive_pepper
from ivr.call.services import Services
from ivr.serve import metrics
from ivr.serve.headroom import Headroom
from ivr.serve.kamailio import REFUSED_HEADER
from ivr.serve.runner import CallRunner
from ivr.serve.transfer import TransferContext, refer_to
from ivr.store.config import StoreConfig
from telephony.sip.call import HumanCall, SipCall
from telephony.sip.config import SipConfig
from telephony.sip.endpoint import MAX_ANSWERED_CALLS, SipEndpoint
from telephony.sip.media import MediaPorts
from telephony.sip.security import AllowList, peer_text, source_ip

log = logging.getLogger(__name__)

SIP_RINGING = 180
SIP_OK = 200
SIP_FORBIDDEN = 403
SIP_SERVER_ERROR = 500
SIP_SERVICE_UNAVAILABLE = 503
SHUTDOWN_WAIT_S = 3.0
"""After the grace period (or at once, without one): how long hung-up calls get to close their sessions."""
RELEASE_WAIT_S = 10.0
"""At the very end, how long the SIP thread waits for sessions still closing before it drops the calls."""
RTP_CHECK_EVERY_S = 1.0
SRTP_USE = {"off": pj.PJMEDIA_SRTP_DISABLED, "optional": pj.PJMEDIA_SRTP_OPTIONAL,
            "mandatory": pj.PJMEDIA_SRTP_MANDATORY}


class _Account(pj.Account):
    """A pjsua2 account whose calls and registration events go to the server. Two exist: the agent's, and
    the refuser, which takes the INVITEs that will be refused (403, 503). The refuser's calls use pjsua's
    loop media transport, which opens no socket: a flood of refused INVITEs allocates no RTP port and no
    ioqueue slot (pjsua otherwise opens both sockets of a call's media before the application sees the
    INVITE, and their ioqueue slots come back only after a delay, so a flood used to exhaust them and
    abort the process)."""

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
        self._pepper: bytes | None = None
        if config.max_calls > MAX_ANSWERED_CALLS:
            log.warning("max_calls %d is above what pjsua2 allows in one process; answering at most %d at once",
                        config.max_calls, MAX_ANSWERED_CALLS)
            config = dataclasses.replace(config, max_calls=MAX_ANSWERED_CALLS)
        self.config = config
        self.endpoint = SipEndpoint(config, self._started, self._stopping, self._poll, self._release,
                                    self._select_account)
        self.allow_list = AllowList(config.allow)
        self._next_rtp_check = 0.0
        self._account: _Account | None = None
        self._refuser: _Account | None = None
        self._calls: dict[int, SipCall] = {}
        """Answered calls still up (written on the SIP thread; other threads only count them)."""
        self.ports = MediaPorts()
        self._held: list[SipCall] = []
        """Every pjsua2 call object from its INVITE until the SIP thread drops it (SIP thread only). The last
        reference to a pjsua2 object must die on the SIP thread while the library is alive: destroyed on
        another thread, or after libDestroy, it aborts the process in pjsua_call_set_user_data."""
        self._lock = threading.Lock()
        self._runners_done = threading.Condition(self._lock)
        self._runners = 0
        self._accepting = True
        self.calls_answered = 0
        self.calls_rejected = 0
        self.calls_forbidden = 0
        self.registered = False
        self.stuck_calls = 0
        self.headroom = Headroom(self.config.admit_budget_ms, self.config.admit_max_cpu)
        self.observers: list[Any] = []
        """Told of each call: call_started(session, remote_uri), call_closed(session, out_dir)."""

    # ---- control, from any thread --------------------------------------------------------------------

    def start(self) -> None:
        self.config.out_dir.mkdir(parents=True, exist_ok=True)
        self.endpoint.start()

    def stop(self, grace_s: float = 0.0, hurry: threading.Event | None = None) -> None:
        """Refuse new calls (503); let live calls end by themselves for up to grace_s (or until `hurry`
        is set), then hang up the rest (outcome agent-hangup, reason shutdown), let their sessions close,
        and stop pjsua2. Called from the main thread, which never touches a pjsua2 object."""
        self._accepting = False
        deadline = time.monotonic() + grace_s
        if grace_s > 0 and self.live_count():
            log.info("shutting down: %d call(s) may go on for up to %.0f s", self.live_count(), grace_s)
        while self.live_count() and time.monotonic() < deadline and not (hurry is not None and hurry.is_set()):
            time.sleep(0.1)
        self.endpoint.post(self._stopping)
        deadline = time.monotonic() + SHUTDOWN_WAIT_S
        with self._runners_done:
            while self._runners and (left := deadline - time.monotonic()) > 0:
                self._runners_done.wait(left)
        self.endpoint.stop(RELEASE_WAIT_S + 5.0)

    def live_count(self) -> int:
        """Answered calls that are still up (any thread)."""
        with self._lock:
            return len(self._calls)

    def live_calls(self) -> list[SipCall]:
        """The live call objects: SIP thread only (see _held)."""
        with self._lock:
            return list(self._calls.values())

    def start_runner(self, call: SipCall) -> CallRunner:
        """The call is confirmed and has audio: its session starts (SIP thread)."""
        assert call.port is not None
        runner = CallRunner(call, call.port, self.services, self.config.out_dir)
        with self._lock:
            self._runners += 1
        runner.start()
        return runner

    def caller_tag(self, number: str) -> str:
        """The caller as a keyed hash (the store's key), never in plain text."""
        if self._pepper is None:
            self._pepper = derive_pepper(StoreConfig.from_env().key())
        return caller_tag(number, self._pepper)

    def runner_finished(self) -> None:
        with self._runners_done:
            self._runners -= 1
            self._runners_done.notify_all()

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
        cfg.mediaConfig.transportConfig.port = self.config.rtp_port
        cfg.mediaConfig.transportConfig.portRange = self.config.rtp_port_range
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
        refuse = pj.AccountConfig()
        refuse.idUri = f"sip:refuse@{self.config.bind}:{self.config.port}"
        refuse.mediaConfig.useLoopMedTp = True
        refuse.mediaConfig.transportConfig.boundAddress = self.config.bind
        refuser = _Account(self)
        refuser.create(refuse, False)
        self._refuser = refuser

    def _select_account(self, prm: pj.OnSelectAccountParam) -> None:
        """Before pjsua allocates media for a new INVITE: one that will be refused goes to the refuser."""
        if self._refuser is None or not prm.rdata.info.startswith("Request msg INVITE/"):
            return
        if self._refusal(peer_text(str(prm.rdata.srcAddress))) is not None:
            prm.accountIndex = self._refuser.getId()

    def _refusal(self, source: str) -> tuple[int, str, str] | None:
        """(status, why, kind) for an INVITE from `source` that must be refused now, or None to answer it.
        `kind` goes out in the REFUSED_HEADER of a 503: "stopping", "full" (this worker's slots; another
        worker may answer) or "headroom" (the machine is too busy: the front does not try another worker)."""
        if not self.allow_list.allows(source):
            return SIP_FORBIDDEN, f"source {source_ip(source)} is not in the allow-list", "forbidden"
        if not self._accepting:
            return SIP_SERVICE_UNAVAILABLE, "shutting down", "stopping"
        if self.live_count() >= self.config.max_calls:
            return SIP_SERVICE_UNAVAILABLE, "call limit reached", "full"
        why = self.headroom.refusal(self.live_count())
        if why is not None:
            return SIP_SERVICE_UNAVAILABLE, why, "headroom"
        return None

    def _machine_refusal(self, call: SipCall) -> str | None:
        """With a shared inference service and admission by headroom: the machine's answer for this call
        (ivr.infer.admission: every worker's calls and replies), None to answer it. Admitted, the call holds
        its place there until it ends (call_disconnected)."""
        client = self.services.inference
        if client is None or not self.headroom.enabled:
            return None
        key = f"{os.getpid()}-{call.id}"
        why = client.admit(key, self.headroom.budget_ms)
        if why is None:
            call.admission_key = key
        return why

    def reply_heard(self, latency_ms: float) -> None:
        """A reply's voice-to-voice latency: for this worker's headroom and, with a shared inference service,
        for the machine's."""
        self.headroom.reply(latency_ms)
        if self.services.inference is not None:
            self.services.inference.tell("reply", float(latency_ms))

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
        """Hang up every call; each one's outcome is agent-hangup (shutdown), not the caller's hangup."""
        for call in self.live_calls():
            call.ended_by_server = call.ended_by_server or "shutdown"
        self._hang_up_all()

    def _release(self) -> None:
        """Last thing before pjsua2 is destroyed, on the SIP thread: wait (bounded) for the sessions to
        close, then drop every pjsua2 object while the library is alive."""
        deadline = time.monotonic() + RELEASE_WAIT_S
        while time.monotonic() < deadline and any(c.runner is not None and c.runner.is_alive() for c in self._held):
            self.endpoint.handle_events()
        for call in self._held:
            if call.runner is not None and call.runner.is_alive():
                log.error("call %s: its session did not close in time", call.id)
                self.stuck_calls += 1
            self._release_call(call, force=True)
        with self._lock:
            self._calls.clear()
        self._held = []
        if self.endpoint.ep is not None:
            try:  # the media clock stops first: no port can be called while it is destroyed
                self.endpoint.ep.audDevManager().setNoDev()
            except Exception:
                log.exception("stopping the media clock failed")
        self.ports.clear()
        gc.collect()

    def incoming(self, account: pj.Account, prm: pj.OnIncomingCallParam) -> None:
        """Decides on a new INVITE (usually decided already by _select_account: a refusal then arrives on
        the refuser's account). A refusal is never sent from inside this callback: pjsua2's wrapper frees
        the INVITE's cloned rdata after the callback returns, and a final response sent here ends the call
        at once and frees it first (the 'rdata' assertion that aborted the process). So the refusal is
        posted, and the SIP thread sends it right after the callback. If deciding fails, the caller gets
        500 rather than a call left ringing in a slot."""
        call = SipCall(account, prm.callId, self)
        self._held.append(call)
        try:
            self._decide(call, prm)
        except Exception:
            log.exception("call %s: handling the INVITE failed; refusing it", call.id)
            self._refuse(call, SIP_SERVER_ERROR)

    def _decide(self, call: SipCall, prm: pj.OnIncomingCallParam) -> None:
        info = call.getInfo()
        call.sip_call_id = peer_text(info.callIdString)
        call.caller = self.caller_tag(peer_text(info.remoteUri))
        source = peer_text(str(prm.rdata.srcAddress))
        call.source_ip = source_ip(source)
        refusal = self._refusal(source)
        if refusal is None and (machine_why := self._machine_refusal(call)) is not None:
            refusal = SIP_SERVICE_UNAVAILABLE, machine_why, "headroom"
        if refusal is not None:
            status, why, kind = refusal
            if status == SIP_FORBIDDEN:
                self.calls_forbidden += 1
                log.warning("call %s refused: %s", call.id, why)
                self._refuse(call, status)
            else:
                self.calls_rejected += 1
                log.warning("call %s from %s refused: %s", call.id, call.caller, why)
                self._refuse(call, status, {"Retry-After": str(self.config.retry_after_s), REFUSED_HEADER: kind})
            return
        with self._lock:
            self._calls[prm.callId] = call
        self.calls_answered += 1
        metrics.call_answered()
        log.info("call %s from %s: answering", call.id, call.caller)
        call.answered_at = time.monotonic()
        ringing = pj.CallOpParam()
        ringing.statusCode = SIP_RINGING
        call.answer(ringing)
        ok = pj.CallOpParam()
        ok.statusCode = SIP_OK
        call.answer(ok)

    def _refuse(self, call: SipCall, status: int, headers: dict[str, str] | None = None) -> None:
        """Sends the refusal as soon as that is safe: within this poll when pjsua is still creating the
        call's media (the INVITE had an offer: pjsua then queues the answer until its own processing of the
        INVITE is done, so no slot is held for a later poll and a flood does not fill the slots), else on
        the SIP thread right after the callback."""
        metrics.calls_refused(status)

        def send() -> None:
            if call.disconnected:
                return
            op = pj.CallOpParam()
            op.statusCode = status
            _add_headers(op, headers or {})
            try:
                call.answer(op)
            except Exception:
                log.exception("call %s: refusing failed", call.id)
        call.pending_answer = send
        self.endpoint.post(call.send_pending_answer)

    def call_disconnected(self, call: SipCall) -> None:
        """The call is over on the SIP side (SIP thread); its objects are dropped by _purge once its
        session has closed, never inside their own callback."""
        with self._lock:
            for key, live in list(self._calls.items()):
                if live is call:
                    del self._calls[key]
        if call.admission_key and self.services.inference is not None:
            self.services.inference.tell("release", call.admission_key)
            call.admission_key = ""

    def _poll(self) -> None:
        self._purge()
        self._drop_unconfirmed()
        self._lock_media()
        if self.config.rtp_timeout_s > 0 and time.monotonic() >= self._next_rtp_check:
            self._next_rtp_check = time.monotonic() + RTP_CHECK_EVERY_S
            self._watch_rtp()

    def _lock_media(self) -> None:
        """Every poll, for calls whose media is not locked yet: lock it as soon as the caller's RTP flows."""
        for call in self.live_calls():
            if call.media_lock.locked or call.audio_index < 0:
                continue
            try:
                if call.lock_media():
                    log.info("call %s: media locked to the caller (others' RTP and RTCP are dropped)", call.id)
            except Exception:
                log.exception("call %s: locking the media failed", call.id)

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

    def _drop_unconfirmed(self) -> None:
        """A last line against calls that hold a slot without ever being answered, refused or ended
        (pjsip itself gives up on answered calls that are never ACKed: transaction_timeout_s)."""
        now = time.monotonic()
        for call in self._held:
            if call.confirmed or call.disconnected or call.dropped or call.answered_at is not None:
                continue
            if now - call.created_at >= 2 * self.config.transaction_timeout_s:
                log.warning("call %s: neither answered nor ended %.0f s after its INVITE; hanging up", call.id,
                            now - call.created_at)
                call.dropped = True
                self._bye(call)

    def _purge(self) -> None:
        """Drop ended calls once their runner thread is gone, here on the SIP thread, so pjsua2 objects
        (the call and its human leg) are destroyed on a pjsip-registered thread; their media ports go
        back to the pool (telephony.sip.media.MediaPorts)."""
        keep = [call for call in self._held if not self._release_call(call)]
        if len(keep) != len(self._held):
            self._held = keep

    def _release_call(self, call: SipCall, force: bool = False) -> bool:
        """Clears an ended call's references (True), or leaves a call still in use alone (False)."""
        runner = call.runner
        busy = (not call.disconnected or (runner is not None and runner.is_alive())
                or (call.human is not None and not call.human.ended.is_set()))
        if busy and not force:
            return False
        call.runner = None  # the runner thread has ended: the call <-> runner cycle is broken here
        self.ports.release(call.port)
        call.port = None
        call.audio = None
        if call.human is not None:
            self.ports.release(call.human.port)
            call.human.port = None
            call.human.audio = None
            call.human = None
        return True

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
