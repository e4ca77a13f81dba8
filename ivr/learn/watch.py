"""A running agent picks up the intent model an admin accepts, without a restart and without dropping calls.

`NluWatcher` reads the models directory's `current` pointer (ivr.learn.versions) every `poll_s` seconds on a
thread of its own. When it names another version, the watcher loads that version's NLU there (the sentence
encoder is shared by the process, so only the small intent model and the FAQ index are loaded), then swaps
`services.nlu` under a lock. A call keeps the NLU it started with (`CallSession` takes `services.nlu` once),
so calls in progress finish on their model and new calls get the new one. A version that does not load is
logged once and the model in use stays.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from ivr.learn.versions import SHIPPED, ModelVersions, default_models_dir

log = logging.getLogger(__name__)

POLL_S = 2.0


class NluWatcher:
    def __init__(self, services: Any, versions: ModelVersions, poll_s: float = POLL_S,
                 faq: Path | None = None) -> None:
        self.services = services
        """Anything with an `nlu` attribute (ivr.call.services.Services)."""
        self.versions = versions
        self.poll_s = poll_s
        self.faq = faq
        self.loaded: str | None = None
        """The version `services.nlu` holds (None: what the services were loaded with)."""
        self.load_s = 0.0
        self._failed: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> bool:
        """Load and swap in the version `current` names, if it is not the one in use; True when swapped."""
        from ivr.learn.retrain import load_nlu

        name = self.versions.current_name()
        if name == SHIPPED and self.loaded is None:  # the services were loaded with the shipped model
            self.loaded = SHIPPED
        if name == self.loaded or name == self._failed:
            return False
        started = time.perf_counter()
        try:
            nlu = load_nlu(self.versions.get(name), self.faq)
            nlu.understand("hello")  # warm up before a caller's turn
        except Exception as exc:  # noqa: BLE001 - a broken version must not stop the calls
            log.warning("intent model version %s does not load (%s): the model in use stays", name, exc)
            self._failed = name
            return False
        with self._lock:
            self.services.nlu = nlu
            self.loaded, self._failed = name, None
            self.load_s = time.perf_counter() - started
        log.info("intent model version %s in use for new calls (loaded in %.1f s)", name, self.load_s)
        return True

    def start(self) -> NluWatcher:
        """Swap in the accepted version now (before the first call), then keep watching on a thread."""
        self.check()
        self._thread = threading.Thread(target=self._run, name="nlu-watcher", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.check()
            except Exception as exc:  # noqa: BLE001 - an unreadable directory now and then is not fatal
                log.warning("watching %s: %s", self.versions.root, exc)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def watch_models(services: Any, models_dir: str | Path | None = None) -> NluWatcher:
    """`ivr serve`: the accepted intent model version of `models_dir` (default: ivr.learn.versions.
    default_models_dir) in `services` now, and every version accepted later for the calls after it."""
    return NluWatcher(services, ModelVersions(default_models_dir(models_dir))).start()
