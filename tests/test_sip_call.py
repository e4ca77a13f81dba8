"""`ivr serve` answering real SIP calls from sipp over loopback, with RTP both ways.

Two calls run at once against one server:
- a speaking caller: hears the greeting (ASR on what reached the caller finds it), asks for the
  balance, hears the answer, says it is done, and the agent hangs up (BYE from the agent);
- a keying caller: presses 1 with RFC 4733 (-> node balance) and 3 with SIP INFO (-> node hours),
  then hangs up (BYE from the caller).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from ivr.serve.bench import free_port_range
from tests.sip import sipp
from tests.sip.prometheus import Prometheus, ReadyzWatcher
from tests.sip.rtp_pcap import CallerTrack
from tests.sip.serve import call_events, heard_words, say, start_server, tear_down

pytestmark = [pytest.mark.models, pytest.mark.sip, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 120
CALL_TIMEOUT_S = 90
PROMETHEUS_SERIES = (
    ("answered", "ivr_calls_answered_total", 2),
    ("turns", "ivr_turns_total", 2),
    ("replies", "ivr_voice_to_voice_seconds_count", 1),
    ("outcomes", "sum(ivr_call_outcomes_total)", 2),
    ("p95_s", "histogram_quantile(0.95, sum by (le) (ivr_voice_to_voice_seconds_bucket))", 0.001),
)
"""What the test reads back through Prometheus' HTTP API once both calls are over: (name, PromQL, at least)."""
GREETING_S = 8.0      # the greeting (~6 s) and the start of the menu, heard before the caller acts


@pytest.fixture(scope="module")
def calls(tmp_path_factory):
    sipp.require_sipp()
    work = tmp_path_factory.mktemp("sip")
    # the speaking caller
    talk = CallerTrack(ssrc=0x11111111)
    talk.silence(GREETING_S)
    talk.audio(say("Hi, what is my account balance?"))
    question_end_s = talk.time_s
    talk.silence(9.0)
    talk.audio(say("No, that's all, thank you."))
    talk.silence(8.0)
    talk.write_pcap(work / "talk.pcap")
    # the keying caller
    keys = CallerTrack(ssrc=0x22222222)
    keys.silence(GREETING_S)
    keys.key("1")
    keys.silence(14.0)
    keys.write_pcap(work / "keys.pcap")

    port = sipp.free_udp_port()
    http_port = free_port_range(1, tcp=True)
    readyz = ReadyzWatcher(http_port)  # every /readyz answer from the server's start on
    server = start_server(work / "calls", port, ["--http-port", str(http_port)])
    prometheus = Prometheus(work / "prometheus", http_port)
    listeners: list[sipp.RtpListener] = []
    sipps: list[subprocess.Popen] = []
    try:
        runs = {}
        for name, template, values in (
            ("talk", "agent_hangs_up.xml", {"PCAP": work / "talk.pcap", "BYE_TIMEOUT_MS": 60000}),
            ("keys", "caller_hangs_up.xml", {"PCAP": work / "keys.pcap", "INFO_AFTER_MS": 13000,
                                             "INFO_KEY": 3, "BYE_AFTER_MS": 4000}),
        ):
            base = sipp.free_media_base()
            listener = sipp.RtpListener(base + sipp.RTP_OFFSET)
            listeners.append(listener)
            log_dir = work / name
            log_dir.mkdir()
            scenario = sipp.render(template, log_dir / template, **values)
            proc = sipp.start_sipp(scenario, port, sipp.free_udp_port(), base, log_dir)
            sipps.append(proc)
            runs[name] = (proc, listener, log_dir)
        results = {}
        for name, (proc, listener, log_dir) in runs.items():
            rc, err = sipp.finish_sipp(proc, CALL_TIMEOUT_S)
            time.sleep(0.5)
            results[name] = {"rc": rc, "err": err, "listener": listener, "log_dir": log_dir}
        time.sleep(1.0)  # the server writes sip.json once the session has closed
        series = {name: prometheus.wait_for(expr, at_least) for name, expr, at_least in PROMETHEUS_SERIES}
    finally:
        prometheus.stop()
        readyz.stop()
        tear_down(server, sipps, listeners)
    call_dirs = sorted(p for p in (work / "calls").iterdir() if p.is_dir())
    by_sip_id = {}
    for d in call_dirs:
        meta = json.loads((d / "sip.json").read_text())
        by_sip_id[meta["sip_call_id"]] = d
    for name, result in results.items():
        matches = [d for sid, d in by_sip_id.items() if name == _which(result["log_dir"], sid)]
        result["call_dir"] = matches[0] if matches else None
    results["question_end_s"] = question_end_s
    results["server_rc"] = server.returncode
    results["prometheus"] = series
    results["readyz"] = readyz.statuses
    return results


def _which(log_dir: Path, sip_call_id: str) -> str:
    """sipp's Call-IDs look like 1-PID@ip: match them through the screen log name's PID."""
    pid = sip_call_id.split("-", 1)[1].split("@")[0]
    return log_dir.name if any(pid in p.name for p in log_dir.iterdir()) else ""


def _check_sipp(result: dict) -> None:
    errors = sipp.sipp_errors(result["log_dir"])
    assert result["rc"] == 0, f"sipp failed (rc {result['rc']}): {result['err'][-500:]} {errors}"


def test_agent_answers_and_the_caller_hears_the_greeting(calls):
    talk = calls["talk"]
    _check_sipp(talk)
    heard = talk["listener"].audio()
    assert heard.size > 8000 * 10, "the caller received less than 10 s of audio from the agent"
    greeting = heard_words(heard[: 8000 * 6])
    assert "welcome" in greeting or "bank" in greeting, greeting


def test_spoken_request_is_recognized_answered_by_voice_and_agent_hangs_up(calls):
    talk = calls["talk"]
    _check_sipp(talk)  # the scenario ends with the agent's BYE answered by 200
    events = call_events(talk["call_dir"])
    nodes = [e["node"] for e in events if e["type"] == "dialog"]
    assert "balance" in nodes and "goodbye" in nodes, nodes
    heard = talk["listener"].audio()
    answer = heard_words(heard[int(8000 * calls["question_end_s"]): int(8000 * (calls["question_end_s"] + 8))])
    assert "balance" in answer or "dollars" in answer, answer
    meta = json.loads((talk["call_dir"] / "sip.json").read_text())
    assert meta["outcome"] == "completed"
    # voice to voice, seen from the caller: end of the question (its place in the caller's stream,
    # counted from the agent's first packet) to the first agent packet with speech after it
    listener = talk["listener"]
    t0 = listener.packets[0][0]
    question_end = t0 + calls["question_end_s"]
    replies = [t for t in listener.speech_onsets() if t > question_end]
    assert replies, "no agent speech after the question"
    latency_ms = (replies[0] - question_end) * 1000
    print(f"voice-to-voice from the caller side: {latency_ms:.0f} ms (session: {meta['voice_to_voice_ms']})")
    assert latency_ms > 0  # speed is a benchmark (ivr bench-sip), not a test: only that the reply came after
    assert meta["caller"].startswith("h:") and "caller@" not in json.dumps(meta)


def test_dtmf_rfc4733_and_sip_info_reach_the_dialog(calls):
    keys = calls["keys"]
    _check_sipp(keys)
    events = call_events(keys["call_dir"])
    methods = [e["method"] for e in events if e["type"] == "dtmf_received"]
    assert methods == ["rfc4733", "sip-info"], methods
    nodes = [e["node"] for e in events if e["type"] == "dialog" and e["event"] == "DigitsEntered"]
    assert nodes == ["balance", "hours"], nodes
    assert all(e.get("digit") == "*" for e in events if e["type"] == "dtmf"), "digits must not be logged"
    meta = json.loads((keys["call_dir"] / "sip.json").read_text())
    assert meta["outcome"] == "caller-hangup"


def test_server_stops_cleanly_on_sigterm(calls):
    assert calls["server_rc"] == 0


def test_prometheus_scrapes_the_calls_and_their_latency_and_readyz_waited_for_the_models(calls):
    """A real Prometheus scraped `ivr serve` during both calls: the answered calls, the caller's turns, the
    ended calls and the voice-to-voice histogram come back through its HTTP API; /readyz said 503 while the
    models loaded, then 200."""
    series = calls["prometheus"]
    assert series["answered"] == 2 and series["outcomes"] == 2, series
    assert series["turns"] >= 2 and series["replies"] >= 1, series
    assert 0.0 < series["p95_s"] <= 10.0, series
    assert calls["readyz"][:1] == [503] and calls["readyz"][-1] == 200, calls["readyz"]
