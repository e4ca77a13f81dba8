"""Live supervision as a supervisor sees it in headless Chromium: a call in progress (written through the
store's writer as a session writes it, its audio spooled by a LiveSpool ticking in real time, as `ivr serve`
does) is flagged on the live board when its caller becomes upset, in words and in the aria-live
announcement; each call's elapsed time ticks; and Listen, on the board and on the call's page, plays the
call's audio: the page's WebSocket receives PCM and schedules it in an AudioContext."""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime

import numpy as np
import pytest

from ivr.store import StoreWriter
from ivr.store.liveaudio import LiveSpool
from telephony.audio.frame import Frame
from tests.browser_support import by, serve_console, wait_until
from tests.test_store_support import call_events, console_store

pytestmark = [pytest.mark.slow]

PASSWORD = "a long supervisor password"
RATE_HZ = 8000
ELAPSED = re.compile(r"^\d+:\d\d$")


class TickingCall:
    """A call's audio thread: every 20 ms, a caller frame (a 440 Hz tone) and a silent agent frame into the
    call's live spool, until stopped."""

    def __init__(self, spool: LiveSpool) -> None:
        self.spool = spool
        self.halt = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        n = RATE_HZ // 50
        t = 0
        next_at = time.monotonic()
        while not self.halt.is_set():
            tone = (8000 * np.sin(2 * np.pi * 440 * (t + np.arange(n)) / RATE_HZ)).astype("<i2")
            self.spool(Frame(tone.tobytes(), RATE_HZ), Frame(bytes(2 * n), RATE_HZ))
            t += n
            next_at += 0.02
            time.sleep(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self.halt.set()
        self.thread.join(5)
        self.spool.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("console-live")
    with console_store(tmp, PASSWORD) as store:
        now = datetime.now(UTC)
        calls = {}
        for call_id in ("upset1", "calm1"):
            calls[call_id] = StoreWriter(store, background=False)
            calls[call_id].apply([(now, e) for e in call_events(call_id, ["hello"], ended=False)])
        ticking = TickingCall(LiveSpool(store.config.data_dir, store.config.key(), "upset1", RATE_HZ))
        try:
            with serve_console(store) as base:
                yield {"base": base, "store": store, "calls": calls}
        finally:
            ticking.stop()


def wait(driver, condition):
    """The live table is redrawn on each update: a row found a moment ago may be gone."""
    return wait_until(driver, condition, stale_ok=True)


def log_in(browser, base, path):
    from urllib.parse import quote

    browser.delete_all_cookies()
    browser.get(base + "/login?next=" + quote(path))
    wait(browser, lambda d: d.find_elements(by("ID"), "login-form"))
    browser.find_element(by("ID"), "username").send_keys("sam")
    browser.find_element(by("ID"), "password").send_keys(PASSWORD)
    browser.find_element(by("ID"), "login-submit").click()
    wait(browser, lambda d: d.current_url == base + path)


def row(browser, call_id):
    return browser.find_element(by("CSS_SELECTOR"), f'#live tbody tr[data-call="{call_id}"]')


def row_now(browser, call_id):
    """A live row's class, text and elapsed time, read at one moment (the table may be redrawn between reads)."""
    return browser.execute_script("""
        const row = document.querySelector('#live tbody tr[data-call="' + arguments[0] + '"]');
        return row && {cls: row.className, text: row.innerText, elapsed: row.querySelector('td.elapsed').textContent,
                       listen: !!row.querySelector('button.listen')};""", call_id)


def figures(browser):
    status = browser.find_element(by("ID"), "listen-status")
    return {k: int(status.get_attribute("data-" + k)) for k in ("bytes", "samples", "peak")}


def listen_and_hear(browser, button):
    """Click Listen (`button()` finds it); wait until the page has received and scheduled a second of audio;
    the figures."""
    button().click()
    wait(browser, lambda d: figures(d)["samples"] >= RATE_HZ)
    wait(browser, lambda d: button().get_attribute("aria-pressed") == "true" and button().text == "Stop listening")
    heard = figures(browser)
    assert heard["bytes"] >= 2 * RATE_HZ and heard["peak"] > 4000  # the tone, not silence
    assert "Listening to call upset1" in browser.find_element(by("ID"), "listen-status").text
    return heard


def test_an_upset_caller_is_flagged_as_it_happens_and_elapsed_times_tick(site, browser):
    log_in(browser, site["base"], "/live")
    wait(browser, lambda d: row_now(d, "calm1"))
    assert "upset" not in row_now(browser, "upset1")["cls"]
    first = row_now(browser, "upset1")["elapsed"]
    assert ELAPSED.match(first), first
    wait(browser, lambda d: row_now(d, "upset1")["elapsed"] != first)

    now = datetime.now(UTC)  # the caller's next turn is angry: the writer stores it, the board flags it
    site["calls"]["upset1"].apply([(now, {"t_ms": 9000.0, "type": "emotion", "label": "angry", "negativity": 0.85,
                                          "scores": {"angry": 0.85, "neutral": 0.15}})])
    wait(browser, lambda d: "upset" in row_now(d, "upset1")["cls"])
    flagged = row_now(browser, "upset1")["text"]
    assert "⚠ Upset" in flagged and "angry (0.85)" in flagged  # said in words, not by colour alone
    assert "Upset" not in row_now(browser, "calm1")["text"]
    announce = browser.find_element(by("ID"), "live-announce")
    assert announce.get_attribute("aria-live") == "polite"
    wait(browser, lambda d: "Caller upset on call upset1" in announce.get_attribute("textContent"))
    browser.get(site["base"] + "/calls/upset1")  # the call's own page says so too
    assert browser.find_element(by("ID"), "upset-flag").is_displayed()
    browser.get(site["base"] + "/calls/calm1")
    flag = browser.find_element(by("ID"), "upset-flag")
    assert not flag.is_displayed()
    site["calls"]["calm1"].apply([(datetime.now(UTC), {"t_ms": 9000.0, "type": "emotion", "label": "sad",
                                                       "negativity": 0.7, "scores": {"sad": 0.7}})])
    wait(browser, lambda d: flag.is_displayed())  # the open page of a live call follows it
    assert "The caller is upset." in browser.find_element(by("ID"), "live-note").text


def test_listen_plays_the_live_calls_audio_from_the_board_and_the_call_page(site, browser):
    base = site["base"]
    log_in(browser, base, "/live")
    wait(browser, lambda d: d.find_elements(by("CSS_SELECTOR"), '#live button.listen[data-call="upset1"]'))
    assert not row_now(browser, "calm1")["listen"]  # no audio spooled
    listen_and_hear(browser, lambda: row(browser, "upset1").find_element(by("CSS_SELECTOR"), "button.listen"))
    assert browser.execute_script("return window.ivrListening()") == "upset1"
    before = figures(browser)
    browser.execute_script("const end = Date.now() + 3000; while (Date.now() < end) {}")  # a stalled page
    wait(browser, lambda d: int(d.find_element(by("ID"), "listen-status").get_attribute("data-dropped")) > 0)
    wait(browser, lambda d: figures(d)["samples"] > before["samples"] + 3 * RATE_HZ)  # the burst, then on live
    ahead = browser.execute_script("return window.ivrListenAhead()")
    assert ahead is not None and ahead <= 1.2, ahead  # what it plays is never more than about a second late
    row(browser, "upset1").find_element(by("CSS_SELECTOR"), "button.listen").click()
    wait(browser, lambda d: d.execute_script("return window.ivrListening()") is None)
    assert "Stopped listening" in browser.find_element(by("ID"), "listen-status").text

    browser.get(base + "/calls/upset1")
    listen_and_hear(browser, lambda: browser.find_element(by("ID"), "listen"))
    assert site["store"].audit_log(limit=1, call_id="upset1")[0]["action"] == "listen-live"
