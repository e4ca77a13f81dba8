"""Transfer to a human over real SIP: sipp callers and sipp phones standing for human agents.

One `ivr serve` (transfer targets mapped to the humans' phones, a webhook to a local HTTP server)
takes three calls at once:
- the caller's phone accepts the REFER: it carries the context headers (in the REFER and as URI
  headers of Refer-To, for the INVITE the phone sends the human), the phone reports the human
  answered, the agent hangs up; the webhook receives the call context as JSON;
- the caller's phone refuses the REFER (501): the agent calls the human itself (the human's phone gets
  the context headers), bridges the audio both ways (each side hears the other's tone), keeps
  recording (the human on the agent's channel), and ends the call when the human hangs up;
- REFER refused and the human busy (486): the caller hears that an agent will call back, then BYE.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import soundfile as sf

from tests.sip import sipp
from tests.sip.rtp_pcap import CallerTrack
from tests.sip.serve import call_events, heard_words, start_server, tear_down

pytestmark = [pytest.mark.models, pytest.mark.sip, pytest.mark.slow]

CALL_TIMEOUT_S = 75
CALLER_TONE_HZ = 600
HUMAN_TONE_HZ = 1000


def _tone(freq_hz: int, seconds: float) -> np.ndarray:
    t = np.arange(int(8000 * seconds)) / 8000
    return (6000 * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16)


def _tone_share(samples: np.ndarray, freq_hz: int) -> float:
    """Share of the signal's energy within 50 Hz of freq_hz."""
    if samples.size < 800:
        return 0.0
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(samples.size, 1 / 8000)
    total = spectrum.sum()
    return float(spectrum[np.abs(freqs - freq_hz) < 50].sum() / total) if total else 0.0


def _has_tone(listener: sipp.RtpListener, freq_hz: int) -> bool:
    """Whether any 1 s of what the listener received is mostly the tone."""
    audio = listener.audio()
    return any(_tone_share(audio[i:i + 8000], freq_hz) > 0.6 for i in range(0, max(0, audio.size - 8000), 4000))


class _Webhook:
    def __init__(self) -> None:
        received = self.received = []  # type: list[dict]

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ivr/transfer"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _presses(ssrc: int, key: str) -> CallerTrack:
    """A caller who waits out the greeting (8 s) and presses `key`."""
    track = CallerTrack(ssrc=ssrc)
    track.silence(8.0)
    track.key(key)
    return track


@pytest.fixture(scope="module")
def transfers(tmp_path_factory):
    sipp.require_sipp()
    work = tmp_path_factory.mktemp("transfer")
    tracks = {"accepted": _presses(0x31313131, "0"), "bridged": _presses(0x32323232, "0"),
              "callback": _presses(0x33333333, "2")}
    tracks["accepted"].silence(25.0)
    tracks["bridged"].silence(4.0)
    tracks["bridged"].audio(_tone(CALLER_TONE_HZ, 16.0))
    tracks["bridged"].silence(5.0)
    tracks["callback"].silence(35.0)
    for name, track in tracks.items():
        track.write_pcap(work / f"{name}.pcap")
    human_voice = CallerTrack(ssrc=0x44444444)
    human_voice.audio(_tone(HUMAN_TONE_HZ, 5.0))
    human_voice.write_pcap(work / "human.pcap")

    human_port, busy_port = sipp.free_udp_port(), sipp.free_udp_port()
    human_uri = f"sip:agent@127.0.0.1:{human_port}"
    busy_uri = f"sip:cards@127.0.0.1:{busy_port}"
    webhook = _Webhook()
    port = sipp.free_udp_port()
    server = start_server(work / "calls", port, [
        "--transfer-target", f"sip:queue@agents={human_uri}", "--transfer-target", f"sip:cards@agents={busy_uri}",
        "--webhook", webhook.url, "--grace", "0"])
    procs, listeners, runs = [], [], {}
    try:
        for name, template, values in (
            ("human", "human_agent.xml", {"PCAP": work / "human.pcap", "TALK_MS": 7000, "REASON": "caller-request"}),
            ("busy", "human_busy.xml", {"REASON": "lost-card"}),
        ):
            base = sipp.free_media_base()
            listener = sipp.RtpListener(base + sipp.RTP_OFFSET)
            listeners.append(listener)
            (work / name).mkdir()
            scenario = sipp.render(template, work / name / template, **values)
            proc = sipp.start_sipp(scenario, None, human_port if name == "human" else busy_port, base, work / name)
            procs.append(proc)
            runs[name] = (proc, listener, work / name)
        time.sleep(0.5)  # the phones listen
        common = {"REFER_TIMEOUT_MS": 40000, "BYE_TIMEOUT_MS": 45000, "HUMAN_URI": human_uri,
                  "REASON": "caller-request", "NODE": "transfer_agent"}
        for name, template, values in (
            ("accepted", "transfer_refer_ok.xml", {**common, "REFER_ANSWER": "202 Accepted"}),
            ("bridged", "transfer_refer_refused.xml", {**common, "REFER_ANSWER": "501 Not Implemented"}),
            ("callback", "transfer_refer_refused.xml", {**common, "REFER_ANSWER": "501 Not Implemented",
                                                        "HUMAN_URI": busy_uri, "REASON": "lost-card",
                                                        "NODE": "card_lost"}),
        ):
            base = sipp.free_media_base()
            listener = sipp.RtpListener(base + sipp.RTP_OFFSET)
            listeners.append(listener)
            (work / name).mkdir()
            values["PCAP"] = work / f"{name}.pcap"
            scenario = sipp.render(template, work / name / template, **values)
            proc = sipp.start_sipp(scenario, port, sipp.free_udp_port(), base, work / name)
            procs.append(proc)
            runs[name] = (proc, listener, work / name)
        results = {}
        for name, (proc, listener, log_dir) in runs.items():
            rc, err = sipp.finish_sipp(proc, CALL_TIMEOUT_S)
            results[name] = {"rc": rc, "err": err + sipp.sipp_errors(log_dir), "listener": listener, "log_dir": log_dir}
        time.sleep(1.0)  # sip.json is written once the session has closed
    finally:
        tear_down(server, procs, listeners)
        webhook.close()
    by_sip_id = {}
    for d in (work / "calls").iterdir():
        if (d / "sip.json").exists():
            meta = json.loads((d / "sip.json").read_text())
            by_sip_id[meta["sip_call_id"]] = d
    for name in ("accepted", "bridged", "callback"):
        log_dir = results[name]["log_dir"]
        found = [d for sid, d in by_sip_id.items() if "-" in sid and any(
            sid.split("-", 1)[1].split("@")[0] in p.name for p in log_dir.iterdir())]
        results[name]["call_dir"] = found[0] if found else None
    results["webhook"] = webhook.received
    return results


def _ok(result: dict) -> None:
    assert result["rc"] == 0, f"sipp failed (rc {result['rc']}): {result['err'][-2000:]}"


def test_refer_carries_the_context_and_the_webhook_gets_it(transfers):
    accepted = transfers["accepted"]
    _ok(accepted)  # REFER with context headers checked by the caller's phone, NOTIFY 200, BYE
    meta = json.loads((accepted["call_dir"] / "sip.json").read_text())
    assert meta["outcome"] == "transferred" and meta["transfer"]["method"] == "refer", meta
    hooks = [h for h in transfers["webhook"] if h["call_id"] == meta["call_id"] and h["type"] == "call.transferred"]
    assert len(hooks) == 1, transfers["webhook"]
    hook = hooks[0]["data"]
    assert hook["reason"] == "caller-request" and hook["node"] == "transfer_agent"
    assert hook["flow_target"] == "sip:queue@agents" and hook["transfer_uri"].startswith("sip:agent@127.0.0.1:")
    assert hook["sip_call_id"] == meta["sip_call_id"] and "transfer_agent" in hook["summary"]
    assert "caller@" not in json.dumps(hook)
    types = [e["type"] for e in call_events(accepted["call_dir"])]
    assert "transfer_refer" in types and "transfer_done" in types


def test_refused_refer_falls_back_to_a_bridged_call_the_human_receives(transfers):
    bridged, human = transfers["bridged"], transfers["human"]
    _ok(human)  # the human's phone got the INVITE with the context headers, talked, and hung up
    _ok(bridged)  # the caller got the agent's BYE after the human hung up
    assert _has_tone(bridged["listener"], HUMAN_TONE_HZ), "the caller did not hear the human"
    assert _has_tone(human["listener"], CALLER_TONE_HZ), "the human did not hear the caller"
    meta = json.loads((bridged["call_dir"] / "sip.json").read_text())
    assert meta["outcome"] == "transferred" and meta["transfer"]["method"] == "bridge", meta
    types = [e["type"] for e in call_events(bridged["call_dir"])]
    assert types.index("transfer_refer_failed") < types.index("transfer_done") < types.index("bridge_ended")
    recording, rate = sf.read(bridged["call_dir"] / "recording.wav", dtype="int16")
    assert rate == 8000
    tail = recording[-8000 * 6:]
    assert _tone_share(tail[:, 1], HUMAN_TONE_HZ) > 0.3, "the recording lacks the human on the agent's channel"
    assert _tone_share(tail[:, 0], CALLER_TONE_HZ) > 0.3, "the recording lacks the caller"


def test_when_no_human_answers_the_caller_is_offered_a_callback(transfers):
    callback, busy = transfers["callback"], transfers["busy"]
    _ok(busy)  # the busy human's phone got the INVITE with the context headers and answered 486
    _ok(callback)
    meta = json.loads((callback["call_dir"] / "sip.json").read_text())
    assert meta["outcome"] == "callback", meta
    events = call_events(callback["call_dir"])
    failed = [e for e in events if e["type"] == "transfer_failed"]
    assert failed and failed[0]["status"] == 486, failed
    heard = callback["listener"].audio()
    words = heard_words(heard[-8000 * 12:])
    assert "call you back" in words or "agent" in words, words
    assert any(h["type"] == "call.callback_requested" and h["call_id"] == meta["call_id"] for h in transfers["webhook"])
