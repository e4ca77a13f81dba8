"""Helpers for the console's browser tests (no tests here): the console served on a free port, Debian's
headless Chromium driven through Selenium, and axe-core's accessibility check of the page it shows."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required", "--mute-audio",
                  "--window-size=1280,1600")
REPO = Path(__file__).resolve().parents[1]
AXE_JS = Path(os.environ.get("IVR_AXE_JS") or REPO / ".cache" / "node" / "node_modules" / "axe-core" / "axe.min.js")
"""axe-core's browser build: scripts/setup.sh installs it with npm (IVR_AXE_JS: another copy)."""
BLOCKING_IMPACTS = ("serious", "critical")
AXE_RUN_JS = """
const done = arguments[arguments.length - 1];
window.axe.run(document, {resultTypes: ['violations']}).then(
  r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                     nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary)}))),
  e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve_console(store: Any, **app_options: Any) -> Iterator[str]:
    """The console over `store` (create_app's `app_options`), served by uvicorn on a thread; yields its base URL."""
    import uvicorn

    from ivr.console.app import create_app

    port = free_port()
    app = create_app(store, **app_options)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "console did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextlib.contextmanager
def chromium(profile: Path, script_timeout_s: float, flags: tuple[str, ...] = ()) -> Iterator[Any]:
    """A headless Chromium (skips the test when it is not installed), with more command-line `flags`;
    quits when done."""
    if CHROMIUM is None or not os.path.exists(CHROMEDRIVER):
        pytest.skip("Chromium not installed: apt-get install chromium chromium-driver (scripts/setup.sh does)")
    if not AXE_JS.is_file():
        pytest.skip(f"axe-core not installed at {AXE_JS}: scripts/setup.sh installs it with npm")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, *flags, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        driver.set_page_load_timeout(30)
        driver.set_script_timeout(script_timeout_s)
        yield driver
    finally:
        driver.quit()


BROWSER_WAIT_S = 20


def by(kind: str) -> Any:
    """Selenium's locator strategy named `kind` ("ID", "CSS_SELECTOR", ...)."""
    from selenium.webdriver.common.by import By

    return getattr(By, kind)


def wait_until(driver: Any, condition: Any, timeout_s: float = BROWSER_WAIT_S, stale_ok: bool = False) -> Any:
    """Until `condition(driver)` is truthy (its value); `stale_ok`: a page that redraws while it is read (an
    element found a moment ago may be gone) is read again instead of failing."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    ignored = [StaleElementReferenceException] if stale_ok else None
    return WebDriverWait(driver, timeout_s, ignored_exceptions=ignored).until(condition)


def accessibility_violations(driver: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page `driver` shows (axe injected through WebDriver,
    which the console's Content-Security-Policy does not stop)."""
    if not driver.execute_script("return !!window.axe"):
        driver.execute_script(AXE_JS.read_text(encoding="utf-8"))
    found = driver.execute_async_script(AXE_RUN_JS)
    return [v for v in found if v["impact"] in BLOCKING_IMPACTS]


def assert_accessible(driver: Any) -> None:
    """Fails with each serious or critical axe-core violation (rule, help, the elements) on the current page."""
    violations = accessibility_violations(driver)
    report = "\n".join(f"{v['impact']} {v['id']}: {v['help']}\n    " + "\n    ".join(v["nodes"][:5])
                        for v in violations)
    assert not violations, f"{driver.current_url}: axe-core found\n{report}"
