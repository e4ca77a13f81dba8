"""More calls than one pjsua2 process holds: worker `ivr serve` processes behind a Kamailio proxy.

The pjsua2-python wheels have 4 call slots per process (see telephony.sip.endpoint), so one process
answers at most 3 calls. For a higher `--max-calls`, `ivr serve` becomes a supervisor:
  workers   ceil(max_calls / 3) ordinary `ivr serve` processes, each with its share of the limit, on
            bind:port+1+i (SIP) and their own RTP range; each loads the models once. Their allow-list
            is the proxy's own address: callers reach them only through the proxy.
  front     Kamailio (Debian package `kamailio`) on bind:port (UDP and TCP) as a stateful proxy:
            the allow-list (403 for others), OPTIONS answered with 200, each INVITE relayed to a
            worker (dispatcher, round-robin) with failover to the next worker on 486/503/408 (a full
            or dead worker), and 503 with Retry-After when every worker refused. It record-routes,
            so in-dialog requests (ACK, INFO, BYE, REFER) pass through it; it never touches SDP, so
            RTP flows directly between the caller and the worker.
SIGTERM: the workers get it (they refuse new calls with 503 and let live calls finish), and the proxy
stops once they have exited. Each child dies with the supervisor (PR_SET_PDEATHSIG). Started as root,
Kamailio runs as the `kamailio` user.
"""

from __future__ import annotations

import ctypes
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
from pathlib import Path
from typing import IO, Any

from ivr.errors import IvrError
from telephony.sip.config import SipConfig
from telephony.sip.endpoint import MAX_ANSWERED_CALLS, PJSUA_MAX_CALLS

log = logging.getLogger(__name__)

KAMAILIO_USER = "kamailio"
KAMAILIO_MODULES = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules")
WORKER_START_TIMEOUT_S = 300.0
FRONT_START_TIMEOUT_S = 15.0
RTP_STRIDE = 4 * PJSUA_MAX_CALLS
"""RTP ports per worker: pjsua takes an RTP and an RTCP port per call slot; twice that as a margin."""
DEFAULT_RTP_PORT = 4000
WORKER_RELAY_TIMEOUT_MS = 3000
"""How long a worker may take to answer an INVITE at all before the proxy tries the next one."""


def worker_limits(max_calls: int) -> list[int]:
    """Each worker's share of max_calls (at most MAX_ANSWERED_CALLS each), as even as possible."""
    count = math.ceil(max_calls / MAX_ANSWERED_CALLS)
    return [max_calls // count + (1 if i < max_calls % count else 0) for i in range(count)]


def kamailio_config(config: SipConfig, worker_ports: list[int], runtime: Path) -> str:
    """The proxy's configuration: listens only on config.bind:config.port."""
    if config.allow:
        tests = " || ".join(f'is_in_subnet("$si", "{ipaddress.ip_network(c, strict=False)}")'
                            for c in config.allow)
        allow = f"if (!({tests})) {{\n\t\txlog(\"L_WARN\", \"INVITE from $si refused: not in the allow-list\\n\");\n" \
                "\t\tsl_send_reply(\"403\", \"Forbidden\");\n\t\texit;\n\t}"
    else:
        allow = "# no allow-list: any source may call"
    return f"""#!KAMAILIO
# written by `ivr serve` (telephony/sip/front.py); stateful proxy in front of the pjsua2 workers
debug=1
log_stderror=yes
memdbg=5
memlog=5
children=2
tcp_children=1
auto_aliases=no
dns=no
rev_dns=no
use_dns_cache=no
listen=udp:{config.bind}:{config.port}
listen=tcp:{config.bind}:{config.port}
server_header="Server: {config.user_agent}"
user_agent_header="User-Agent: {config.user_agent}"
mpath="{KAMAILIO_MODULES}/"

loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "ipops.so"
loadmodule "dispatcher.so"

modparam("tm", "fr_timer", {WORKER_RELAY_TIMEOUT_MS})
modparam("tm", "fr_inv_timer", 60000)
modparam("rr", "enable_full_lr", 0)
modparam("dispatcher", "list_file", "{runtime / 'dispatcher.list'}")
modparam("dispatcher", "flags", 2)
modparam("dispatcher", "ds_ping_interval", 0)

request_route {{
	if (!mf_process_maxfwd_header("10")) {{
		sl_send_reply("483", "Too Many Hops");
		exit;
	}}
	if (has_totag()) {{
		if (loose_route()) {{
			t_relay();
			exit;
		}}
		if (is_method("ACK")) {{
			if (t_check_trans()) {{
				t_relay();
			}}
			exit;
		}}
		sl_send_reply("404", "Not Here");
		exit;
	}}
	if (is_method("CANCEL")) {{
		if (t_check_trans()) {{
			t_relay();
		}}
		exit;
	}}
	if (is_method("ACK")) {{
		exit;
	}}
	if (is_method("OPTIONS")) {{
		sl_send_reply("200", "OK");
		exit;
	}}
	if (!is_method("INVITE")) {{
		sl_send_reply("405", "Method Not Allowed");
		exit;
	}}
	{allow}
	remove_hf("Route");
	record_route();
	if (!ds_select_domain("1", "4")) {{
		route(FULL);
	}}
	t_on_failure("NEXT_WORKER");
	if (!t_relay()) {{
		sl_reply_error();
	}}
	exit;
}}

route[FULL] {{
	append_to_reply("Retry-After: {config.retry_after_s}\\r\\n");
	sl_send_reply("503", "Service Unavailable");
	exit;
}}

failure_route[NEXT_WORKER] {{
	if (t_is_canceled()) {{
		exit;
	}}
	if (t_check_status("486|503|408|500")) {{
		if (ds_next_domain()) {{
			t_on_failure("NEXT_WORKER");
			t_relay();
			exit;
		}}
		append_to_reply("Retry-After: {config.retry_after_s}\\r\\n");
		t_reply("503", "Service Unavailable");
		exit;
	}}
}}
"""


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Supervisor:
    """Workers and the Kamailio front for one `ivr serve --max-calls N` (N > 3)."""

    def __init__(self, config: SipConfig, argv: list[str]) -> None:
        self.config = config
        self.argv = argv
        """The supervisor's own command line after the program (global options, `serve`, its options)."""
        self.limits = worker_limits(config.max_calls)
        self.ports = [config.port + 1 + i for i in range(len(self.limits))]
        base = config.rtp_port or DEFAULT_RTP_PORT
        self.rtp_ports = [base + i * RTP_STRIDE for i in range(len(self.limits))]
        self.workers: list[subprocess.Popen[str]] = []
        self.front: subprocess.Popen[str] | None = None
        self._runtime = Path(tempfile.mkdtemp(prefix="ivr-front-"))
        self._pumps: list[threading.Thread] = []

    def start(self) -> None:
        kamailio = shutil.which("kamailio") or shutil.which("kamailio", path="/usr/sbin:/sbin")
        if kamailio is None:
            raise IvrError(f"--max-calls {self.config.max_calls} needs Kamailio in front of the workers (more than "
                           f"{MAX_ANSWERED_CALLS} calls per process are not possible): apt-get install kamailio")
        if ipaddress.ip_address(self.config.bind).is_unspecified:
            raise IvrError(f"--max-calls above {MAX_ANSWERED_CALLS} needs a specific --bind address, not "
                           f"{self.config.bind}")
        try:
            for i, (limit, port, rtp) in enumerate(zip(self.limits, self.ports, self.rtp_ports, strict=True)):
                cmd = [sys.executable, "-m", "ivr", *self.argv, "--bind", self.config.bind, "--port", str(port),
                       "--rtp-port", str(rtp), "--max-calls", str(limit), "--worker-of", self.config.bind]
                self.workers.append(subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                    start_new_session=True, preexec_fn=_die_with_parent))
                log.info("worker %d: pid %d on %s:%d, RTP from %d, %d call(s)", i, self.workers[-1].pid,
                         self.config.bind, port, rtp, limit)
            deadline = time.monotonic() + WORKER_START_TIMEOUT_S
            for i, worker in enumerate(self.workers):
                self._wait_ready(worker, f"worker {i}", deadline)
            self._start_front(kamailio)
        except BaseException:
            self.kill()
            raise

    def _wait_ready(self, proc: subprocess.Popen[str], name: str, deadline: float) -> None:
        assert proc.stdout is not None
        lines: list[str] = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if "listening on sip:" in line:
                self._pump(proc.stdout, name)
                return
            lines.append(line)
        tail = "".join(lines[-20:])
        raise IvrError(f"{name} did not start (exit code {proc.poll()}):\n{tail}")

    def _pump(self, stream: IO[str], name: str) -> None:
        """Copies a child's output to ours, each line marked with its name."""
        def run() -> None:
            for line in stream:
                sys.stderr.write(f"[{name}] {line}")
        thread = threading.Thread(target=run, name=f"pump-{name}", daemon=True)
        thread.start()
        self._pumps.append(thread)

    def _start_front(self, kamailio: str) -> None:
        (self._runtime / "dispatcher.list").write_text(
            "".join(f"1 sip:{self.config.bind}:{port}\n" for port in self.ports), encoding="utf-8")
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
        self.front = subprocess.Popen(
            [kamailio, "-DD", "-E", "-f", str(cfg), "-Y", str(self._runtime), "-P", str(self._runtime / "pid"),
             "-m", "64", "-M", "8"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True, preexec_fn=_die_with_parent, **run_as)
        assert self.front.stdout is not None
        self._pump(self.front.stdout, "kamailio")
        deadline = time.monotonic() + FRONT_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.front.poll() is not None:
                raise IvrError(f"Kamailio exited at start (code {self.front.returncode}); see its log above")
            if self._listening():
                return
            time.sleep(0.1)
        raise IvrError(f"Kamailio did not listen on {self.config.bind}:{self.config.port} in time")

    def _listening(self) -> bool:
        """Whether the front's UDP port is taken (by Kamailio, which alone was told to bind it)."""
        import socket

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind((self.config.bind, self.config.port))
            except OSError:
                return True
        return False

    @property
    def running(self) -> bool:
        return (self.front is not None and self.front.poll() is None
                and all(w.poll() is None for w in self.workers))

    def signal_workers(self) -> None:
        """Each signal to a worker: the first lets its calls finish (503 to new ones), a second hangs up."""
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)

    def wait_workers(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        for worker in self.workers:
            try:
                worker.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                return False
        return True

    def stop(self, grace_s: float, hurry: threading.Event) -> int:
        """Workers first (calls may finish through the proxy), then the proxy. Returns the exit code."""
        self.signal_workers()
        deadline = time.monotonic() + grace_s + 20.0
        hurried = False
        while time.monotonic() < deadline and not self.wait_workers(0.2):
            if hurry.is_set() and not hurried:
                hurried = True
                self.signal_workers()
        codes = [w.poll() for w in self.workers]
        self.kill()
        return 0 if all(code == 0 for code in codes) else 1

    def kill(self) -> None:
        """Ends every child still running (SIGTERM, then SIGKILL) and removes the runtime folder."""
        procs = [p for p in [*self.workers, self.front] if p is not None]
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for thread in self._pumps:
            thread.join(1)
        shutil.rmtree(self._runtime, ignore_errors=True)

