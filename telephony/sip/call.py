"""One SIP call on pjsua2: the caller's leg (`SipCall`) and the agent's own leg to a human (`HumanCall`).

Every pjsua2 callback runs on the SIP thread and must never raise. Once the call is confirmed and its
audio is active, the server starts the application's runner (a `CallHandler`), which the call tells of
hangups and keys; the runner itself belongs to the application (`ivr.serve.runner`).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import pjsua2 as pj

from telephony.sip.media import CallMediaPort
from telephony.sip.strict import MediaLock, caller_media, host_port

log = logging.getLogger(__name__)

DTMF_METHODS = {0: "rfc4733", 1: "sip-info", 2: "inband"}
ANNOUNCE_LIMIT_S = 30.0
"""Longest wait for an announcement (the callback offer) to be spoken before the hangup."""


class CallHandler(Protocol):
    """What drives a call once it is answered (the application's runner), told of the line's events."""

    def remote_hung_up(self) -> None: ...

    def rtp_timed_out(self) -> None: ...

    def key(self, digit: str, method: str) -> None: ...

    def is_alive(self) -> bool: ...


class SipCall(pj.Call):
    """pjsua2's call object. Every callback runs on the SIP thread and must never raise."""

    def __init__(self, account: pj.Account, call_id: int, server: Any) -> None:
        super().__init__(account, call_id)
        self.server = server
        self.id = uuid.uuid4().hex[:12]
        self.runner: CallHandler | None = None
        self.port: CallMediaPort | None = None
        self.disconnected = False
        self.sip_call_id = ""
        self.admission_key = ""
        """The call's place in the machine's admission (ivr.infer.admission), while it holds one."""
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
            self.runner = self.server.start_runner(self)

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
