"""Review at scale and QA as a supervisor and an admin do it, in headless Chromium (Debian's chromium +
chromedriver through Selenium), over synthetic calls written through the store's writer: sorting the call list
by a column and back, a quoted phrase, saving a search and opening it again, the CSV of the filtered list,
an admin's scorecard filled on a call's page, its score and "reviewed" in the list, and a comment."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from tests.browser_support import by, serve_console, wait_until
from tests.test_store_support import add_call, console_store, utc_days_ago

pytestmark = [pytest.mark.slow]

PASSWORD = "a long supervisor password"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("console-review")
    with console_store(tmp, PASSWORD) as store:
        start = utc_days_ago(2)
        said = {"short": ["I lost my card"], "long": ["my card was stolen", "it was lost my card", "thanks"],
                "mid": ["lost my wallet and my card", "yes"], "hours": ["when are you open"]}
        for i, (call_id, texts) in enumerate(said.items()):
            add_call(store, call_id, texts, caller=f"+1 555 010 44{i}{i}", started_at=start + timedelta(hours=i),
                     live=False)
        with serve_console(store) as base:
            yield {"base": base, "store": store}


def wait(driver, condition):
    return wait_until(driver, condition)


def log_in(browser, base, name, path="/calls"):
    from urllib.parse import quote

    browser.delete_all_cookies()
    browser.get(base + "/login?next=" + quote(path))
    browser.find_element(by("ID"), "username").send_keys(name)
    browser.find_element(by("ID"), "password").send_keys(PASSWORD)
    browser.find_element(by("ID"), "login-submit").click()
    wait(browser, lambda d: "/login" not in d.current_url)


def listed(browser):
    return [a.get_attribute("href").rsplit("/", 1)[1] for a in browser.find_elements(by("CSS_SELECTOR"), "a.call-link")]


def cell(browser, call_id, css):
    row = browser.find_element(by("XPATH"), f"//tr[td/a[@href='/calls/{call_id}']]")
    return row.find_element(by("CSS_SELECTOR"), css).text


def test_sort_phrase_saved_search_and_csv(site, browser):
    base = site["base"]
    log_in(browser, base, "sam")
    assert listed(browser) == ["hours", "mid", "long", "short"]  # newest first
    browser.find_element(by("ID"), "sort-duration").click()
    wait(browser, lambda d: "sort=duration" in d.current_url)
    head = browser.find_element(by("XPATH"), "//th[a[@id='sort-duration']]")
    assert head.get_attribute("aria-sort") == "descending" and listed(browser) == ["long", "mid", "short", "hours"]
    browser.find_element(by("ID"), "sort-duration").click()  # again: reversed
    wait(browser, lambda d: "order=asc" in d.current_url)
    head = browser.find_element(by("XPATH"), "//th[a[@id='sort-duration']]")
    assert head.get_attribute("aria-sort") == "ascending" and listed(browser) == ["hours", "short", "mid", "long"]
    assert browser.find_element(by("XPATH"), "//th[a[@id='sort-started']]").get_attribute("aria-sort") is None

    search = browser.find_element(by("ID"), "search")
    search.send_keys('"lost my card"')
    browser.find_element(by("ID"), "search-submit").click()
    wait(browser, lambda d: "q=%22lost" in d.current_url)
    assert "sort=duration" in browser.current_url and "order=asc" in browser.current_url  # the sort is kept
    assert listed(browser) == ["short", "long"]  # the words in that order; "mid" has them apart

    browser.find_element(by("ID"), "save-name").send_keys("lost cards")
    browser.find_element(by("ID"), "save-search").click()
    wait(browser, lambda d: d.find_elements(by("LINK_TEXT"), "lost cards"))
    browser.get(base + "/calls")
    assert listed(browser) == ["hours", "mid", "long", "short"]
    browser.find_element(by("LINK_TEXT"), "lost cards").click()
    wait(browser, lambda d: "q=%22lost" in d.current_url)
    assert listed(browser) == ["short", "long"]
    assert browser.find_element(by("ID"), "search").get_attribute("value") == '"lost my card"'

    link = browser.find_element(by("ID"), "export-csv")
    assert link.text == "Download CSV (2 calls)"
    text = browser.execute_async_script(
        "const done = arguments[1]; fetch(arguments[0]).then(r => r.text()).then(done);", link.get_attribute("href"))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["call_id", "started_utc", "channel"]
    assert [r[0] for r in rows[1:]] == ["short", "long"]  # every matching call, in the list's order
    assert [r[4] for r in rows[1:]] == ["…00", "…11"]  # the caller as the page shows it, no more


def test_a_scorecard_filled_on_a_call_gives_its_score_and_reviewed_status(site, browser):
    from selenium.webdriver.support.ui import Select

    base = site["base"]
    log_in(browser, base, "ada", "/admin/scorecards")
    browser.find_element(by("ID"), "scorecard-name").send_keys("Card calls")
    browser.find_element(by("ID"), "q0-text").send_keys("Did the agent block the card?")
    browser.find_element(by("ID"), "q0-weight").clear()
    browser.find_element(by("ID"), "q0-weight").send_keys("3")
    browser.find_element(by("ID"), "q1-text").send_keys("How clear was the agent?")
    Select(browser.find_element(by("ID"), "q1-kind")).select_by_visible_text("1 to 5")
    browser.find_element(by("ID"), "scorecard-create").click()
    wait(browser, lambda d: d.find_elements(by("ID"), "message"))
    assert browser.find_element(by("ID"), "message").text == "created Card calls"

    log_in(browser, base, "sam", "/calls/long")
    assert browser.find_element(by("ID"), "review-status").text == "Not reviewed yet."
    form = browser.find_element(by("CSS_SELECTOR"), "form.scorecard")
    form.find_element(by("XPATH"), ".//input[@name='q0' and @value='yes']").click()
    form.find_element(by("XPATH"), ".//input[@name='q1' and @value='3']").click()
    form.find_element(by("CSS_SELECTOR"), "button[type=submit]").click()
    wait(browser, lambda d: d.find_elements(by("ID"), "call-score"))
    assert browser.find_element(by("ID"), "call-score").text == "87.5"  # (3 x yes + 1 x 3 of 5) / 4
    assert browser.find_element(by("ID"), "review-status").text.startswith("Reviewed by sam at ")

    browser.find_element(by("ID"), "comment-text").send_keys("Good save <b>despite</b> the noise")
    browser.find_element(by("ID"), "comment-submit").click()
    wait(browser, lambda d: d.find_elements(by("CSS_SELECTOR"), "#comments .comment"))
    comment = browser.find_element(by("CSS_SELECTOR"), "#comments .comment")
    assert comment.find_element(by("CSS_SELECTOR"), ".comment-text").text == "Good save <b>despite</b> the noise"
    assert comment.find_element(by("CSS_SELECTOR"), ".comment-meta").text.startswith("sam, ")

    browser.get(base + "/calls")
    assert cell(browser, "long", "td.score") == "87.5" and cell(browser, "long", "td.reviewed").startswith("by sam, ")
    assert cell(browser, "mid", "td.reviewed") == "no"
    Select(browser.find_element(by("ID"), "reviewed")).select_by_visible_text("reviewed")
    browser.find_element(by("ID"), "search-submit").click()
    wait(browser, lambda d: "reviewed=yes" in d.current_url)
    assert listed(browser) == ["long"]
