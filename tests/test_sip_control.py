"""Call control over real SIP: a caller whose RTP stops is hung up after --rtp-timeout; a caller on hold
(re-INVITE a=sendonly, no RTP for longer than the timeout) stays connected and resumes (a=sendrecv);
SIGTERM lets the live call finish (new calls get 503 meanwhile) and the server then exits cleanly."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from tests.sip import sipp
from tests.sip.rtp_pcap import quiet_pcap
from tests.sip.serve import call_events, start_server

pytestmark = [pytest.mark.models, pytest.mark.sip, pytest.mark.slow]

RTP_TIMEOUT_S = 3
HOLD_MS = 6000  # longer than the RTP timeout: a held call must not be timed out


def test_rtp_timeout_hold_and_graceful_shutdown(tmp_path):
    sipp.require_sipp()
    quiet_pcap(tmp_path / "short.pcap", 2.0)
    quiet_pcap(tmp_path / "talk.pcap", 3.0)
    port = sipp.free_udp_port()
    server = start_server(tmp_path / "calls", port, ["--rtp-timeout", str(RTP_TIMEOUT_S), "--grace", "30"])
    procs: list[subprocess.Popen] = []
    listeners: list[sipp.RtpListener] = []
    try:
        dirs = {}
        for name, template, values in (
            ("held", "caller_holds.xml", {"PCAP": tmp_path / "talk.pcap", "TALK_MS": 3500, "HOLD_MS": HOLD_MS}),
            ("silent", "agent_hangs_up.xml", {"PCAP": tmp_path / "short.pcap", "BYE_TIMEOUT_MS": 15000}),
        ):
            dirs[name] = tmp_path / name
            proc, listener = sipp.start_caller(dirs[name], template, port, **values)
            procs.append(proc)
            listeners.append(listener)
        held, silent = procs
        started = time.monotonic()
        rc, err = sipp.finish_sipp(silent, 30)
        silent_s = time.monotonic() - started
        assert rc == 0, (f"the silent caller did not get the agent's BYE: {err[-500:]} "
                         f"{sipp.sipp_errors(dirs['silent'], 800)}")
        assert 2.0 + RTP_TIMEOUT_S - 1 <= silent_s <= 2.0 + RTP_TIMEOUT_S + 4, silent_s
        time.sleep(max(0.0, 7.5 - (time.monotonic() - started)))  # the held caller is on hold now
        server.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        late = sipp.start_call(tmp_path / "late", "expect_503.xml", port)
        procs.append(late)
        rc, err = sipp.finish_sipp(late, 20)
        assert rc == 0, f"a call during shutdown did not get 503: {err[-500:]}"
        assert server.poll() is None, "the server stopped before the live call ended"
        rc, err = sipp.finish_sipp(held, 40)
        assert rc == 0, f"the held call did not survive hold, resume and shutdown: {err[-500:]} " \
                        f"{sipp.sipp_errors(dirs['held'], 800)}"
        server.wait(15)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        if server.poll() is None:
            server.kill()
            server.wait(5)
        for listener in listeners:
            listener.close()
    output = server.stdout.read() if server.stdout else ""
    assert server.returncode == 0, output[-2000:]
    assert "may finish" in output
    outcomes = {}
    for d in (tmp_path / "calls").iterdir():
        meta = json.loads((d / "sip.json").read_text())
        outcomes[meta["outcome"]] = d
    assert set(outcomes) == {"rtp-timeout", "caller-hangup"}, outcomes
    assert any(e["type"] == "rtp_timeout" for e in call_events(outcomes["rtp-timeout"]))
    held_meta = json.loads((outcomes["caller-hangup"] / "sip.json").read_text())
    # talk, hold, talk again: 13 s by the caller's clock. An RTP timeout during the hold would have ended it at
    # about 3.5 + 3 s; a second of slack for the two clocks (sipp's pauses, the agent's answer and BYE times)
    assert held_meta["ended_at"] - held_meta["started_at"] > (3500 * 2 + HOLD_MS) / 1000 - 1.0
