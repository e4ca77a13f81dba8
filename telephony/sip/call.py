"""One SIP call: pjsua2 callbacks (SIP thread) and the runner thread that drives its CallSession.

The runner is paced by the media clock: it blocks on the media port for the caller's next 20 ms
frame, ticks the session with it, and queues the agent's frame for the port's next request.
A tick never waits on a model, so the runner keeps up; the port's outbound deque absorbs jitter.

When the session ends with a transfer, the runner carries it out (see `_transfer`): REFER first; if
the caller's side refuses it or the human does not answer, a second call to the human (`HumanCall`)
bridged to the caller's audio, recorded on the agent's channel; if that fails too, the caller hears
that an agent will call back. The session keeps recording throughout.
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
from telephony.sip.media import FRAME_BYTES, LINE_RATE_HZ, CallMediaPort
from telephony.sip.security import peer_text
from telephony.sip.strict import MediaLock, caller_media, host_port
from telephony.sip.transfer import TransferContext, context_from_session, post_webhook

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 0.1
"""With no frame from the media clock for this long, the session ticks on silence anyway."""
DRAIN_TIMEOUT_S = 2.0
"""After the session ends, how long its last words may take to leave before the hangup."""
TAIL_S = 0.3
"""Silence after the last agent frame, so the caller's jitter buffer plays it out before BYE."""
DTMF_METHODS = {0: "rfc4733", 1: "sip-info", 2: "inband"}
ANNOUNCE_LIMIT_S = 30.0
"""Longest wait for an announcement (the callback offer) to be spoken before the hangup."""


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
        self.audio: pj.AudioMedia | None = None
        self.human: HumanCall | None = None
        self.transfer_done = threading.Event()
        self.transfer_status = 0
        self.last_rx_packets = -1
        self.last_rtp_at = time.monotonic()
        self.created_at = time.monotonic()
        self.answered_at: float | None = None
        """When the 200 went out (SIP thread); None before."""
        self.dropped = False
        """Hung up by the server for never being confirmed."""
        self.confirmed = False
        """The caller's ACK came: only then does the session start (a spoofed INVITE costs no model work)."""
        self.source_ip = ""
        """Where the INVITE came from: a media source the signalling vouches for."""
        self.media_lock = MediaLock()
        self.audio_index = -1
        self.pending_answer: Callable[[], None] | None = None
        """A refusal waiting for the first safe moment to be sent (see SipServer._refuse)."""
        self.ended_by_server = ""
        """Why the agent's side ended the call ('' while the caller may still be the one to hang up)."""

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
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED and not self.confirmed:
            self.confirmed = True
            self._start_runner()
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.disconnected = True
            if self.runner is not None:
                self.runner.remote_hung_up()
            self.server.call_disconnected(self)

    def send_pending_answer(self) -> None:
        answer, self.pending_answer = self.pending_answer, None
        if answer is not None:
            answer()

    def onCreateMediaTransport(self, prm: pj.OnCreateMediaTransportParam) -> None:  # noqa: N802
        """pjsua creates an offered INVITE's media after telling us of the call and before its first
        answer: an answer given now is queued by pjsua and sent once the INVITE is processed."""
        self._guard("media transport", self.send_pending_answer)

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:  # noqa: N802
        self._guard("media state", self._on_media)

    def _on_media(self) -> None:
        info = self.getInfo()
        for index, media in enumerate(info.media):
            if media.type != pj.PJMEDIA_TYPE_AUDIO or media.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            audio = self.getAudioMedia(index)
            self.audio = audio
            self.audio_index = index
            self.media_lock.unlock()  # a (re-)negotiated stream: learn the caller's source again
            if self.port is None:
                self.port = self.server.ports.acquire()
            audio.startTransmit(self.port)
            if self.human is None or not self.human.bridged:
                self.port.startTransmit(audio)
            else:  # a re-INVITE during a bridged transfer: keep the human connected
                self.human.bridge(self)
            self._start_runner()
            return

    def _start_runner(self) -> None:
        """The session starts once the call is both confirmed (ACK) and has active audio."""
        if self.runner is None and self.confirmed and self.port is not None and not self.disconnected:
            self.runner = CallRunner(self, self.port, self.server.services, self.server.config.out_dir)
            self.server.runner_started()
            self.runner.start()

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:  # noqa: N802 (RFC 4733 and SIP INFO)
        def deliver() -> None:
            if self.runner is not None:
                self.runner.key(str(prm.digit), DTMF_METHODS.get(int(prm.method), str(prm.method)))
        self._guard("DTMF", deliver)

    def onCallTransferStatus(self, prm: pj.OnCallTransferStatusParam) -> None:  # noqa: N802
        def status() -> None:
            code, final = int(prm.statusCode), bool(prm.finalNotify)
            log.info("call %s: transfer status %d (final=%s)", self.id, code, final)
            # REFER refused (its final response >= 300), or the transfer's outcome in a NOTIFY sipfrag
            if code >= 300 or code == 200 or (final and code >= 200) or (final and code < 200):
                self.transfer_status = code
                prm.cont = False
                self.transfer_done.set()
        self._guard("transfer status", status)

    def lock_media(self) -> bool:
        """Locks the call's RTP and RTCP to the caller once its RTP flows from a trusted address (SIP thread)."""
        if self.media_lock.locked or self.audio_index < 0 or not self.confirmed or self.disconnected:
            return False
        transport = self.getMedTransportInfo(self.audio_index)
        stream = self.getStreamInfo(self.audio_index)
        peers = caller_media(transport.srcRtpName, transport.srcRtcpName, stream.remoteRtpAddress,
                             stream.remoteRtcpAddress, self.source_ip)
        local = host_port(transport.localRtpName)
        if peers is None or local is None:
            return False
        return self.media_lock.lock(local, *peers)

    def rx_state(self) -> tuple[int, bool]:
        """(RTP packets received so far, on hold by the remote side); SIP thread only."""
        info = self.getInfo()
        for index, media in enumerate(info.media):
            if media.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            if media.status == pj.PJSUA_CALL_MEDIA_REMOTE_HOLD:
                return self.last_rx_packets, True
            if media.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                return self.last_rx_packets, True
            return int(self.getStreamStat(index).rtcp.rxStat.pkt), False
        return self.last_rx_packets, True


class HumanCall(pj.Call):
    """The agent's own call to a human, for a bridged transfer. SIP thread only, except the flags."""

    def __init__(self, account: pj.Account, caller: SipCall) -> None:
        super().__init__(account)
        self.caller = caller
        self.port: CallMediaPort | None = None
        self.audio: pj.AudioMedia | None = None
        self.bridged = False
        self.connected = threading.Event()
        self.ended = threading.Event()
        self.status_code = 0

    def onCallState(self, prm: pj.OnCallStateParam) -> None:  # noqa: N802
        try:
            info = self.getInfo()
            self.status_code = int(info.lastStatusCode)
            log.info("call %s: human leg %s (%d)", self.caller.id, info.stateText, info.lastStatusCode)
            if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                self.ended.set()
        except Exception:
            log.exception("call %s: human leg state failed", self.caller.id)

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:  # noqa: N802
        try:
            info = self.getInfo()
            for index, media in enumerate(info.media):
                if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                    self.audio = self.getAudioMedia(index)
                    if self.port is None:
                        self.port = self.caller.server.ports.acquire()
                    self.audio.startTransmit(self.port)
                    self.bridge(self.caller)
                    self.connected.set()
                    return
        except Exception:
            log.exception("call %s: human leg media failed", self.caller.id)

    def bridge(self, caller: SipCall) -> None:
        """Caller and human hear each other; the agent's own port stops talking to the caller."""
        if self.audio is None or caller.audio is None:
            return
        if caller.port is not None and not self.bridged:
            caller.port.stopTransmit(caller.audio)
        caller.audio.startTransmit(self.audio)
        self.audio.startTransmit(caller.audio)
        self.bridged = True

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
        self._hung_up = threading.Event()
        self._rtp_timed_out = threading.Event()
        self.result = ""
        self.transfer: dict[str, Any] = {}
        self._keys: deque[tuple[str, str]] = deque()
        self.started_at = time.time()
        self.finished = threading.Event()

    def remote_hung_up(self) -> None:
        self._hung_up.set()

    def rtp_timed_out(self) -> None:
        """From the SIP thread: no RTP from the caller for too long; the call ends (BYE)."""
        self._rtp_timed_out.set()

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
                    if self.call.ended_by_server:
                        session.line_closed("agent-hangup", self.call.ended_by_server)
                    else:
                        session.caller_hung_up()
                    break
                if self._rtp_timed_out.is_set():
                    session.log.emit("rtp_timeout", after_s=self.call.server.config.rtp_timeout_s)
                    self.result = "rtp-timeout"
                    session.line_closed("rtp-timeout", "no RTP from the caller")
                    self.call.server.hang_up(self.call)
                    break
                _, pcm = self.port.read(READ_TIMEOUT_S)
                self._take_keys()
                frame = Frame(pcm, LINE_RATE_HZ, self.clock.now_ms()) if pcm is not None else None
                self.port.write(session.tick(frame).pcm)
            if not self._hung_up.is_set() and not self.result:
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
                session.close()
            finally:
                self._write_metadata()
                for observer in self.observers:
                    try:
                        observer.call_closed(self.session, self.out_dir)
                    except Exception:
                        log.exception("call %s: observer failed", self.call.id)
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
            session.log.emit("transfer_failed", step="route", target=session.transfer_target)
            return self._offer_callback(context, uri, "no transfer target configured")
        post_webhook(cfg.webhook_url, context.webhook_payload("transfer", uri), cfg.webhook_timeout_s)
        # 1. blind transfer: the caller's phone calls the human
        session.log.emit("transfer_refer", uri=uri)
        server.refer(call, uri, context)
        self._keep_line(lambda: call.transfer_done.is_set(), cfg.refer_timeout_s)
        if self._hung_up.is_set():  # the caller's phone left us for the human
            self.transfer["method"] = "refer"
            return "transferred"
        if 200 <= call.transfer_status < 300:
            session.log.emit("transfer_done", method="refer", status=call.transfer_status)
            self.transfer["method"] = "refer"
            server.hang_up(call)
            return "transferred"
        session.log.emit("transfer_refer_failed", status=call.transfer_status or "timeout")
        # 2. bridged transfer: the agent calls the human and joins the audio
        session.log.emit("transfer_bridge", uri=uri)
        server.dial_human(call, uri, context)
        self._keep_line(lambda: call.human is not None and (call.human.connected.is_set()
                                                             or call.human.ended.is_set()),
                        cfg.bridge_timeout_s)
        human = call.human
        if human is not None and human.connected.is_set() and not human.ended.is_set() \
                and not self._hung_up.is_set():
            session.log.emit("transfer_done", method="bridge")
            self.transfer["method"] = "bridge"
            self._bridge(human)
            server.hang_up(call)
            return "transferred"
        server.hang_up_human(call)
        if self._hung_up.is_set():
            return "caller-hangup"
        status = human.status_code if human is not None else 0
        session.log.emit("transfer_failed", step="bridge", status=status or "timeout")
        return self._offer_callback(context, uri, f"bridged call failed ({status or 'no answer'})")

    def _offer_callback(self, context: TransferContext, uri: str, why: str) -> str:
        cfg = self.call.server.config
        log.warning("call %s: transfer failed (%s); offering a callback", self.call.id, why)
        post_webhook(cfg.webhook_url, context.webhook_payload("callback_requested", uri, error=why),
                     cfg.webhook_timeout_s)
        self.transfer["method"] = "callback"
        self.session.announce(cfg.callback_prompt)
        self._keep_line(lambda: not self.session.playing, ANNOUNCE_LIMIT_S)
        if not self._hung_up.is_set():
            self._drain()
            self.call.server.hang_up(self.call)
        return "callback"

    def _keep_line(self, done: Callable[[], bool], timeout_s: float) -> None:
        """Tick the (ended) session, so the recording goes on and announcements play, until done()."""
        deadline = time.monotonic() + timeout_s
        while not done() and not self._hung_up.is_set() and time.monotonic() < deadline:
            _, pcm = self.port.read(READ_TIMEOUT_S)
            frame = Frame(pcm, LINE_RATE_HZ, self.clock.now_ms()) if pcm is not None else None
            self.port.write(self.session.tick(frame).pcm)

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
        self.session.log.emit("bridge_ended", by="caller" if self._hung_up.is_set() else "human")

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
                "voice_to_voice_ms": [e["latency_ms"] for e in session.log.of_type("reply_started")]}
        try:
            (self.out_dir / "sip.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        except OSError as exc:
            log.error("call %s: cannot write metadata: %s", self.call.id, exc)
