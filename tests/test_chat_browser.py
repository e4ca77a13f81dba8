"""The chat widget in a real browser (Debian's headless Chromium through Selenium) on the console's demo
page, under the console's Content-Security-Policy: a visitor checks the balance, asks for a statement
with an account number, gets an FAQ answer and is handed to a person; a reload keeps the chat; the
chat is then in the console's call list. axe-core finds no serious or critical violation on the page, with the
chat open and once it has ended."""

from __future__ import annotations

import pytest

from ivr.chat.brain import ChatBrain
from ivr.chat.handoff import webhook_data
from ivr.chat.hub import ChatHub
from ivr.store import CallFilter
from tests.browser_support import assert_accessible, chromium, serve_console
from tests.console_client import PASSWORD
from tests.test_store_support import console_store

WAIT_S = 15.0
pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    handoffs: list = []
    with console_store(tmp_path_factory.mktemp("chat-browser"), PASSWORD) as store:
        hub = ChatHub(store, ChatBrain.load(), on_handoff=handoffs.append)
        with serve_console(store, chat_hub=hub) as base:
            yield {"base": base, "store": store, "handoffs": handoffs}


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("chromium-profile"), WAIT_S) as driver:
        yield driver


def css(browser, selector):
    from selenium.webdriver.common.by import By

    return browser.find_elements(By.CSS_SELECTOR, selector)


def wait(browser, condition):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, WAIT_S).until(condition)


def lines(browser, kind="agent"):
    return [p.text for p in css(browser, f".ivr-chat-log .ivr-chat-msg.{kind}")]


def say(browser, text, expect):
    """Type `text`, send it with Enter, and wait for an agent line containing `expect`; the new agent lines."""
    from selenium.webdriver.common.keys import Keys

    before = len(lines(browser))
    wait(browser, lambda d: css(d, ".ivr-chat-input")[0].is_enabled())
    css(browser, ".ivr-chat-input")[0].send_keys(text, Keys.ENTER)
    wait(browser, lambda d: any(expect in line for line in lines(d)[before:]))
    return lines(browser)[before:]


def test_a_visitor_chats_balance_statement_faq_and_handoff_in_the_widget(site, browser):
    browser.get(site["base"] + "/chat/demo")
    launcher = wait(browser, lambda d: css(d, ".ivr-chat-launcher"))[0]
    assert launcher.text == "Chat with us" and launcher.get_attribute("aria-expanded") == "false"
    launcher.click()
    wait(browser, lambda d: any("How can I help" in line for line in lines(d)))
    assert css(browser, ".ivr-chat-title")[0].text == "Example Bank"
    assert_accessible(browser)
    assert "type" in lines(browser)[-1].lower() and "press" not in " ".join(lines(browser))  # say_text
    assert say(browser, "what's my balance?", "$1,250.40")[0] == "Your current account balance is $1,250.40."
    assert lines(browser, "user") == ["what's my balance?"]
    say(browser, "I need a statement", "six-digit account number")
    assert say(browser, "427198", "I heard")[0] == "I heard 4 2 7 1 9 8. Is that right?"
    say(browser, "yes", "post a statement")
    # a reload keeps the chat: the widget opens again with the whole conversation
    browser.refresh()
    wait(browser, lambda d: any("post a statement" in line for line in lines(d)))
    assert lines(browser, "user") == ["what's my balance?", "I need a statement", "427198", "yes"]
    answer = say(browser, "how much does a transfer cost?", "Domestic transfers")
    assert answer == ["Domestic transfers are free. International transfers cost five dollars each.",
                      "Did that answer your question?"]
    say(browser, "yes", "anything else")
    say(browser, "I want to talk to a person", "connect you to one of our agents")
    wait(browser, lambda d: "The chat has ended." in lines(d, "notice"))
    assert lines(browser, "notice") == ["We have passed your chat to our team.", "The chat has ended."]
    assert not css(browser, ".ivr-chat-input")[0].is_enabled()
    assert css(browser, ".ivr-chat-restart")[0].is_displayed()
    assert_accessible(browser)
    # Escape closes the panel and gives the focus back to the launcher; the launcher opens it again
    from selenium.webdriver.common.keys import Keys

    css(browser, ".ivr-chat-restart")[0].send_keys(Keys.ESCAPE)
    wait(browser, lambda d: css(d, ".ivr-chat-launcher")[0].is_displayed())
    assert browser.switch_to.active_element == css(browser, ".ivr-chat-launcher")[0]
    css(browser, ".ivr-chat-launcher")[0].click()
    wait(browser, lambda d: css(d, ".ivr-chat-restart")[0].is_displayed())
    (handoff,) = site["handoffs"]
    assert handoff.reason == "caller-request" and webhook_data(handoff)["channel"] == "chat"
    # no script or style was refused by the console's Content-Security-Policy
    refused = [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert refused == []
    (stored,) = site["store"].list_calls(CallFilter(source="chat", text="statement"))
    assert stored["outcome"] == "transferred" and stored["id"] == handoff.call_id


def test_a_new_chat_starts_from_the_restart_button(site, browser):
    if not css(browser, ".ivr-chat-restart") or not css(browser, ".ivr-chat-restart")[0].is_displayed():
        pytest.skip("needs the ended chat of the test before")
    css(browser, ".ivr-chat-restart")[0].click()
    wait(browser, lambda d: any("How can I help" in line for line in lines(d)))
    assert lines(browser, "user") == [] and css(browser, ".ivr-chat-input")[0].is_enabled()
    say(browser, "lost card", "card team")
    wait(browser, lambda d: "The chat has ended." in lines(d, "notice"))
