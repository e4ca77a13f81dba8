"""The KPI dashboard as a supervisor sees it in headless Chromium, over calls written through the store's
writer: the figures match the calls, the plots are images with a text alternative and values written on
them, the text has AA contrast, and a date filter changes the figures."""

from __future__ import annotations

import pytest

from tests.browser_support import BROWSER_WAIT_S, by, chromium, serve_console, wait_until
from tests.console_client import PASSWORD
from tests.test_console_browser_fixes import CONTRAST_JS
from tests.test_console_dashboard import write_first_calls
from tests.test_store_support import console_store

pytestmark = [pytest.mark.slow]

def wait(driver, condition):
    return wait_until(driver, condition)


def text_of(browser, element_id):
    return browser.find_element(by("ID"), element_id).text


def test_the_dashboard_shows_the_calls_figures_and_filters_by_date(tmp_path):
    with console_store(tmp_path, PASSWORD) as store:
        write_first_calls(store)
        with serve_console(store) as base, chromium(tmp_path / "profile", BROWSER_WAIT_S) as browser:
            browser.get(base + "/login?next=/dashboard")
            browser.find_element(by("ID"), "username").send_keys("sam")
            browser.find_element(by("ID"), "password").send_keys(PASSWORD)
            browser.find_element(by("ID"), "login-submit").click()
            wait(browser, lambda d: d.current_url == base + "/dashboard")
            assert "Dashboard" in [a.text for a in browser.find_elements(by("CSS_SELECTOR"), "header nav a")]
            assert (text_of(browser, "kpi-calls"), text_of(browser, "kpi-containment"),
                    text_of(browser, "kpi-abandon"), text_of(browser, "kpi-no-input")) == ("3", "67%", "33%", "33%")
            assert text_of(browser, "kpi-latency") == "1300 ms"
            hourly = browser.find_element(by("ID"), "chart-hourly")
            assert hourly.get_attribute("role") == "img" and "table below" in hourly.get_attribute("aria-label")
            assert len(hourly.find_elements(by("CSS_SELECTOR"), "rect.bar")) == 24
            reasons = browser.find_element(by("ID"), "chart-reasons")
            assert "caller asked for an agent" in reasons.text and "33%" in reasons.text  # said on the bar
            assert len(browser.find_elements(by("CSS_SELECTOR"), "#chart-containment rect.point")) == 2  # two days
            rows = browser.find_elements(by("CSS_SELECTOR"), "#table-phrases tbody tr")
            assert [r.text for r in rows] == ["do you sell insurance 1"]
            ratios = browser.execute_script(CONTRAST_JS + """
                const out = {};
                for (const sel of ['.kpis dt', '.kpis dd', '#chart-hourly text', '.hint', 'summary']) {
                  const el = document.querySelector(sel);
                  const color = el instanceof SVGElement ? getComputedStyle(el).fill : getComputedStyle(el).color;
                  out[sel] = ratio(color, bg(el));
                }
                return out;
            """)
            assert all(value >= 4.5 for value in ratios.values()), ratios

            browser.execute_script("document.getElementById('date-from').value = '2026-03-02';"
                                   "document.getElementById('date-to').value = '2026-03-02';")
            browser.find_element(by("ID"), "dashboard-submit").click()
            wait(browser, lambda d: "date_from=2026-03-02" in d.current_url)
            assert (text_of(browser, "kpi-calls"), text_of(browser, "kpi-containment"),
                    text_of(browser, "kpi-abandon")) == ("2", "50%", "0%")
            assert text_of(browser, "table-phrases").endswith("None.")
