"""Web calls without a browser: the WebRTC transport's resampling, and a Python aiortc caller on loopback
talking to the agent's WebCalls (fake voice and recognizer, the real bank flow, a real store): the agent's
audio arrives, keys pressed on the page's keypad move the dialog, the call is stored with source "web", and
a transfer ends in a callback request."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pytest

from dialog.flow import load_default_flow
from dialog.machine import Machine
from ivr.call.services import Services
from ivr.config import AgentConfig
from ivr.store import Store
from ivr.store.hook import SipStoreObserver
from telephony.audio.frame import Frame
from telephony.clock import WallClock
from tests.fakes import CannedRecognizer
from tests.test_store_support import store_config
from tts.base import SpeechAudio, Synthesizer, TtsCapabilities

pytest.importorskip("aiortc")

from ivr.webcall.calls import WebCalls, WebCallsBusy  # noqa: E402
from ivr.webcall.client import WebCaller  # noqa: E402
from ivr.webcall.runner import WebCallSettings  # noqa: E402
from telephony.webrtc import OfferError  # noqa: E402
from telephony.webrtc.transport import WebRtcTransport  # noqa: E402

TONE_HZ = 440.0


class ToneSynthesizer(Synthesizer):
    """Every sentence is 0.3 s of a loud 440 Hz tone."""

    engine = "tone"
    capabilities = TtsCapabilities(sample_rate_hz=16000)

    def synthesize(self, text: str) -> SpeechAudio:
        t = np.arange(int(0.3 * 16000)) / 16000
        return SpeechAudio((0.5 * 32767 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.int16), 16000)


def fake_services() -> Services:
    return Services(AgentConfig(), CannedRecognizer("balance"), ToneSynthesizer(), Machine(load_default_flow()))


def dominant_hz(samples: np.ndarray, rate_hz: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate_hz)[int(np.argmax(spectrum))])


class Sink:
    """The agent's side of the line in the transport tests: keeps what it is given (nothing is sent)."""

    def __init__(self, sending: bool = True) -> None:
        self.frames: list[bytes] = []
        self.sending = sending

    def push(self, pcm: bytes) -> None:
        self.frames.append(pcm)

    @property
    def queued(self) -> int:
        return 0 if self.sending else len(self.frames)


def test_transport_resamples_48k_to_the_session_rate_and_back():
    sink = Sink()
    sent = sink.frames
    line = WebRtcTransport(WallClock(), sink)
    t = np.arange(48000) / 48000
    tone = (10000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    for i in range(50):
        line.hear(tone[i * 960:(i + 1) * 960].astype("<i2").tobytes())
    frames = [line.read(0.0) for _ in range(45)]
    assert all(f is not None and f.sample_rate_hz == 16000 and f.num_samples == 320 for f in frames)
    heard = np.concatenate([f.samples() for f in frames if f is not None])
    assert abs(dominant_hz(heard[3200:], 16000) - 1000) < 20
    for i in range(50):
        line.write(Frame.from_samples(heard[(i % 40) * 320:(i % 40 + 1) * 320], 16000))
    assert len(sent) >= 45 and all(len(pcm) == 960 * 2 for pcm in sent)
    back = np.frombuffer(b"".join(sent[5:45]), dtype="<i2")
    assert abs(dominant_hz(back, 48000) - 1000) < 20
    assert line.key("5") and not line.key("x") and [k.digit for k in line.key_presses()] == ["5"]
    assert line.line_end() is None
    line.caller_left("page closed")
    end = line.line_end()
    assert end is not None and end.outcome == "caller-hangup"


def test_a_backlog_of_the_agents_audio_sheds_silence_never_speech():
    sink = Sink(sending=False)  # nothing leaves: every frame written waits
    line = WebRtcTransport(WallClock(), sink)
    for _ in range(20):
        line.write(Frame.silence(16000))
    assert len(sink.frames) <= 4 and line.silence_shed >= 12  # (a few frames are still in the resampler)
    shed = line.silence_shed
    tone = (8000 * np.sin(2 * np.pi * 440 * np.arange(320) / 16000)).astype(np.int16)
    for _ in range(20):
        line.write(Frame.from_samples(tone, 16000))
    sounding = [pcm for pcm in sink.frames if pcm.strip(b"\0")]
    assert len(sounding) >= 17 and line.silence_shed - shed <= 3  # speech is queued however long the backlog


@pytest.fixture
def webcalls(tmp_path: Path):
    store = Store(store_config(tmp_path))
    settings = WebCallSettings(out_dir=tmp_path / "calls", max_calls=1)
    calls = WebCalls(settings, fake_services, observers=[SipStoreObserver(store, keep_files=True, source="web")])
    yield calls, store
    store.close()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 40))


def test_a_web_call_over_loopback_hears_the_agent_and_presses_keys(webcalls):
    calls, store = webcalls

    async def scenario() -> tuple[WebCaller, str]:
        caller = WebCaller()
        answer = await caller.call(calls.start)
        with pytest.raises(WebCallsBusy):  # one web call at a time in these settings
            await WebCaller().call(calls.start)
        assert await caller.wait_for(lambda: bool(caller.of_type("listening")), 20), caller.messages
        assert await caller.wait_for(lambda: caller.first_speech_after(0) is not None, 5)
        caller.press("1")  # main menu: 1 is the balance
        assert await caller.wait_for(lambda: any(m.get("node") == "balance" for m in caller.of_type("state")), 10)
        spoken = time.monotonic()
        assert await caller.until_quiet(0.5, 10, since=spoken)
        caller.hang_up()
        assert await caller.wait_for(caller.bye.is_set, 10)
        await caller.close()
        return caller, answer["call_id"]

    caller, call_id = run(scenario())
    heard = np.frombuffer(b"".join(caller.agent_pcm), dtype="<i2")
    loud = [pcm for pcm in caller.agent_pcm if np.abs(np.frombuffer(pcm, dtype="<i2")).max() > 8000]
    assert abs(dominant_hz(np.frombuffer(b"".join(loud), dtype="<i2"), 48000) - TONE_HZ) < 10
    assert heard.size > 48000  # seconds of the call's audio reached the caller
    kinds = [m["type"] for m in caller.messages]
    assert kinds[0] == "started" and "said" in kinds and kinds[-1] == "bye"
    deadline = time.monotonic() + 10
    while calls.live_count() and time.monotonic() < deadline:
        time.sleep(0.05)
    call = store.get_call(call_id)
    assert call is not None and call["source"] == "web" and call["outcome"] == "caller-hangup"
    assert "balance" in {e.get("node") for e in call["events"] if e["type"] == "dialog"}
    assert (calls.settings.out_dir / call_id / "recording.wav").is_file()


def test_a_web_transfer_becomes_a_callback_request(webcalls):
    from ivr.store.hookevents import WebhookOptions

    calls, store = webcalls
    calls.settings = dataclasses.replace(calls.settings, webhook_url="http://127.0.0.1:9/hooks")
    calls.observers[0].webhooks = WebhookOptions()  # the console's outbox (no worker delivers it here)

    async def scenario() -> tuple[WebCaller, str]:
        caller = WebCaller()
        answer = await caller.call(calls.start)
        assert await caller.wait_for(lambda: bool(caller.of_type("listening")), 20), caller.messages
        caller.press("0")  # an agent, please
        assert await caller.wait_for(caller.bye.is_set, 20), caller.messages
        await caller.close()
        return caller, answer["call_id"]

    caller, call_id = run(scenario())
    assert caller.of_type("callback") and caller.of_type("bye")[0]["outcome"] == "callback"
    said = [m["text"] for m in caller.of_type("said")]
    assert any("call you back" in text for text in said)  # the caller was told
    deadline = time.monotonic() + 10
    while calls.live_count() and time.monotonic() < deadline:
        time.sleep(0.05)
    call = store.get_call(call_id)
    assert call is not None and call["source"] == "web" and call["outcome"] == "transferred"
    assert "callback_requested" in [e["type"] for e in call["events"]]
    hooks = outbox_bodies(store)
    assert hooks["call.callback_requested"]["data"]["channel"] == "web", hooks.keys()
    assert hooks["call.started"]["data"]["source"] == "web"


def outbox_bodies(store: Store) -> dict[str, dict]:
    """The webhook outbox's event bodies by event type."""
    from sqlalchemy import select

    from ivr.store import schema

    with store.engine.connect() as conn:
        rows = conn.execute(select(schema.outbox.c.event_type, schema.outbox.c.body)).all()
    return {kind: json.loads(body) for kind, body in rows}


def test_a_page_that_never_connects_ends_its_call(tmp_path):
    store = Store(store_config(tmp_path))
    settings = WebCallSettings(out_dir=tmp_path / "calls", connect_timeout_s=1.0)
    calls = WebCalls(settings, fake_services, observers=[SipStoreObserver(store, keep_files=True, source="web")])

    async def scenario() -> str:
        caller = WebCaller()
        caller.pc.addTrack(caller.voice)
        await caller.pc.setLocalDescription(await caller.pc.createOffer())
        answer = await calls.start(caller.pc.localDescription.sdp, "offer")  # the answer never reaches the caller
        assert await caller.wait_for(lambda: calls.live_count() == 0, 10)
        await caller.close()
        return answer["call_id"]

    try:
        call = store.get_call(run(scenario()))
        assert call is not None and call["outcome"] == "caller-hangup" and call["source"] == "web"
    finally:
        store.close()


def test_a_missing_model_is_a_clear_error_and_the_next_call_tries_again(tmp_path):
    from models.errors import ModelMissingError

    attempts: list[int] = []

    def broken() -> Services:
        attempts.append(1)
        raise ModelMissingError("whisper tiny.en is not installed")

    calls = WebCalls(WebCallSettings(out_dir=tmp_path), broken)

    async def scenario() -> None:
        for _ in range(2):
            with pytest.raises(ModelMissingError, match="tiny.en"):
                await calls.start("v=0", "offer")
        working = WebCalls(WebCallSettings(out_dir=tmp_path), fake_services)
        for garbage in ("garbage\r\nm=audio x", "v=0"):
            with pytest.raises(OfferError):
                await working.start(garbage, "offer")
        assert working.live_count() == 0

    run(scenario())
    assert len(attempts) == 2 and calls.live_count() == 0 and "tiny.en" in calls.last_error


def test_the_web_call_page_and_its_offer_endpoint_check_access_and_say_what_is_wrong(tmp_path):
    from ivr.console.app import create_app
    from ivr.console.auth import Users
    from models.errors import ModelMissingError
    from tests.console_client import PASSWORD, client_for, csrf_of, login

    def broken() -> Services:
        raise ModelMissingError("whisper tiny.en is not installed")

    store = Store(store_config(tmp_path))
    try:
        Users(store).add("sam", "supervisor", PASSWORD)
        app = create_app(store, webcalls=WebCalls(WebCallSettings(out_dir=tmp_path / "calls"), broken))
        anonymous = client_for(app)
        assert anonymous.get("/webcall").status_code == 303  # to the login page
        assert anonymous.post("/api/webcall/offer", json={"sdp": "v=0", "type": "offer"}).status_code == 401
        with login(app, "sam")[0] as client:
            page = client.get("/webcall")
            assert page.status_code == 200 and 'id="call-button"' in page.text and "webcall.js" in page.text
            assert "<script>" not in page.text  # the CSP allows no inline script
            assert client.post("/api/webcall/offer", json={"sdp": "v=0", "type": "offer"}).status_code == 403
            headers = {"X-CSRF-Token": csrf_of(client)}
            bad = client.post("/api/webcall/offer", json={"sdp": "", "type": "answer"}, headers=headers)
            assert bad.status_code == 400
            missing = client.post("/api/webcall/offer", json={"sdp": "v=0", "type": "offer"}, headers=headers)
            assert missing.status_code == 503 and "tiny.en is not installed" in missing.json()["detail"]
    finally:
        store.close()
