"""`ivr serve --max-calls 8`: worker processes behind a Kamailio proxy (ivr.serve.front).

Eight keypad callers at once, each through the proxy (Record-Route: ACK, INFO and BYE pass through it;
RTP goes straight to the worker): each presses 1 with SIP INFO (-> node balance) and hangs up. A ninth
caller while they are all up gets 503 with Retry-After from the proxy, and a caller from outside the
allow-list gets 403 from the proxy (the workers only ever see the proxy's address).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest

from ivr.serve.bench import free_port_range
from ivr.serve.front import kamailio_config, worker_limits
from telephony.sip.config import SipConfig
from telephony.sip.endpoint import MAX_ANSWERED_CALLS
from tests.sip import sipp
from tests.sip.rtp_pcap import quiet_pcap
from tests.sip.serve import call_events, start_server, tear_down

KAMAILIO = shutil.which("kamailio", path="/usr/sbin:/usr/bin:/sbin")

CALLS = 8
CALL_TIMEOUT_S = 75


def test_worker_shares_of_the_call_limit():
    assert worker_limits(4) == [2, 2]
    assert worker_limits(8) == [3, 3, 2]
    assert worker_limits(9) == [3, 3, 3]
    assert all(max(worker_limits(n)) <= MAX_ANSWERED_CALLS and sum(worker_limits(n)) == n for n in range(4, 40))


def test_proxy_config_is_valid_and_binds_only_the_configured_address(tmp_path):
    if KAMAILIO is None:
        pytest.skip("kamailio is not installed (Debian package kamailio; scripts/setup.sh installs it)")
    config = SipConfig(bind="127.0.0.1", port=15060, max_calls=8, allow=("127.0.0.1", "10.0.0.0/8"))
    (tmp_path / "dispatcher.list").write_text("1 sip:127.0.0.1:15061\n")
    text = kamailio_config(config, [15061], tmp_path)
    listens = [line for line in text.splitlines() if line.startswith("listen=")]
    assert listens == ["listen=udp:127.0.0.1:15060", "listen=tcp:127.0.0.1:15060"]
    assert 'is_in_subnet("$si", "10.0.0.0/8")' in text and "Retry-After: 30" in text
    (tmp_path / "k.cfg").write_text(text)
    check = subprocess.run([KAMAILIO, "-c", "-f", str(tmp_path / "k.cfg"), "-Y", str(tmp_path)],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr[-2000:]


@pytest.mark.models
@pytest.mark.sip
@pytest.mark.slow
def test_eight_calls_through_the_proxy_and_503_for_the_ninth(tmp_path):
    sipp.require_sipp()
    if KAMAILIO is None:
        pytest.skip("kamailio is not installed (Debian package kamailio; scripts/setup.sh installs it)")
    quiet_pcap(tmp_path / "quiet.pcap", 16.0)
    port = free_port_range(4, tcp=True)  # the proxy, then the workers
    t0 = time.monotonic()
    server = start_server(tmp_path / "calls", port, ["--max-calls", str(CALLS), "--allow", "127.0.0.1/32"])
    started_s = time.monotonic() - t0
    procs: list[subprocess.Popen] = []
    listeners: list[sipp.RtpListener] = []
    try:
        dirs = sipp.start_callers(tmp_path, CALLS, "caller_routed.xml", port, procs, listeners,
                                  PCAP=tmp_path / "quiet.pcap", INFO_AFTER_MS=7000, INFO_KEY=1, BYE_AFTER_MS=5000)
        time.sleep(3.0)  # all eight answered
        over = sipp.start_call(tmp_path / "over", "expect_503.xml", port)
        procs.append(over)
        stranger = sipp.start_call(tmp_path / "stranger", "expect_403.xml", port, local_ip="127.0.0.2")
        procs.append(stranger)
        assert sipp.finish_sipp(stranger, 20)[0] == 0, "the call from outside the allow-list did not get 403"
        assert sipp.finish_sipp(over, 20)[0] == 0, ("call 9 did not get 503 with Retry-After: "
                                                    + sipp.sipp_errors(tmp_path / "over"))
        failures = sipp.finish_callers(procs[:CALLS], dirs, CALL_TIMEOUT_S)
        calls_s = time.monotonic() - t0 - started_s
        time.sleep(1.0)  # sip.json is written once each session has closed
    finally:
        tear_down(server, procs, listeners)
    print(f"server start {started_s:.1f} s; 8 calls, the 9th and a stranger in {calls_s:.1f} s")
    assert not failures, "\n".join(failures)
    assert all(listener.packets for listener in listeners), "a caller got no RTP from its worker"
    call_dirs = [p for p in (tmp_path / "calls").iterdir() if p.is_dir()]
    assert len(call_dirs) == CALLS, sorted(p.name for p in call_dirs)
    for call_dir in call_dirs:
        events = call_events(call_dir)
        nodes = [e["node"] for e in events if e["type"] == "dialog" and e["event"] == "DigitsEntered"]
        assert nodes == ["balance"], (call_dir.name, nodes)
        meta = json.loads((call_dir / "sip.json").read_text())
        assert meta["outcome"] == "caller-hangup", (call_dir.name, meta["outcome"])
    assert server.returncode == 0
