"""The text chat on the call's brain: a whole conversation over the HTTP API (balance, an account number,
an FAQ answer, a handoff with its hook), chats stored and found in the console like calls, typed keys,
emotion from the words, and the no-input and idle timers."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from ivr.chat.brain import ChatBrain
from ivr.chat.hub import ChatLimits
from ivr.console.app import create_app
from ivr.store import CallFilter
from ivr.store.hookevents import WebhookOptions
from ivr.store.outbox import OutboxWorker
from ivr.webhooks import Result
from tests.chat_support import Clock, HttpChat, keyword_brain, make_hub
from tests.console_client import PASSWORD, login
from tests.test_store_support import console_store


@pytest.fixture(scope="module")
def brain():
    return ChatBrain.load()


@pytest.fixture
def store(tmp_path):
    with console_store(tmp_path, PASSWORD) as s:
        yield s


def test_a_chat_checks_the_balance_takes_an_account_number_answers_a_faq_and_hands_over(store, brain):
    hub, handoffs = make_hub(store, brain)
    chat = HttpChat(TestClient(create_app(store, chat_hub=hub)))
    opening = [m["text"] for m in chat.start()]
    # the flow's say_text, not the spoken wording
    assert opening[0].startswith("Welcome to Example Bank. This chat") and "press" not in " ".join(opening)
    assert chat.say("what's my balance?") == ["Your current account balance is $1,250.40.",
                                              "Is there anything else I can help you with?"]
    assert chat.say("I'd like a statement") == ["Sure. Please type your six-digit account number."]
    assert chat.say("427198") == ["I heard 4 2 7 1 9 8. Is that right?"]
    assert chat.say("yes")[0].startswith("Thank you. We will post a statement")
    faq = chat.say("how much does a transfer cost?")
    assert faq == ["Domestic transfers are free. International transfers cost five dollars each.",
                   "Did that answer your question?"]
    assert chat.say("yes, thanks") == ["Good.", "Is there anything else I can help you with?"]
    assert not handoffs
    reply = chat.post({"type": "message", "session": chat.session, "text": "can I talk to a real person",
                       "after": chat.seen}).json()
    assert reply["ended"] is True
    kinds = [(m["type"], m.get("text", m.get("reason"))) for m in reply["messages"]]
    assert kinds[-3:] == [("message", "Please hold while I connect you to one of our agents."),
                          ("handoff", "caller-request"), ("ended", "caller-request")]
    assert reply["messages"][-1]["outcome"] == "transferred"
    # the one hook point: what a webhook would carry, and no user text in it
    (handoff,) = handoffs
    data = handoff.webhook_data()
    assert data["channel"] == "chat" and data["reason"] == "caller-request" and data["intent"] == "agent"
    assert data["chat_id"] == reply["chat"] and "statement_account" in data["path"]
    assert "427198" not in str(data) and "real person" not in str(data)
    # an ended chat takes no more messages, and says so
    late = chat.post({"type": "message", "session": chat.session, "text": "hello?"})
    assert late.status_code == 409 and late.json()["code"] == "ended"


def test_chats_are_listed_searchable_and_readable_in_the_console(store, brain):
    hub, _ = make_hub(store, brain)
    app = create_app(store, chat_hub=hub)
    chat = HttpChat(TestClient(app))
    chat.start()
    chat.say("this is useless, I lost my card and I am furious")
    client, _ = login(app, "sam")
    listed = client.get("/api/calls", params={"source": "chat"}).json()
    assert listed["total"] == 1
    row = listed["calls"][0]
    assert row["source"] == "chat" and row["outcome"] == "transferred" and row["reason"] == "lost-card"
    assert row["intent"] == "lost_card" and row["emotion"] in ("sad", "angry")  # upset, from the words only
    assert client.get("/api/calls", params={"source": "chat", "q": "furious"}).json()["total"] == 1
    assert client.get("/api/calls", params={"source": "chat", "q": "mortgage"}).json()["total"] == 0
    assert client.get("/api/calls", params={"source": "sip"}).json()["total"] == 0
    assert client.get("/api/calls", params={"source": "fax"}).status_code == 422
    page = client.get("/calls", params={"source": "chat"})
    assert page.status_code == 200 and row["id"] in page.text and '<td class="source">chat</td>' in page.text
    view = client.get(f"/calls/{row['id']}")
    assert view.status_code == 200
    assert "<h1>Chat" in view.text and "text chat (website)" in view.text and "Recording" not in view.text
    assert "I lost my card" in view.text and "card team" in view.text
    stored = client.get(f"/api/calls/{row['id']}").json()
    speakers = [t["speaker"] for t in stored["turns"]]
    assert speakers[:3] == ["agent", "agent", "agent"] and "caller" in speakers
    caller = next(t for t in stored["turns"] if t["speaker"] == "caller")
    assert caller["intent"] == "lost_card" and caller["emotion"]
    emotion = next(e for e in stored["events"] if e["type"] == "emotion")
    assert emotion.get("voice") is None and emotion["text"]


def test_typed_keys_work_like_a_keypad(store):
    hub, handoffs = make_hub(store, keyword_brain())
    chat = HttpChat(TestClient(create_app(store, chat_hub=hub)))
    chat.start()
    assert chat.say("1")[0] == "Your current account balance is $1,250.40."
    assert chat.say("4") == ["Sure. Please type your six-digit account number."]
    assert chat.say("42 71 98") == ["I heard 4 2 7 1 9 8. Is that right?"]
    assert chat.say("1")[0].startswith("Thank you.")  # 1 is yes, as on the phone
    chat.say("0")
    assert chat.ended and handoffs[0].reason == "caller-request"


def test_silence_gets_a_reprompt_after_the_chat_timeout_and_idle_chats_end(store):
    clock = Clock()
    limits = ChatLimits(no_input_ms=120_000, idle_s=600.0, keep_ended_s=60.0)
    hub, _ = make_hub(store, keyword_brain(), limits, clock)
    chat = HttpChat(TestClient(create_app(store, chat_hub=hub)))
    chat.start()

    def poll() -> list[dict]:
        response = chat.post({"type": "poll", "session": chat.session, "after": chat.seen})
        return chat._take(response.json()) if response.status_code == 200 else [response.json()]

    clock.now_s += 60  # the flow's 6 s phone timeout is not a chat's
    hub.sweep(force=True)
    assert poll() == []
    clock.now_s += 61
    hub.sweep(force=True)
    assert [m["text"] for m in poll()][0] == "Are you still there?"
    for _ in range(2):  # the flow's max_no_input reprompts, then it ends as a silent call would
        clock.now_s += 121
        hub.sweep(force=True)
    last = poll()
    assert chat.ended and last[-1]["type"] == "ended" and last[-1]["outcome"] == "completed"
    assert store.list_calls(CallFilter())[0]["reason"] == "no-input"
    # an idle chat with the timer off ends after idle_s, and is forgotten keep_ended_s later
    hub.limits = ChatLimits(no_input_ms=0, idle_s=600.0, keep_ended_s=60.0)
    quiet = HttpChat(chat.client)
    quiet.start()
    clock.now_s += 599
    hub.sweep(force=True)
    assert not hub.chat(quiet.session).session.ended
    clock.now_s += 2
    hub.sweep(force=True)
    assert hub.chat(quiet.session).session.outcome == "abandoned"
    clock.now_s += 61
    hub.sweep(force=True)
    gone = quiet.post({"type": "poll", "session": quiet.session})
    assert gone.status_code == 404 and gone.json()["code"] == "no_session"


def test_a_handoff_is_a_call_transferred_webhook_with_channel_chat_through_the_outbox(store):
    posted: list[dict] = []

    def receiver(url, body, headers, timeout_s):
        posted.append({"url": url, "event": headers["IVR-Event"], **json.loads(body)})
        return Result(status=200)

    hub, handoffs = make_hub(store, keyword_brain())
    hub.webhooks = WebhookOptions(console_url="https://console.example.com")
    chat = HttpChat(TestClient(create_app(store, chat_hub=hub)))
    chat.start()
    chat.say("my account is 427198, I want an agent please")
    assert chat.ended and handoffs
    assert OutboxWorker(store, "https://crm.example/hooks", None, post=receiver).run_once() == 3
    by_type = {event["type"]: event for event in posted}
    assert list(by_type) == ["call.started", "call.ended", "call.transferred"]
    assert {e["call_id"] for e in posted} == {handoffs[0].chat_id}
    assert by_type["call.started"]["data"]["source"] == "chat" and by_type["call.ended"]["data"]["source"] == "chat"
    transferred = by_type["call.transferred"]["data"]
    assert transferred["channel"] == "chat" and transferred["reason"] == "caller-request"
    assert transferred["call_url"] == f"https://console.example.com/calls/{handoffs[0].chat_id}"
    assert "427198" not in json.dumps(posted) and "agent please" not in json.dumps(posted)
