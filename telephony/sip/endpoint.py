"""The pjsua2 library on its own thread: start-up, transports, codecs, and a queue of work for it.

pjsua2 runs with no worker threads of its own (uaConfig.threadCnt = 0): one Python thread creates the
library, polls it (libHandleEvents) and destroys it, so every SIP callback runs on that thread. Other
threads never call pjsua2; they `post()` a function that the SIP thread runs between polls. The media
clock (the null sound device's thread) is pjmedia's own and only touches media ports.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pjsua2 as pj

from telephony.errors import TelephonyError
from telephony.queues import drain
from telephony.sip.config import SipConfig
from telephony.sip.timers import set_transaction_timeout

log = logging.getLogger(__name__)

POLL_MS = 10
PJSUA_MAX_CALLS = 4
"""pjsua's compile-time limit on call slots (PJSUA_MAX_CALLS): 4 in the pjsua2-python 2.15.1 wheels
(measured: a 5th INVITE gets pjsua's own 486). Every answered call, every 503 and every human leg of a
bridged transfer takes a slot, so one process answers at most PJSUA_MAX_CALLS - 1 calls at once."""
MAX_ANSWERED_CALLS = PJSUA_MAX_CALLS - 1
"""Calls one process can answer while keeping a slot to refuse the next one with 503."""
CODEC_PRIORITY = {"PCMU/8000/1": 255, "PCMA/8000/1": 254, "G722/16000/1": 253, "telephone-event": 0}
"""Codecs offered and accepted, best first; every other codec is disabled (priority 0)."""


class _Endpoint(pj.Endpoint):
    """pjsua2's endpoint with the one hook that runs before pjsua allocates anything for an INVITE."""

    def __init__(self, on_select: Callable[[pj.OnSelectAccountParam], None] | None) -> None:
        super().__init__()
        self._on_select = on_select

    def onSelectAccount(self, prm: pj.OnSelectAccountParam) -> None:  # noqa: N802 (pjsua2 name)
        if self._on_select is None:
            return
        try:
            self._on_select(prm)
        except Exception:
            log.exception("SIP thread: account selection failed")


class SipEndpoint:
    """Starts pjsua2 on a dedicated thread and runs posted work there."""

    def __init__(self, config: SipConfig, on_started: Callable[[pj.Endpoint], None],
                 on_stopping: Callable[[], None], on_poll: Callable[[], None] | None = None,
                 on_release: Callable[[], None] | None = None,
                 on_select: Callable[[pj.OnSelectAccountParam], None] | None = None) -> None:
        self.config = config
        self._on_started = on_started
        self._on_stopping = on_stopping
        self._on_poll = on_poll
        self._on_release = on_release
        """Called on the SIP thread just before libDestroy: every pjsua2 object must be gone by then."""
        self._on_select = on_select
        """Called for each out-of-dialog request before pjsua handles it (pjsua2's onSelectAccount): the
        place to route an INVITE that will be refused to an account that allocates no media."""
        self._work: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sip", daemon=True)
        self.ep: pj.Endpoint | None = None
        self.last_poll = time.monotonic()
        """When the SIP thread last polled pjsua2 (time.monotonic()): its heartbeat, for watchdogs."""

    def start(self, timeout_s: float = 10.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise RuntimeError("the SIP endpoint did not start in time")
        if self._error is not None:
            raise self._error

    def post(self, fn: Callable[[], None]) -> None:
        """Run fn on the SIP thread (the only thread that calls pjsua2)."""
        self._work.put(fn)

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    # ---- the SIP thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            ep = self._create()
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
            return
        self.ep = ep
        try:
            self._on_started(ep)
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            ep.libDestroy()
            return
        self._ready.set()
        while not self._stop.is_set():
            self.last_poll = time.monotonic()
            self.handle_events()
        try:
            self._on_stopping()
            for _ in range(50):  # let BYEs and their answers go out
                self.handle_events()
            if self._on_release is not None:
                self._on_release()
        finally:
            ep.libDestroy()
            self.ep = None

    def handle_events(self) -> None:
        """One poll of pjsua2, then the posted work and the owner's poll hook; SIP thread only."""
        assert self.ep is not None
        self.ep.libHandleEvents(POLL_MS)
        self._run_posted()
        if self._on_poll is not None:
            self._on_poll()

    def _run_posted(self) -> None:
        for fn in drain(self._work):
            try:
                fn()
            except Exception:
                log.exception("SIP thread: posted work failed")

    def _create(self) -> pj.Endpoint:
        cfg = self.config
        ep = _Endpoint(self._on_select)
        with _stdout_silenced(cfg.pjsip_log_level < 4):  # pjlib's start-up banner, printed at level 5
            ep.libCreate()
        ep_cfg = pj.EpConfig()
        ep_cfg.uaConfig.threadCnt = 0
        ep_cfg.uaConfig.mainThreadOnly = False
        # all of them: room to answer 503 above the limit, and for the human legs of bridged transfers
        ep_cfg.uaConfig.maxCalls = PJSUA_MAX_CALLS
        ep_cfg.uaConfig.userAgent = cfg.user_agent
        ep_cfg.logConfig.level = cfg.pjsip_log_level
        ep_cfg.logConfig.consoleLevel = cfg.pjsip_log_level
        med = ep_cfg.medConfig
        med.clockRate = 8000
        med.sndClockRate = 8000
        med.audioFramePtime = 20
        med.ptime = 20
        med.noVad = True  # keep sending RTP through the agent's silences
        med.ecTailLen = 0
        med.threadCnt = 1
        ep.libInit(ep_cfg)
        set_transaction_timeout(round(cfg.transaction_timeout_s * 1000))
        tp = pj.TransportConfig()
        tp.boundAddress = cfg.bind
        tp.port = cfg.port
        ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tp)
        ep.transportCreate(pj.PJSIP_TRANSPORT_TCP, tp)
        transports = "UDP, TCP"
        if cfg.tls_cert:
            try:
                self._create_tls(ep)
            except BaseException:
                ep.libDestroy()
                raise
            transports += f"; TLS on {cfg.tls_port}"
        ep.libStart()
        ep.audDevManager().setNullDev()
        for codec in ep.codecEnum2():
            ep.codecSetPriority(codec.codecId, CODEC_PRIORITY.get(codec.codecId, 0))
        log.info("SIP listening on %s:%d (%s)", cfg.bind, cfg.port, transports)
        return ep

    def _create_tls(self, ep: pj.Endpoint) -> None:
        """A SIP TLS transport on tls_port with the configured certificate (the 2.15.1 wheels have TLS)."""
        cfg = self.config
        for what, path in (("certificate", cfg.tls_cert), ("private key", cfg.tls_key)):
            try:
                with open(path, "rb"):
                    pass
            except OSError as exc:
                raise TelephonyError(f"TLS {what} {path}: {exc.strerror}") from None
        tls = pj.TransportConfig()
        tls.boundAddress = cfg.bind
        tls.port = cfg.tls_port
        tls.tlsConfig.certFile = cfg.tls_cert
        tls.tlsConfig.privKeyFile = cfg.tls_key
        try:
            ep.transportCreate(pj.PJSIP_TRANSPORT_TLS, tls)
        except pj.Error as exc:
            raise TelephonyError(f"SIP TLS transport on {cfg.bind}:{cfg.tls_port} failed: {exc.reason} "
                           "(is TLS compiled into this pjsua2, and are the certificate and key PEM files "
                           "that match?)") from None


@contextlib.contextmanager
def _stdout_silenced(silence: bool) -> Iterator[None]:
    """Points file descriptor 1 at /dev/null meanwhile (what C code prints there), when `silence`."""
    if not silence:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
