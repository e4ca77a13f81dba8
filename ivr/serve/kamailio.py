"""The Kamailio front of `ivr serve --max-calls N`: its configuration, its RPC socket, and a SIP ping.

Routing around a dead worker, two ways (both in the configuration below):
  probing   the dispatcher sends OPTIONS to every worker every PING_INTERVAL_S (pjsua answers 200);
            PROBING_THRESHOLD failed pings (no answer within the transaction timeout) mark a worker
            inactive, and its first answer marks it active again. This also catches a worker that is
            alive but hung.
  push      the supervisor sees a worker exit at once and marks it inactive over the RPC socket
            (jsonrpcs, a unix datagram socket in the runtime folder), then active once its replacement
            listens: new calls stop going to it within a supervisor tick, not a ping timeout later.
An INVITE that a worker does not answer at all (a kill between two pings) fails over to the next worker
after WORKER_RELAY_TIMEOUT_MS, and that worker is marked inactive on the spot. A worker's 503 fails over too
(its slots are full, or it is stopping), except one for no headroom (REFUSED_HEADER: headroom): the machine
is too busy, so the caller gets the 503 with Retry-After at once.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import logging
import os
import socket
import uuid
from pathlib import Path
from typing import Any

from telephony.sip.config import SipConfig

log = logging.getLogger(__name__)

KAMAILIO_MODULES = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules")
WORKER_RELAY_TIMEOUT_MS = 3000
"""How long a worker may take to answer a request at all (also an OPTIONS ping) before it counts as gone."""
PING_INTERVAL_S = 1
"""Seconds between the dispatcher's OPTIONS pings to each worker (ds_ping_interval)."""
PROBING_THRESHOLD = 2
"""Failed pings in a row that mark a worker inactive (ds_probing_threshold)."""
DISPATCHER_SET = 1
REFUSED_HEADER = "X-IVR-Refused"
"""On a worker's 503: why it refused ("full", "stopping", "headroom"). "headroom" means the machine is too busy
(admission by measured headroom, ivr.serve.headroom): the front answers the caller 503 instead of trying
another worker of the same machine, which would only slow every call on it."""
RPC_TIMEOUT_S = 2.0
_rpc_ids = itertools.count(1)


def kamailio_config(config: SipConfig, worker_ports: list[int], runtime: Path) -> str:
    """The proxy's configuration: listens only on config.bind:config.port; RPC on runtime/rpc.sock."""
    if config.allow:
        tests = " || ".join(f'is_in_subnet("$si", "{ipaddress.ip_network(c, strict=False)}")'
                            for c in config.allow)
        allow = f"if (!({tests})) {{\n\t\txlog(\"L_WARN\", \"INVITE from $si refused: not in the allow-list\\n\");\n" \
                "\t\tsl_send_reply(\"403\", \"Forbidden\");\n\t\texit;\n\t}"
    else:
        allow = "# no allow-list: any source may call"
    return f"""#!KAMAILIO
# written by `ivr serve` (ivr/serve/kamailio.py); stateful proxy in front of the pjsua2 workers
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
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "ipops.so"
loadmodule "jsonrpcs.so"
loadmodule "dispatcher.so"

modparam("tm", "fr_timer", {WORKER_RELAY_TIMEOUT_MS})
modparam("tm", "fr_inv_timer", 60000)
modparam("rr", "enable_full_lr", 0)
modparam("jsonrpcs", "transport", 4)
modparam("jsonrpcs", "dgram_socket", "{runtime / 'rpc.sock'}")
modparam("dispatcher", "list_file", "{runtime / 'dispatcher.list'}")
modparam("dispatcher", "flags", 2)
modparam("dispatcher", "ds_ping_interval", {PING_INTERVAL_S})
modparam("dispatcher", "ds_probing_mode", 1)
modparam("dispatcher", "ds_probing_threshold", {PROBING_THRESHOLD})
modparam("dispatcher", "ds_inactive_threshold", 1)
modparam("dispatcher", "ds_ping_from", "sip:front@{config.bind}")

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
	if (!ds_select_domain("{DISPATCHER_SET}", "4")) {{
		route(FULL);
	}}
	xlog("L_NOTICE", "call $ci: INVITE to worker $rd:$rp\\n");
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
	if (t_branch_timeout() && !t_branch_replied()) {{
		xlog("L_WARN", "call $ci: worker $rd:$rp did not answer; no calls to it until it answers a ping\\n");
		ds_mark_dst("ip");
	}}
	if (t_check_status("486|503|408|500")) {{
		if (t_check_status("503") && $T_rpl($hdr({REFUSED_HEADER})) == "headroom") {{
			xlog("L_NOTICE", "call $ci: worker $rd:$rp has no headroom (the machine is busy): 503 to the caller\\n");
		}} else if (ds_next_domain()) {{
			xlog("L_NOTICE", "call $ci: INVITE to worker $rd:$rp (the previous one answered $T_reply_code)\\n");
			t_on_failure("NEXT_WORKER");
			t_relay();
			exit;
		}}
		append_to_reply("Retry-After: {config.retry_after_s}\\r\\n");
		t_reply("503", "Service Unavailable");
		exit;
	}}
}}

event_route[dispatcher:dst-down] {{
	xlog("L_WARN", "worker $ru does not answer pings: no calls to it\\n");
}}

event_route[dispatcher:dst-up] {{
	xlog("L_WARN", "worker $ru answers pings again: calls go to it\\n");
}}
"""


def dispatcher_list(host: str, worker_ports: list[int], remote: tuple[str, ...] = ()) -> str:
    """The dispatcher's destination set: one line per local worker, then one per remote worker URI."""
    uris = [worker_uri(host, port) for port in worker_ports] + [remote_uri(uri) for uri in remote]
    return "".join(f"{DISPATCHER_SET} {uri}\n" for uri in uris)


def remote_uri(text: str) -> str:
    """A remote worker's address as the dispatcher takes it (sip:HOST:PORT); raises ValueError otherwise."""
    uri = text if text.startswith("sip:") else "sip:" + text
    host, _, port = uri[4:].rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or any(c in host for c in " ;@<>\"'"):
        raise ValueError(f"a remote worker is sip:HOST:PORT, not {text!r}")
    return uri


def worker_uri(host: str, port: int) -> str:
    return f"sip:{host}:{port}"


class KamailioRpc:
    """JSON-RPC over Kamailio's unix datagram socket (module jsonrpcs); the reply comes to an abstract
    socket of ours (no file, so the proxy's own user can always answer it)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def call(self, method: str, *params: Any) -> Any:
        """The call's result; raises OSError when the proxy cannot be reached, RuntimeError on an error reply."""
        call_id = next(_rpc_ids)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(f"\0ivr-serve-{os.getpid()}-rpc-{call_id}")
            sock.settimeout(RPC_TIMEOUT_S)
            request = {"jsonrpc": "2.0", "method": method, "params": list(params), "id": call_id}
            sock.sendto(json.dumps(request).encode(), str(self.path))
            while True:
                reply = json.loads(sock.recv(1 << 20))
                if reply.get("id") == call_id:
                    break
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error'].get('message', reply['error'])}")
        return reply.get("result")

    def set_worker(self, host: str, port: int, up: bool, hold: bool = False) -> bool:
        """Routes calls to the worker (active) or not (inactive: a worker that stopped; it stays probed, and
        the dispatcher makes it active again once it answers pings). `hold`: disabled instead, for a worker
        that runs and answers pings but is not ready; only set_worker(up=True) routes to it again. False
        (logged) when the proxy could not be told (it may be restarting: its pings will find the state)."""
        state = "ap" if up else "d" if hold else "ip"
        try:
            self.call("dispatcher.set_state", state, DISPATCHER_SET, worker_uri(host, port))
        except (OSError, RuntimeError, ValueError) as exc:
            log.warning("could not tell the proxy that %s is %s: %s", worker_uri(host, port),
                        "up" if up else "down", exc)
            return False
        return True

    def worker_states(self) -> dict[str, str]:
        """Each worker's dispatcher flags, e.g. {'sip:127.0.0.1:5061': 'AP'} (A active, I inactive, P probing)."""
        result = self.call("dispatcher.list")
        states: dict[str, str] = {}
        for record in result.get("RECORDS", []):
            for target in record.get("SET", {}).get("TARGETS", []):
                dest = target.get("DEST", {})
                states[dest.get("URI", "")] = dest.get("FLAGS", "")
        return states


def sip_ping(host: str, port: int, timeout_s: float = 0.5) -> int | None:
    """Sends one OPTIONS over UDP; the status code of the answer, or None without one in time."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        sock.settimeout(timeout_s)
        local = sock.getsockname()[1]
        tag = uuid.uuid4().hex
        request = (f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP {host}:{local};branch=z9hG4bK{tag}\r\n"
                   f"From: <sip:ping@{host}>;tag={tag[:8]}\r\nTo: <sip:{host}:{port}>\r\n"
                   f"Call-ID: {tag}@{host}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
        try:
            sock.sendto(request.encode(), (host, port))
            while True:
                data = sock.recv(65536)
                first = data.split(b"\r\n", 1)[0].split(b" ")
                if len(first) >= 2 and first[0] == b"SIP/2.0" and first[1].isdigit() and tag.encode() in data:
                    code = int(first[1])
                    if code >= 200:
                        return code
        except OSError:  # timeout, or ICMP port unreachable
            return None
