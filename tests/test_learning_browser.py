"""The learning loop in real headless Chromium: a supervisor labels a caller turn on a call's page, the label is
in the training export; an admin accepts a candidate model version and rolls back to the shipped model."""

from __future__ import annotations

import pytest

from ivr.learn.versions import SHIPPED, ModelVersions
from ivr.store.labels import training_rows
from tests.browser_support import by, chromium, serve_console, wait_until
from tests.test_store_support import add_call, console_store

pytestmark = [pytest.mark.slow]

PASSWORD = "a long supervisor password"
WAIT_S = 20


def wait(driver, condition):
    # accept and rollback redraw the page: an element read a moment ago may be gone, so it is read again
    return wait_until(driver, condition, stale_ok=True)


def log_in(browser, base, name, path):
    from urllib.parse import quote

    browser.delete_all_cookies()
    browser.get(base + "/login?next=" + quote(path))
    wait(browser, lambda d: d.find_elements(by("ID"), "login-form"))
    browser.find_element(by("ID"), "username").send_keys(name)
    browser.find_element(by("ID"), "password").send_keys(PASSWORD)
    browser.find_element(by("ID"), "login-submit").click()
    wait(browser, lambda d: "/login" not in d.current_url)


def test_a_label_reaches_training_and_an_admin_accepts_and_rolls_back(tmp_path):
    from selenium.webdriver.support.ui import Select

    with console_store(tmp_path, PASSWORD) as store:
        add_call(store, "afford", ["hello", "can I afford a new laptop"], intents=["", ""])
        versions = ModelVersions(tmp_path / "models")
        versions.publish(versions.workdir(), {"status": "candidate", "created_by": "cli:test", "rows": 3249,
                                              "labels": {"used": 15}, "figures": {"test.csv": {
                                                  "current": {"n": 192, "right": 0.969},
                                                  "candidate": {"n": 192, "right": 0.974}}}})
        with serve_console(store, models_dir=versions.root) as base, \
                chromium(tmp_path / "profile", WAIT_S) as browser:
            log_in(browser, base, "sam", "/calls/afford")
            turn = Select(browser.find_element(by("ID"), "label-turn"))
            turn.select_by_index(1)  # the second caller turn: its words go to the transcript field
            text = browser.find_element(by("ID"), "label-transcript")
            assert text.get_attribute("value") == "can I afford a new laptop"
            text.clear()
            text.send_keys("can I afford a new laptop today")
            Select(browser.find_element(by("ID"), "label-target")).select_by_value("balance")
            browser.find_element(by("ID"), "label-save").click()
            wait(browser, lambda d: d.find_elements(by("ID"), "label-message"))
            assert "transcript, intent" in browser.find_element(by("ID"), "label-message").text
            rows = [r.text for r in browser.find_elements(by("CSS_SELECTOR"), "#label-table tbody tr")]
            assert len(rows) == 2 and all("sam" in r for r in rows)
            assert [(r.text, r.target, r.user_name) for r in training_rows(store)] == [
                ("can I afford a new laptop today", "balance", "sam")]

            log_in(browser, base, "ada", "/admin/models")
            assert browser.find_element(by("ID"), "current-version").text == SHIPPED
            assert "0.969 → 0.974" in browser.find_element(by("ID"), "version-v1").text
            browser.find_element(by("CSS_SELECTOR"), "#version-v1 button.accept").click()
            wait(browser, lambda d: d.find_element(by("ID"), "current-version").text == "v1")
            assert versions.current_name() == "v1"
            browser.find_element(by("CSS_SELECTOR"), f"#version-{SHIPPED} button.rollback").click()
            wait(browser, lambda d: d.find_element(by("ID"), "current-version").text == SHIPPED)
            assert "rolled back" in browser.find_element(by("ID"), "message").text
            history = browser.find_element(by("ID"), "model-history").text
            assert "accept: shipped → v1" in history and "rollback: v1 → shipped" in history
            assert versions.current_name() == SHIPPED
