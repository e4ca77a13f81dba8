"""Issue 15's console defects as a supervisor and an admin see them, in real headless Chromium (Debian's
chromium + chromedriver through Selenium), over synthetic calls written through the store's writer (no
models needed): the login redirect, error pages with navigation, caller-only search, the call's topic as
its intent, paging with a total, a mono import's page, the live board's UTC times and ticking clock, a
live call's page following it, contrast, keyboard and screen-reader access, and user management; axe-core finds
no serious or critical violation on any page visited (login, calls, call pages, live, users, audit, webhooks)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from ivr import webhooks
from ivr.store import StoreWriter, outbox
from tests.browser_support import assert_accessible, by, serve_console, wait_until
from tests.fakes import CannedRecognizer, HalvesDiarizer
from tests.import_support import mono_wav
from tests.test_store_support import add_call, call_events, console_store, stereo_wav

pytestmark = [pytest.mark.slow]

PASSWORD = "a long supervisor password"
UTC_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")

CONTRAST_JS = """
function lum(c) {
  const v = c.match(/[\\d.]+/g).slice(0, 3).map(Number).map(x => x / 255)
    .map(x => x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4));
  return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2];
}
function bg(el) {
  for (; el; el = el.parentElement) {
    const c = getComputedStyle(el).backgroundColor;
    const a = c.match(/[\\d.]+/g);
    if (a && (a.length < 4 || Number(a[3]) > 0)) { return c; }
  }
  return 'rgb(255, 255, 255)';
}
function ratio(a, b) { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); }
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):

    from ivr.importer import import_recording

    tmp = tmp_path_factory.mktemp("console-fixes")
    with console_store(tmp, PASSWORD) as store:
        add_call(store, "bal", ["what is my balance", "no that's all"], intents=["balance", "no"],
                 recording=stereo_wav(tmp / "bal.wav"), caller="+1 555 010 4477",
                 emotions=[{"neutral": 0.8, "angry": 0.2}, {"neutral": 0.4, "angry": 0.6}])
        add_call(store, "card", ["I lost my card"], intents=["lost_card"], outcome="transferred",
                 reason="caller asked for an agent")
        for i in range(6):
            add_call(store, f"more{i}", ["opening hours please"], intents=["hours"])
        mono_id, _how, _n = import_recording(store, mono_wav(tmp / "desk-20260304-050607.wav"), CannedRecognizer(),
                                             HalvesDiarizer())
        live = StoreWriter(store, background=False)
        live.apply([(datetime.now(UTC), e) for e in call_events("live1", ["hello"], ended=False)])
        dead_letter(store)
        with serve_console(store) as base:
            yield {"base": base, "store": store, "mono": mono_id, "live": live}


def wait(driver, condition):
    return wait_until(driver, condition)


def log_in(browser, base, name, path="/calls", via_redirect=False):
    """Log in and land on `path`; `via_redirect`: by asking for `path` logged out (sent to the login page)."""
    from urllib.parse import quote

    browser.delete_all_cookies()
    browser.get(base + (path if via_redirect else "/login?next=" + quote(path)))
    wait(browser, lambda d: d.find_elements(by("ID"), "login-form"))
    assert "/login?next=" in browser.current_url
    browser.find_element(by("ID"), "username").send_keys(name)
    browser.find_element(by("ID"), "password").send_keys(PASSWORD)
    browser.find_element(by("ID"), "login-submit").click()
    wait(browser, lambda d: "/login" not in d.current_url)
    assert browser.current_url == base + path


def column(browser, title):
    heads = [th.text for th in browser.find_elements(by("CSS_SELECTOR"), "#call-list thead th")]
    i = heads.index(title)
    return {row.find_element(by("CSS_SELECTOR"), "a.call-link").get_attribute("href").rsplit("/", 1)[1]:
            row.find_elements(by("TAG_NAME"), "td")[i].text
            for row in browser.find_elements(by("CSS_SELECTOR"), "#call-list tr.call-row")}


def test_a_supervisor_is_sent_to_login_and_error_pages_keep_the_navigation(site, browser):
    log_in(browser, site["base"], "sam", "/calls?q=balance", via_redirect=True)
    browser.get(site["base"] + "/calls/no-such-call")
    assert "404" in browser.find_element(by("TAG_NAME"), "h1").text
    assert_accessible(browser)
    nav = [a.text for a in browser.find_elements(by("CSS_SELECTOR"), "header nav a")]
    assert nav == ["Calls", "Live", "Dashboard", "Call the agent"]  # a supervisor: no admin pages
    assert browser.find_element(by("CSS_SELECTOR"), "form.logout button").text == "Log out"


def test_the_call_list_searches_the_caller_shows_topics_escalations_and_pages(site, browser):
    base = site["base"]
    log_in(browser, base, "sam")
    assert browser.find_element(by("ID"), "calls-range").text == "Showing 1–10 of 10"
    intents = column(browser, "Intent")
    assert intents["bal"] == "balance" and intents["card"] == "lost_card"  # not the last answer ('no')
    assert "escalated" in column(browser, "Outcome")["card"]  # said in words, not by a red border only
    browser.find_element(by("ID"), "search").send_keys("welcome")  # the agent's greeting, in every call
    browser.find_element(by("ID"), "search-submit").click()
    wait(browser, lambda d: "q=welcome" in d.current_url)
    assert browser.find_elements(by("ID"), "no-calls")  # said by the caller (the default): none
    browser.get(base + "/calls?q=balance")
    assert sorted(column(browser, "Intent")) == ["bal"]
    browser.get(base + "/calls?limit=4")
    assert browser.find_element(by("ID"), "calls-range").text == "Showing 1–4 of 10"
    browser.find_element(by("ID"), "calls-next").click()
    wait(browser, lambda d: "offset=4" in d.current_url)
    assert browser.find_element(by("ID"), "calls-range").text == "Showing 5–8 of 10"
    assert "limit=4" in browser.current_url
    assert_accessible(browser)
    for typed in ("5550104477", "(555) 010-4477", "4477"):
        browser.get(base + "/calls?caller=" + typed.replace("(", "%28").replace(")", "%29").replace(" ", "+"))
        assert sorted(column(browser, "Intent")) == ["bal"], typed


def test_the_call_page_is_readable_by_keyboard_and_contrast(site, browser):
    from selenium.webdriver.common.keys import Keys

    base = site["base"]
    log_in(browser, base, "sam", "/calls/bal")
    body = browser.find_element(by("TAG_NAME"), "body")
    body.send_keys(Keys.TAB)
    skip = browser.switch_to.active_element
    assert skip.text == "Skip to content" and skip.get_attribute("href").endswith("#main")
    ratios = browser.execute_script(CONTRAST_JS + """
        const out = {};
        for (const sel of ['.hint', '.turn .time', '.facts dt', '.empty', '.tag']) {
          const el = document.querySelector(sel);
          if (el) { out[sel] = ratio(getComputedStyle(el).color, bg(el)); }
        }
        const line = document.querySelector('.turn.caller');
        line.classList.add('playing');
        const style = getComputedStyle(line);
        out.playing = ratio(style.outlineColor, 'rgb(255, 255, 255)');
        out.playingMarker = getComputedStyle(line.querySelector('.time'), '::before').content;
        line.classList.remove('playing');
        return out;
    """)
    for name, value in ratios.items():
        if name == "playing":
            assert value >= 3.0, ratios  # the highlight is seen against the page (WCAG 1.4.11)
        elif name == "playingMarker":
            assert "▶" in value  # and said without colour
        else:
            assert value >= 4.5, (name, ratios)
    labels = [t.text for t in browser.find_elements(by("CSS_SELECTOR"), "#emotion-plot text.series-label")]
    assert sorted(labels) == ["angry", "neutral"]  # each series named where it is drawn

    wave = browser.find_element(by("ID"), "waveform")
    wait(browser, lambda d: wave.get_attribute("data-ready") == "1")
    browser.execute_script("document.getElementById('player').muted = true;")
    assert wave.get_attribute("tabindex") == "0" and wave.get_attribute("role") == "slider"
    wave.send_keys(Keys.HOME)
    wait(browser, lambda d: d.execute_script("return document.getElementById('player').currentTime") < 1.0)
    wave.send_keys(Keys.ARROW_RIGHT)  # 5 s on: the end of this 3 s recording
    wait(browser, lambda d: d.execute_script("return document.getElementById('player').currentTime") >= 2.9)
    assert browser.find_element(by("ID"), "waveform-hint").text.startswith("Caller above the line")
    assert_accessible(browser)


def test_a_mono_imports_page_says_what_it_is(site, browser):
    log_in(browser, site["base"], "sam", "/calls/" + site["mono"])
    hint = browser.find_element(by("ID"), "waveform-hint").text
    assert hint.startswith("One channel (a mono recording)") and "halves diarizer" in hint
    assert "Caller above" not in hint
    assert browser.find_element(by("ID"), "started").text.startswith("2026-03-04 05:06:07 UTC")
    # imported without the emotion and intent models (ivr import loads them unless told not to): said so
    assert "imported without emotion analysis" in browser.find_element(by("ID"), "emotion-empty").text
    assert "before emotion recognition" not in browser.page_source
    assert browser.find_element(by("ID"), "intent").text == "not read: imported without intent analysis"
    wait(browser, lambda d: d.find_element(by("ID"), "waveform").get_attribute("data-ready") == "1")
    assert_accessible(browser)


def test_the_live_board_ticks_in_utc_and_a_live_calls_page_follows_it(site, browser):
    base = site["base"]
    log_in(browser, base, "sam", "/live")
    status = browser.find_element(by("ID"), "live-status")
    assert status.get_attribute("aria-live") == "polite"
    wait(browser, lambda d: "checked" in status.text)
    first = status.text
    wait(browser, lambda d: status.text != first)  # idle, and still the clock moves
    assert re.search(r"checked \d\d:\d\d:\d\d UTC", status.text), status.text
    times = [td.text for td in browser.find_elements(by("CSS_SELECTOR"), "#live td.time")]
    assert times and all(UTC_TIME.match(t) for t in times), times
    assert_accessible(browser)

    browser.get(base + "/calls/live1")
    note = browser.find_element(by("ID"), "live-note")
    assert note.get_attribute("aria-live") == "polite"
    before = len(browser.find_elements(by("CSS_SELECTOR"), "li.turn"))
    writer = site["live"]
    now = datetime.now(UTC)
    writer.apply([(now, {"t_ms": 9000.0, "type": "speech_stopped", "onset_ms": 8000.0, "end_ms": 8900.0}),
                  (now, {"t_ms": 9100.0, "type": "transcript", "text": "I want to talk to a person",
                         "confidence": 0.9})])
    wait(browser, lambda d: len(d.find_elements(by("CSS_SELECTOR"), "li.turn")) == before + 1)
    assert "talk to a person" in browser.find_element(by("ID"), "transcript").text
    assert_accessible(browser)
    writer.apply([(now, {"t_ms": 9500.0, "type": "call_ended", "outcome": "transferred", "reason": "asked",
                         "target": "", "node": "goodbye"})])
    wait(browser, lambda d: d.find_element(by("ID"), "outcome").text == "transferred")
    assert not browser.find_elements(by("ID"), "live-note")


def test_an_admin_creates_supervisors_by_default_confirms_deletes_and_is_audited(site, browser):
    from selenium.webdriver.support.ui import Select

    base, store = site["base"], site["store"]
    log_in(browser, base, "ada", "/admin/users")
    role = Select(browser.find_element(by("CSS_SELECTOR"), "form.new-user select[name=role]"))
    assert role.first_selected_option.text == "supervisor"
    unlabelled = browser.execute_script("""
        return Array.from(document.querySelectorAll('input[type=password], select'))
          .filter(el => !el.labels || !el.labels.length).map(el => el.outerHTML);""")
    assert unlabelled == []
    assert_accessible(browser)
    form = browser.find_element(by("CSS_SELECTOR"), "form.new-user")
    form.find_element(by("NAME"), "username").send_keys("tia")
    form.find_element(by("NAME"), "password").send_keys("another long password")
    form.find_element(by("CSS_SELECTOR"), "button").click()
    wait(browser, lambda d: "created tia" in d.find_element(by("ID"), "message").text)
    rows = {r.find_elements(by("TAG_NAME"), "td")[0].text: r for r in browser.find_elements(by("CSS_SELECTOR"),
                                                                                              "table.users tbody tr")}
    assert rows["tia"].find_elements(by("TAG_NAME"), "td")[1].text == "supervisor"
    rows["tia"].find_element(by("CSS_SELECTOR"), "a.delete").click()
    wait(browser, lambda d: d.find_elements(by("ID"), "confirm-delete"))
    assert "Delete user tia?" in browser.find_element(by("TAG_NAME"), "h1").text
    assert "tia" in [u["name"] for u in store_users(store)]  # nothing deleted before confirming
    assert_accessible(browser)
    browser.find_element(by("ID"), "confirm-delete-button").click()
    wait(browser, lambda d: "deleted tia" in d.find_element(by("ID"), "message").text)
    for page in ("/admin/audit", "/admin/webhooks"):
        browser.get(base + page)
        assert browser.find_elements(by("CSS_SELECTOR"), "main table tbody tr"), page
        assert_accessible(browser)
    browser.find_element(by("CSS_SELECTOR"), "form.logout button").click()
    wait(browser, lambda d: d.find_elements(by("ID"), "login-form"))
    assert_accessible(browser)
    assert ("ada", "logout") in [(e["user_name"], e["action"]) for e in store.audit_log(limit=5)]


def store_users(store):
    from ivr.console.auth import Users

    return Users(store).list()


def dead_letter(store):
    """One webhook event that failed its only try: the Webhooks page lists it with its Retry button."""
    with store.engine.begin() as conn:
        outbox.enqueue(conn, "call.escalated", "card", {})
    once = webhooks.RetryPolicy(max_attempts=1)
    for item in outbox.claim(store, "w", 30.0, limit=1):
        outbox.record(store, item, "w", webhooks.Result(None, "URLError: refused"), once)
