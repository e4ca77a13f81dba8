"""More calls than one pjsua2 process holds: worker `ivr serve` processes behind a Kamailio proxy.

The pjsua2-python wheels have 4 call slots per process (see telephony.sip.endpoint), so one process
answers at most 3 calls. For a higher `--max-calls`, `ivr serve` becomes a supervisor:
  workers   ceil(max_calls / 3) ordinary `ivr serve` processes, each with its share of the limit, on
            bind:port+1+i (SIP) and their own RTP range; each loads the models once. Their allow-list
            is the proxy's own address: callers reach them only through the proxy.
  front     Kamailio (Debian package `kamailio`) on bind:port (UDP and TCP) as a stateful proxy:
            the allow-list (403 for others), OPTIONS answered with 200, each INVITE relayed to a
            worker (dispatcher, round-robin) with failover to the next worker on 486/503/408 (a full
            or dead worker), and 503 with Retry-After when every worker refused or one refused for
            lack of headroom (the machine is busy: ivr.serve.kamailio.REFUSED_HEADER). It record-routes,
            so in-dialog requests (ACK, INFO, BYE, REFER) pass through it; it never touches SDP, so
            RTP flows directly between the caller and the worker (ivr.serve.kamailio).
Self-healing: the supervisor's main loop calls tick() a few times a second. A worker that exits (a crash,
a kill, or a hang caught by its watchdog: each worker pings the supervisor as it would ping systemd) is
restarted on the same port, RTP range and limit after a backoff (1 s, 2 s, 4 s ... 30 s; back to 1 s once
it stayed up a minute); meanwhile the proxy routes new calls to the other workers (the supervisor marks
it inactive over RPC, and the dispatcher's OPTIONS pings keep checking), and their calls go on. Kamailio
is restarted the same way; calls in progress keep their media and their SIP requests reach the new proxy.
SIGTERM: no more restarts; the workers get it (they refuse new calls with 503 and let live calls finish),
and the proxy stops once they have exited; a second signal makes them hang up. Each child dies with the
supervisor (PR_SET_PDEATHSIG). Started as root, Kamailio runs as the `kamailio` user.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import math
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from ivr.errors import IvrError
from ivr.infer import READY_LINE as INFER_READY_LINE
from ivr.serve import MULTIPROC_ENV
from ivr.serve.children import Child, describe_exit
from ivr.serve.kamailio import KamailioRpc, dispatcher_list, kamailio_config, sip_ping
from telephony.sip.config import SipConfig
from telephony.sip.endpoint import MAX_ANSWERED_CALLS, PJSUA_MAX_CALLS

__all__ = ["Supervisor", "kamailio_config", "worker_limits"]

log = logging.getLogger(__name__)

KAMAILIO_USER = "kamailio"
WORKER_START_TIMEOUT_S = 300.0
FRONT_START_TIMEOUT_S = 15.0
WORKER_WATCHDOG_S = 20.0
"""A ready worker that sends no watchdog ping for this long is hung: killed, then restarted."""
FRONT_CHECK_S = 5.0
FRONT_MISSES = 3
"""The proxy must answer an OPTIONS every FRONT_CHECK_S; this many misses in a row: it hangs, killed."""
TICK_S = 0.25
"""How often the serve loop calls Supervisor.tick()."""
RTP_STRIDE = 4 * PJSUA_MAX_CALLS
"""RTP ports per worker: pjsua takes an RTP and an RTCP port per call slot; twice that as a margin."""
DEFAULT_RTP_PORT = 4000
READY_LINE = "listening on sip:"
READY_CHECK_S = 1.0
"""How often the supervisor asks each worker's /readyz."""


def http_ready(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """Whether GET /readyz on host:port answers 200 in time."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/readyz", timeout=timeout_s) as reply:
            return bool(reply.status == 200)
    except (OSError, ValueError):
        return False


def mark_process_dead(pid: int | None) -> None:
    """Drops a dead worker's live gauges (calls active) from the metrics the supervisor adds up."""
    if pid is None or not os.environ.get(MULTIPROC_ENV):
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)


def worker_limits(max_calls: int) -> list[int]:
    """Each worker's share of max_calls (at most MAX_ANSWERED_CALLS each), as even as possible."""
    count = math.ceil(max_calls / MAX_ANSWERED_CALLS)
    return [max_calls // count + (1 if i < max_calls % count else 0) for i in range(count)]


class Supervisor:
    """Workers and the Kamailio front for one `ivr serve --max-calls N` (N > 3)."""

    def __init__(self, config: SipConfig, argv: list[str], http_port: int = 0,
                 inference: list[str] | None = None) -> None:
        self.config = config
        self.argv = argv
        """The supervisor's own command line after the program (global options, `serve`, its options)."""
        self._runtime = Path(tempfile.mkdtemp(prefix="ivr-front-"))
        self.inference: Child | None = None
        """The shared inference service (`ivr infer`) that the workers use, when `inference` gives its
        command line after the program (without --socket)."""
        worker_extra: list[str] = []
        self._infer_dir: Path | None = None
        if inference is not None:
            self._infer_dir = Path(tempfile.mkdtemp(prefix="ivr-infer-"))  # not the proxy's (chowned) folder
            sock = str(self._infer_dir / "infer.sock")
            self.inference = Child("inference", [sys.executable, "-m", "ivr", *inference, "--socket", sock],
                                   ready_line=INFER_READY_LINE)
            worker_extra = ["--inference", sock]
        self.limits = worker_limits(config.max_calls)
        self.ports = [config.port + 1 + i for i in range(len(self.limits))]
        base = config.rtp_port or DEFAULT_RTP_PORT
        self.rtp_ports = [base + i * RTP_STRIDE for i in range(len(self.limits))]
        self.http_ports = [http_port + 1 + i if http_port else 0 for i in range(len(self.limits))]
        """Each worker's /readyz (and /metrics) port; 0: none (the proxy then routes on SIP pings alone)."""
        self.workers = [
            Child(f"worker {i}", [sys.executable, "-m", "ivr", *argv, "--bind", config.bind, "--port", str(port),
                                  "--rtp-port", str(rtp), "--rtp-port-range", str(RTP_STRIDE),
                                  "--max-calls", str(limit), "--worker-of", config.bind,
                                  "--http-port", str(http), "--http-bind", "127.0.0.1", *worker_extra],
                  ready_line=READY_LINE, watchdog_s=WORKER_WATCHDOG_S)
            for i, (limit, port, rtp, http) in enumerate(zip(self.limits, self.ports, self.rtp_ports,
                                                              self.http_ports, strict=True))]
        self.routable = [False] * len(self.workers)
        """Whether the proxy routes calls to each worker: running, and its /readyz says ready."""
        self._readiness_checked = 0.0
        self.front: Child | None = None
        self.stopping = False
        self._front_checked = 0.0
        self._front_misses = 0
        self.rpc = KamailioRpc(self._runtime / "rpc.sock")

    # ---- start --------------------------------------------------------------------------------------

    def start(self) -> None:
        """Starts every worker, waits until each listens, then the proxy; raises IvrError if one fails."""
        kamailio = shutil.which("kamailio") or shutil.which("kamailio", path="/usr/sbin:/sbin")
        if kamailio is None:
            raise IvrError(f"--max-calls {self.config.max_calls} needs Kamailio in front of the workers (more than "
                           f"{MAX_ANSWERED_CALLS} calls per process are not possible): apt-get install kamailio")
        if ipaddress.ip_address(self.config.bind).is_unspecified:
            raise IvrError(f"--max-calls above {MAX_ANSWERED_CALLS} needs a specific --bind address, not "
                           f"{self.config.bind}")
        try:
            if self.inference is not None:
                self.inference.spawn()
                log.info("inference service: pid %d", self.inference.pid)
            for i, worker in enumerate(self.workers):
                worker.spawn()
                log.info("worker %d: pid %d on %s:%d, RTP from %d, %d call(s)", i, worker.pid, self.config.bind,
                         self.ports[i], self.rtp_ports[i], self.limits[i])
            self._wait_workers(time.monotonic() + WORKER_START_TIMEOUT_S)
            self.routable = [True] * len(self.workers)
            self.front = self._front_child(kamailio)
            self.front.spawn()
            self._wait_front(self.front, time.monotonic() + FRONT_START_TIMEOUT_S)
        except BaseException:
            self.kill()
            raise

    def _wait_workers(self, deadline: float) -> None:
        while not all(worker.ready and self.worker_ready(i) for i, worker in enumerate(self.workers)):
            for worker in [*self.workers, *([self.inference] if self.inference is not None else [])]:
                code = worker.exit_code()
                if code is not None:
                    raise IvrError(f"{worker.name} did not start ({describe_exit(code)}):\n{worker.tail()}")
                if time.monotonic() > deadline and not worker.ready:
                    raise IvrError(f"{worker.name} did not start in {WORKER_START_TIMEOUT_S:.0f} s:\n{worker.tail()}")
            time.sleep(0.1)

    def _wait_front(self, front: Child, deadline: float) -> None:
        while time.monotonic() < deadline:
            code = front.exit_code()
            if code is not None:
                raise IvrError(f"Kamailio exited at start ({describe_exit(code)}); see its log above")
            if self._front_answers():
                front.mark_ready()
                return
            time.sleep(0.1)
        raise IvrError(f"Kamailio did not listen on {self.config.bind}:{self.config.port} in time")

    def _front_child(self, kamailio: str) -> Child:
        """Writes the proxy's configuration (checked with `kamailio -c`) and returns its child, not started."""
        (self._runtime / "dispatcher.list").write_text(dispatcher_list(self.config.bind, self.ports,
                                                                       self.config.remote_workers),
                                                       encoding="utf-8")
        cfg = self._runtime / "kamailio.cfg"
        cfg.write_text(kamailio_config(self.config, self.ports, self._runtime), encoding="utf-8")
        run_as: dict[str, Any] = {}
        # never run the proxy as root: its own user (Debian's package makes one), set before exec (not with
        # kamailio's -u, which would clear the parent-death signal when it changes user)
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam(KAMAILIO_USER)
            except KeyError:
                raise IvrError(f"ivr serve runs as root but there is no {KAMAILIO_USER!r} user for Kamailio "
                               "(the Debian package creates it)") from None
            for path in (self._runtime, *self._runtime.iterdir()):
                os.chown(path, user.pw_uid, user.pw_gid)
            run_as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        check = subprocess.run([kamailio, "-c", "-f", str(cfg), "-Y", str(self._runtime)],
                               capture_output=True, text=True, timeout=FRONT_START_TIMEOUT_S)
        if check.returncode != 0:
            raise IvrError(f"the Kamailio configuration is invalid:\n{check.stderr[-2000:]}")
        cmd = [kamailio, "-DD", "-E", "-f", str(cfg), "-Y", str(self._runtime), "-P", str(self._runtime / "pid"),
               "-m", "64", "-M", "8"]
        return Child("kamailio", cmd, popen=run_as)

    def _front_answers(self) -> bool:
        """Whether the proxy answers an OPTIONS on its address (it answers 200 itself)."""
        return sip_ping(self.config.bind, self.config.port, timeout_s=0.2) is not None

    # ---- watching -----------------------------------------------------------------------------------

    def tick(self) -> None:
        """One look at every child: restarts what stopped (after its backoff), kills what hangs, and keeps
        the proxy's routing in step. Call it from the main loop every TICK_S or so."""
        if self.stopping:
            return
        now = time.monotonic()
        if self.inference is not None:  # restarted like a worker; the workers reconnect by themselves
            self._watch(self.inference, now, WORKER_START_TIMEOUT_S)
        for i, worker in enumerate(self.workers):
            pid = worker.pid
            change = self._watch(worker, now, WORKER_START_TIMEOUT_S)
            if change == "down":
                self._route(i, False)
                mark_process_dead(pid)
            elif change == "up":
                self._route(i, self.worker_ready(i))
        if now - self._readiness_checked >= READY_CHECK_S:
            self._readiness_checked = now
            for i, worker in enumerate(self.workers):
                self._route(i, worker.ready and self.worker_ready(i))
        front = self.front
        if front is None:
            return
        if front.running and not front.ready and self._front_answers():
            front.mark_ready()
        elif front.ready and now - self._front_checked >= FRONT_CHECK_S:
            self._check_front(front, now)
        if front.proc is None and front.restart_at is not None and now >= front.restart_at:
            for leftover in ("pid", "rpc.sock"):  # the dead proxy's: the new one makes its own
                with contextlib.suppress(OSError):
                    (self._runtime / leftover).unlink()
        if self._watch(front, now, FRONT_START_TIMEOUT_S) == "up":  # a new proxy: tell it who is down
            for port, routable, worker in zip(self.ports, self.routable, self.workers, strict=True):
                if not routable:
                    self.rpc.set_worker(self.config.bind, port, up=False, hold=worker.running)

    def worker_ready(self, i: int) -> bool:
        """Whether worker i's /readyz says it takes calls (models loaded, SIP up, store reachable); without
        an HTTP port, whether it printed its listening line."""
        if not self.http_ports[i]:
            return self.workers[i].ready
        return http_ready("127.0.0.1", self.http_ports[i])

    def _route(self, i: int, up: bool) -> None:
        """Tells the proxy to route calls to worker i or not, when that changed."""
        if up == self.routable[i]:
            return
        self.routable[i] = up
        if up:
            log.info("%s is ready: the proxy routes calls to it", self.workers[i].name)
        elif self.workers[i].proc is not None:
            log.warning("%s is not ready: the proxy routes no calls to it", self.workers[i].name)
        if self.front is not None and self.front.ready:
            self.rpc.set_worker(self.config.bind, self.ports[i], up=up, hold=not up and self.workers[i].running)

    def _check_front(self, front: Child, now: float) -> None:
        """Kills a proxy that runs but no longer answers (the restart follows as for a crash)."""
        self._front_checked = now
        self._front_misses = 0 if self._front_answers() else self._front_misses + 1
        if self._front_misses >= FRONT_MISSES:
            log.error("%s (pid %s) did not answer OPTIONS %d times in a row: it hangs; killing it", front.name,
                      front.pid, self._front_misses)
            self._front_misses = 0
            front.signal(signal.SIGKILL)

    def _watch(self, child: Child, now: float, start_timeout_s: float) -> str | None:
        """'down' when the child just stopped, 'up' when it came back and is ready, else None."""
        child.drain_notify(now)
        code = child.exit_code()
        if code is not None:
            up_s = now - child.started_at
            delay = child.backoff.next_delay(up_s)
            child.down_since = now if child.down_since is None else child.down_since
            child.restart_at = now + delay
            before = "" if child.ready_at is not None else f"; before it was ready it printed:\n{child.tail()}"
            log.error("%s (pid %s) stopped: %s after %.1f s; restarting it in %.0f s%s", child.name, child.pid,
                      describe_exit(code), up_s, delay, before)
            child.reap()
            return "down"
        if child.proc is None:
            if child.restart_at is not None and now >= child.restart_at:
                self._restart(child, now)
            return None
        if not child.ready:
            if now - child.started_at > start_timeout_s:
                log.error("%s (pid %s) was not ready after %.0f s; killing it", child.name, child.pid,
                          start_timeout_s)
                child.signal(signal.SIGKILL)
            return None
        if child.down_since is not None:
            log.warning("%s is back (pid %s), %.1f s after it stopped", child.name, child.pid, now - child.down_since)
            child.down_since = None
            return "up"
        if child.watchdog_expired(now):
            log.error("%s (pid %s) sent no watchdog ping for %.0f s: it hangs; killing it", child.name, child.pid,
                      child.watchdog_s)
            child.signal(signal.SIGKILL)
        return None

    def _restart(self, child: Child, now: float) -> None:
        child.restart_at = None
        child.restarts += 1
        try:
            child.spawn()
        except OSError as exc:
            delay = child.backoff.next_delay(0.0)
            child.restart_at = now + delay
            log.error("%s could not be started: %s; trying again in %.0f s", child.name, exc, delay)
            return
        log.warning("%s: restarted as pid %s (restart %d)", child.name, child.pid, child.restarts)

    def ready(self) -> bool:
        """The supervisor's own /readyz: the proxy answers and at least one worker takes calls."""
        return (not self.stopping and self.front is not None and self.front.ready
                and (any(self.routable) or bool(self.config.remote_workers)))

    def status(self) -> str:
        """One line for systemd's STATUS=: how many workers take calls, and whether the proxy is up."""
        up = sum(self.routable)
        remote = f" (and {len(self.config.remote_workers)} remote)" if self.config.remote_workers else ""
        front = "" if self.front is not None and self.front.ready else "; the Kamailio front is down"
        return f"{up}/{len(self.workers)} workers up{remote} on {self.config.bind}:{self.config.port}{front}"

    # ---- stop ---------------------------------------------------------------------------------------

    def signal_workers(self) -> None:
        """Each signal to a worker: the first lets its calls finish (503 to new ones), a second hangs up."""
        for worker in self.workers:
            worker.signal(signal.SIGTERM)

    def wait_workers(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        for worker in self.workers:
            if worker.proc is None:
                continue
            try:
                worker.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                return False
        return True

    def stop(self, grace_s: float, hurry: threading.Event) -> int:
        """No more restarts; workers first (calls may finish through the proxy), then the proxy. Returns the
        exit code: 0 when every worker that was taking calls stopped cleanly."""
        self.stopping = True
        serving = [worker for worker in self.workers if worker.ready]  # one still starting has nothing to finish
        self.signal_workers()
        deadline = time.monotonic() + grace_s + 20.0
        hurried = False
        while time.monotonic() < deadline and not self.wait_workers(0.2):
            if hurry.is_set() and not hurried:
                hurried = True
                self.signal_workers()
        codes = [worker.exit_code() for worker in serving]
        self.kill()
        return 0 if all(code == 0 for code in codes) else 1

    def kill(self) -> None:
        """Ends every child still running (SIGTERM, then SIGKILL) and removes the runtime folder."""
        self.stopping = True
        children = [c for c in [*self.workers, self.front, self.inference] if c is not None]
        for child in children:
            child.signal(signal.SIGTERM)
        deadline = time.monotonic() + 10.0
        for child in children:
            child.kill(timeout_s=max(0.0, deadline - time.monotonic()), term=False)
        shutil.rmtree(self._runtime, ignore_errors=True)
        if self._infer_dir is not None:
            shutil.rmtree(self._infer_dir, ignore_errors=True)
