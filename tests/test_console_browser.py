"""The supervisor console in real headless Chromium (Debian's chromium + chromedriver, driven by Selenium):
a supervisor logs in, finds a call by a word its caller said, opens it, plays the audio, and sees the
transcript by speaker and the emotion plot; axe-core finds no serious or critical violation on the login page,
the call list or the call page. The call is a real simulated call on the real models."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ivr.console.auth import Users
from ivr.store import Store
from ivr.store.importer import import_call_dir
from tests.browser_support import assert_accessible, chromium, serve_console
from tests.test_store_support import store_config

pytestmark = [pytest.mark.models, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "a long supervisor password"
WAIT_S = 20


@pytest.fixture(scope="module")
def real_call(tmp_path_factory):
    from ivr.call.services import Services
    from ivr.config import AgentConfig
    from ivr.simulate import simulate_call
    from telephony.wavfile import load_script

    out = tmp_path_factory.mktemp("browser-call") / "call"
    call = simulate_call(Services.load(AgentConfig()), turns=load_script(REPO / "examples" / "balance.yaml"),
                         out_dir=out, fast=True)
    assert call.result.outcome == "completed"
    return out


@pytest.fixture
def console(tmp_path, real_call):
    store = Store(store_config(tmp_path))
    Users(store).add("sam", "supervisor", PASSWORD)
    call_id = import_call_dir(store, real_call, caller="+15550107788")
    try:
        with serve_console(store) as base:
            yield base, store, call_id
    finally:
        store.close()


@pytest.fixture
def browser(tmp_path):
    with chromium(tmp_path / "chromium-profile", WAIT_S) as driver:
        yield driver


def test_supervisor_finds_plays_and_reads_a_call(console, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    base, store, call_id = console
    wait = WebDriverWait(browser, WAIT_S)
    caller_words = [t["text"] for t in store.get_call(call_id)["turns"] if t["speaker"] == "caller"]
    word = max(" ".join(caller_words).replace(",", " ").replace(".", " ").replace("?", " ").split(), key=len)

    browser.get(base + "/calls")  # logged out: sent to the login page
    wait.until(ec.presence_of_element_located((By.ID, "login-form")))
    assert_accessible(browser)
    browser.find_element(By.ID, "username").send_keys("sam")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login-submit").click()
    wait.until(ec.presence_of_element_located((By.ID, "search-form")))

    search = browser.find_element(By.ID, "search")
    search.send_keys(word)
    browser.find_element(By.ID, "search-submit").click()
    wait.until(lambda d: "q=" in d.current_url)
    links = browser.find_elements(By.CSS_SELECTOR, "a.call-link")
    assert len(links) == 1, f"searching {word!r}"
    assert_accessible(browser)
    links[0].click()
    wait.until(ec.presence_of_element_located((By.ID, "transcript")))
    assert browser.find_element(By.ID, "call-id").text == call_id

    speakers = [li.get_attribute("class").split()[1] for li in browser.find_elements(By.CSS_SELECTOR, "li.turn")]
    assert speakers.count("caller") == 2 and speakers.count("agent") == 3, speakers
    texts = browser.find_element(By.ID, "transcript").text
    assert word in texts and "Welcome to Example Bank" in texts

    plot = browser.find_element(By.ID, "emotion-plot")
    assert plot.is_displayed() and plot.size["width"] > 300
    emotions = store.get_call(call_id)["events"]
    labels = {k for e in emotions if e["type"] == "emotion" for k in e.get("scores", {})}
    assert labels, "the session wrote no per-turn emotion"
    assert len(plot.find_elements(By.CSS_SELECTOR, "polyline.series")) == len(labels)

    wait.until(lambda d: d.find_element(By.ID, "waveform").get_attribute("data-ready") == "1")
    played = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const a = document.getElementById('player');
        a.muted = true;
        a.play().then(() => done(true), (e) => done(String(e)));
    """)
    assert played is True, played
    wait.until(lambda d: d.execute_script("return document.getElementById('player').currentTime") > 0.5)
    assert browser.execute_script("return document.getElementById('player').paused") is False
    assert browser.execute_script("return document.getElementById('player').duration") > 20

    second_caller = browser.find_elements(By.CSS_SELECTOR, "li.turn.caller")[1]
    start = float(second_caller.get_attribute("data-start"))
    second_caller.click()  # click a line: the audio jumps there
    wait.until(lambda d: abs(d.execute_script("return document.getElementById('player').currentTime") - start) < 1.5)
    wait.until(lambda d: "playing" in second_caller.get_attribute("class"))
    assert_accessible(browser)  # with the emotion plot drawn and a line playing

    shot = tmp_path / "call-page.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("IVR_SCREENSHOT_DIR"):
        shutil.copy(shot, Path(os.environ["IVR_SCREENSHOT_DIR"]) / shot.name)
    actions = {(e["user_name"], e["action"]) for e in store.audit_log(call_id=call_id)}
    assert {("sam", "open"), ("sam", "listen")} <= actions
