"""The console's web calls: the agent's models, loaded once per process, and the calls now up.

The models load on the first web call (or at start, `preload`), in a worker thread; a model that is missing
is an AgentError whose one line the page shows, and the next call tries again. Each call answers the page's
offer on the console's event loop (aiortc lives there) and then runs on its own thread (`WebCallRunner`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
from collections.abc import Callable
from typing import Any

from ivr.call.services import Services
from ivr.errors import IvrError
from ivr.webcall.runner import WebCallRunner, WebCallSettings
from models.errors import AgentError

log = logging.getLogger(__name__)

CLOSE_WAIT_S = 5.0
"""On shutdown, how long live web calls get to close their sessions."""


class WebCallsBusy(IvrError):
    """As many web calls are up as the settings allow."""


def default_loader() -> Services:
    from ivr.config import AgentConfig

    return Services.load(AgentConfig(), presynthesize=True)


class WebCalls:
    def __init__(self, settings: WebCallSettings | None = None,
                 load_services: Callable[[], Services] = default_loader, observers: list[Any] | None = None) -> None:
        """observers: told of each call like `ivr serve`'s (e.g. ivr.store.hook.SipStoreObserver(source="web"))."""
        self.settings = settings or WebCallSettings()
        self._load = load_services
        self.observers = list(observers or [])
        self._services: Services | None = None
        self._load_lock = threading.Lock()
        self._lock = threading.Lock()
        self._live: dict[str, WebCallRunner] = {}
        self._reserved = 0
        self.last_error = ""

    @property
    def loaded(self) -> bool:
        return self._services is not None

    def services(self) -> Services:
        """The agent's models, loading them the first time (blocking; call it from a worker thread)."""
        with self._load_lock:
            if self._services is None:
                try:
                    self._services = self._load()
                except AgentError as exc:
                    self.last_error = str(exc)
                    raise
                self.last_error = ""
                log.info("web calls: the agent's models are loaded (%.1f s)", self._services.load_s)
            return self._services

    def preload(self) -> threading.Thread:
        """Load the models now, in the background (`ivr console --preload-agent`)."""
        def load() -> None:
            try:
                self.services()
            except AgentError as exc:
                log.error("web calls: the agent cannot start: %s", exc)
        thread = threading.Thread(target=load, name="webcall-preload", daemon=True)
        thread.start()
        return thread

    def live_count(self) -> int:
        return len(self.live())

    def live(self) -> list[WebCallRunner]:
        with self._lock:
            return list(self._live.values())

    async def start(self, sdp: str, kind: str) -> dict[str, str]:
        """Answer a page's offer and start its call: {"call_id", "sdp", "type"}. Raises WebCallsBusy,
        AgentError (a model is missing) or TelephonyError (aiortc missing, an offer that cannot be used)."""
        from telephony.webrtc import require_aiortc

        require_aiortc()
        from telephony.webrtc.peer import WebRtcPeer

        with self._lock:
            if len(self._live) + self._reserved >= self.settings.max_calls:
                raise WebCallsBusy(f"the agent is on {self.settings.max_calls} web call(s) already; try again soon")
            self._reserved += 1
        try:
            services = await asyncio.to_thread(self.services)
            peer = WebRtcPeer(self.settings.webrtc)
            try:
                answer_sdp, answer_type = await peer.answer(sdp, kind)
                call_id = "web-" + secrets.token_hex(6)
                runner = WebCallRunner(call_id, services, peer, self.settings, self.observers, self._finished)
            except BaseException:
                await peer.aclose()
                raise
            with self._lock:
                self._live[call_id] = runner
            runner.start()
        finally:
            with self._lock:
                self._reserved -= 1
        return {"call_id": call_id, "sdp": answer_sdp, "type": answer_type}

    def _finished(self, runner: WebCallRunner) -> None:
        with self._lock:
            self._live.pop(runner.call_id, None)

    async def aclose(self) -> None:
        """Hang up every web call (the console is stopping) and wait a little for their sessions to close
        (off the loop: their connections close on it)."""
        runners = self.live()
        for runner in runners:
            runner.hang_up("console stopping")

        def wait() -> None:
            for runner in runners:
                runner.finished.wait(CLOSE_WAIT_S)
        await asyncio.to_thread(wait)
