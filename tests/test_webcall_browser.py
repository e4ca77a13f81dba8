"""Talking to the agent from the browser: headless Chromium with a fake microphone that plays a WAV file
(silence through the greeting, then "I'd like to check my balance", synthesized with Piper) calls the agent
from the console's web call page over WebRTC. The call reaches the bank flow's `balance` node (in the page,
and in the call store as a web call), and the agent's audio the page received and recorded is recognized by
Whisper as the balance answer; axe-core finds no serious or critical violation on the page during the call. Real
models throughout."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ivr.console.auth import Users
from ivr.store import Store
from tests.browser_support import assert_accessible, chromium, serve_console
from tests.test_store_support import store_config

pytestmark = [pytest.mark.models, pytest.mark.slow]
pytest.importorskip("aiortc")

PASSWORD = "a long supervisor password"
WAIT_S = 45
MIC_RATE_HZ = 48000
LEAD_SILENCE_S = 7.0
"""The question comes near the end of the greeting (it barges in, or is heard at the menu)."""
TAIL_SILENCE_S = 60.0
"""Chromium loops the fake microphone's file: the question must not come again during the test."""


@pytest.fixture(scope="module")
def services():
    from ivr.call.services import Services
    from ivr.config import AgentConfig

    return Services.load(AgentConfig())


@pytest.fixture(scope="module")
def microphone(tmp_path_factory, services) -> Path:
    from telephony.audio.resample import resample

    audio = services.synthesizer.synthesize("I'd like to check my balance.")
    speech = resample(audio.samples, audio.sample_rate_hz, MIC_RATE_HZ)
    samples = np.concatenate([np.zeros(int(LEAD_SILENCE_S * MIC_RATE_HZ), dtype=np.int16), speech,
                              np.zeros(int(TAIL_SILENCE_S * MIC_RATE_HZ), dtype=np.int16)])
    path = tmp_path_factory.mktemp("mic") / "caller.wav"
    sf.write(path, samples, MIC_RATE_HZ, subtype="PCM_16")
    return path


@pytest.fixture
def console(tmp_path, services):
    from ivr.store.hook import SipStoreObserver
    from ivr.webcall.calls import WebCalls
    from ivr.webcall.runner import WebCallSettings

    store = Store(store_config(tmp_path))
    Users(store).add("sam", "supervisor", PASSWORD)
    webcalls = WebCalls(WebCallSettings(out_dir=tmp_path / "calls"), lambda: services,
                        observers=[SipStoreObserver(store, keep_files=True, source="web")])
    try:
        with serve_console(store, webcalls=webcalls) as base:
            yield base, store, webcalls
    finally:
        store.close()


def heard_words(webm: bytes) -> str:
    """What Whisper hears in the page's recording (WebM/Opus, decoded with PyAV, which aiortc brings)."""
    import av

    from asr.whisper import WhisperRecognizer
    from telephony.audio.resample import resample
    from telephony.webrtc.media import mono_pcm16

    pcm, rate = b"", 48000
    with av.open(io.BytesIO(webm)) as container:
        for frame in container.decode(audio=0):
            chunk, rate = mono_pcm16(frame)
            pcm += chunk
    samples = resample(np.frombuffer(pcm, dtype="<i2"), rate, 16000)
    return re.sub(r"[^a-z ]", " ", WhisperRecognizer().transcribe(samples, 16000).text.lower())


def test_a_browser_calls_the_agent_reaches_balance_and_hears_the_answer(console, microphone, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    base, store, webcalls = console
    flags = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
             f"--use-file-for-fake-audio-capture={microphone}")
    with chromium(tmp_path / "chromium-profile", WAIT_S, flags) as browser:
        wait = WebDriverWait(browser, WAIT_S)
        browser.get(base + "/webcall")  # logged out: sent to the login page, then back
        wait.until(ec.presence_of_element_located((By.ID, "login-form")))
        browser.find_element(By.ID, "username").send_keys("sam")
        browser.find_element(By.ID, "password").send_keys(PASSWORD)
        browser.find_element(By.ID, "login-submit").click()
        wait.until(ec.element_to_be_clickable((By.ID, "call-button"))).click()

        def text(element_id: str) -> str:
            return browser.find_element(By.ID, element_id).text

        wait.until(lambda d: text("state-node") == "balance")
        wait.until(lambda d: text("state-listening") == "balance")  # the answer has been spoken
        call_id = text("state-call")
        lines = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#transcript li.caller")]
        assert any("balance" in line.lower() for line in lines), lines
        assert_accessible(browser)
        browser.find_element(By.ID, "hangup-button").click()
        wait.until(lambda d: d.find_element(By.ID, "agent-audio-link").get_attribute("hidden") is None)
        recorded = browser.execute_async_script(
            "const done = arguments[arguments.length - 1]; window.ivrWebcall.agentAudio().then(done);")
    assert recorded, "the page recorded none of the agent's audio"
    words = heard_words(base64.b64decode(recorded))
    assert "account balance" in words, words

    for runner in webcalls.live():
        runner.finished.wait(10)
    call = store.get_call(call_id)
    assert call is not None and call["source"] == "web"
    assert "balance" in {e.get("node") for e in call["events"] if e["type"] == "dialog"}
    assert any(t["speaker"] == "caller" and "balance" in (t["text"] or "").lower() for t in call["turns"])
