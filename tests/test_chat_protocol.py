"""The chat's protocol under hostile and clumsy clients: malformed JSON, oversize frames and bodies, wrong
types, unknown chats, too many chats, sockets and messages get a clear error (and a status over HTTP),
and the server goes on serving; a WebSocket chat resumes on a new connection."""

from __future__ import annotations

import contextlib
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from ivr.chat.hub import ChatHub, ChatLimits, chat_off
from ivr.chat.protocol import MAX_FRAME_BYTES, MAX_TEXT_CHARS, ProtocolError
from ivr.console.app import create_app
from ivr.console.routes.chat import MAX_ERRORS_IN_A_ROW, SOCKETS_PER_CLIENT
from tests.chat_support import Clock, HttpChat, keyword_brain, make_hub
from tests.console_client import PASSWORD, login
from tests.test_store_support import console_store

XSS = "<script>alert('x')</script><img src=x onerror=alert(1)>"


@pytest.fixture
def store(tmp_path):
    with console_store(tmp_path, PASSWORD) as s:
        yield s


def app_for(store, limits=None):
    hub, _ = make_hub(store, keyword_brain(), limits)
    return create_app(store, chat_hub=hub)


def error_of(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error" and body["code"] == code and body["message"]
    return body


def test_http_refuses_bad_requests_clearly_and_goes_on(store):
    app = app_for(store)
    client = TestClient(app)
    chat = HttpChat(client)
    chat.start()
    post = client.post
    error_of(post("/api/chat", content=b"{not json"), 400, "bad_json")
    error_of(post("/api/chat", content=b"[1, 2]"), 400, "bad_json")
    error_of(post("/api/chat", content=b"\xff\xfe\x00"), 400, "bad_json")
    error_of(post("/api/chat", content=b"[" * 2000 + b"]" * 2000), 400, "bad_json")  # nested past the parser
    error_of(post("/api/chat", json={"type": "shout"}), 400, "bad_request")
    error_of(post("/api/chat", content=b"x" * (MAX_FRAME_BYTES + 1)), 413, "too_large")
    error_of(post("/api/chat", json={"type": "message", "session": chat.session, "text": "a" * (MAX_TEXT_CHARS + 1)}),
             413, "too_large")
    error_of(post("/api/chat", json={"type": "message", "session": chat.session, "text": " \n\u200b "}), 400, "empty")
    for wrong in ({"text": 5}, {"text": ["hi"]}, {"session": 7, "text": "hi"}, {"after": -1, "text": "hi"},
                  {"after": True, "text": "hi"}, {"after": "3", "text": "hi"}, {"session": "s" * 100, "text": "hi"}):
        error_of(post("/api/chat", json={"type": "message", "session": chat.session, **wrong}), 400, "bad_request")
    error_of(post("/api/chat", json={"type": "message", "session": "nope", "text": "hi"}), 404, "no_session")
    error_of(post("/api/chat", json={"type": "resume", "session": chat.session}), 400, "bad_request")
    # hostile text is only text: stored as typed (controls out), shown escaped in the console
    assert chat.say(XSS + "\x00\u202e")[0] == "Sorry, I didn't catch that."
    supervisor, _ = login(app, "sam")
    page = supervisor.get("/calls", params={"source": "chat", "q": "alert"})
    assert "<script>alert" not in page.text and "&lt;script&gt;" in page.text
    # and the server still serves a new chat
    assert HttpChat(client).start()[0]["from"] == "agent"


def test_http_limits_chats_per_address_new_chats_messages_and_in_all(store):
    client = TestClient(app_for(store, ChatLimits(chats_per_client=2, messages_per_minute=3)))
    first, second = HttpChat(client), HttpChat(client)
    first.start()
    second.start()
    error_of(client.post("/api/chat", json={"type": "start"}), 429, "too_many_sessions")
    assert client.post("/api/chat", json={"type": "end", "session": second.session}).json()["ended"]
    HttpChat(client).start()  # one ended: room for another
    for text in ("hello", "hi", "hey"):
        first.say(text)
    limited = error_of(client.post("/api/chat", json={"type": "message", "session": first.session, "text": "4"}),
                       429, "rate_limited")
    assert limited["retry_after"] >= 1
    rate = TestClient(app_for(store, ChatLimits(chats_per_client=10, starts_per_minute=2)))
    HttpChat(rate).start()
    HttpChat(rate).start()
    error_of(rate.post("/api/chat", json={"type": "start"}), 429, "rate_limited")
    busy = TestClient(app_for(store, ChatLimits(max_chats=1)))
    HttpChat(busy).start()
    response = busy.post("/api/chat", json={"type": "start"})
    error_of(response, 503, "busy")
    assert response.headers["retry-after"] == "30"


def receive_until(ws, kind):
    got = []
    while not got or got[-1]["type"] != kind:
        got.append(ws.receive_json())
    return got


def test_websocket_chat_survives_bad_frames_resumes_and_ends(store):
    client = TestClient(app_for(store))
    with client.websocket_connect("/chat/ws") as ws:
        ws.send_text(json.dumps({"type": "message", "text": "hi"}))
        assert ws.receive_json()["code"] == "no_session"
        ws.send_text(json.dumps({"type": "start"}))
        started = ws.receive_json()
        assert started["type"] == "started" and started["session"] and started["chat"].startswith("chat-")
        opening = [ws.receive_json() for _ in range(3)]
        assert [m["seq"] for m in opening] == [1, 2, 3] and opening[0]["from"] == "agent"
        for frame, code in (("{oops", "bad_json"), ("null", "bad_json"), ('{"type": 1}', "bad_request"),
                            ("x" * (MAX_FRAME_BYTES + 1), "too_large"), ('{"type": "start"}', "bad_request")):
            ws.send_text(frame)
            assert ws.receive_json()["code"] == code
        ws.send_bytes(b'{"type": "message", "text": "hi"}')
        assert ws.receive_json()["code"] == "bad_json"
        ws.send_text(json.dumps({"type": "message", "text": "balance"}))
        replies = receive_until(ws, "message")
        assert replies == [{"type": "message", "seq": 4, "from": "user", "text": "balance"}]
        assert ws.receive_json()["text"] == "Your current account balance is $1,250.40."
        assert ws.receive_json()["seq"] == 6
    # the page reloads: a new socket resumes the chat with its whole history
    with client.websocket_connect("/chat/ws") as ws:
        ws.send_text(json.dumps({"type": "resume", "session": started["session"], "after": 0}))
        assert ws.receive_json() == {"type": "started", "session": started["session"], "chat": started["chat"]}
        history = [ws.receive_json() for _ in range(6)]
        assert [m["seq"] for m in history] == [1, 2, 3, 4, 5, 6]
        ws.send_text(json.dumps({"type": "end"}))
        ended = ws.receive_json()
        assert ended["type"] == "ended" and ended["outcome"] == "caller-hangup"
        with pytest.raises(WebSocketDisconnect):
            ws.receive_json()  # the server closes an ended chat's socket
    with client.websocket_connect("/chat/ws") as ws:
        ws.send_text(json.dumps({"type": "resume", "session": "unknown"}))
        assert ws.receive_json()["code"] == "no_session"


def test_a_websocket_that_only_sends_garbage_is_closed_and_sockets_per_address_are_bounded(store):
    client = TestClient(app_for(store))
    with client.websocket_connect("/chat/ws") as ws:
        for _ in range(MAX_ERRORS_IN_A_ROW):
            ws.send_text("garbage")
            assert ws.receive_json()["code"] == "bad_json"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 1008
    with contextlib.ExitStack() as stack:
        for _ in range(SOCKETS_PER_CLIENT):
            stack.enter_context(client.websocket_connect("/chat/ws"))
        with client.websocket_connect("/chat/ws") as extra:
            assert extra.receive_json()["code"] == "too_many_sessions"
            with pytest.raises(WebSocketDisconnect):
                extra.receive_json()
    with client.websocket_connect("/chat/ws") as ws:  # all closed: room again
        ws.send_text(json.dumps({"type": "start"}))
        assert ws.receive_json()["type"] == "started"


def test_a_console_without_the_chat_or_whose_models_fail_says_unavailable_and_runs_on(store):
    def broken_models():
        raise RuntimeError("model file damaged")

    for brain, message in ((chat_off, "the chat is off on this server"), (broken_models, "not available now")):
        app = create_app(store, chat_hub=ChatHub(store, brain))
        client = TestClient(app)
        assert message in error_of(client.post("/api/chat", json={"type": "start"}), 503, "unavailable")["message"]
        with client.websocket_connect("/chat/ws") as ws:
            ws.send_text(json.dumps({"type": "start"}))
            assert ws.receive_json()["code"] == "unavailable"
        supervisor, _ = login(app, "sam")
        assert supervisor.get("/calls").status_code == 200


def test_a_burst_of_starts_from_one_address_gets_exactly_its_chats(store):
    hub, _ = make_hub(store, keyword_brain(), ChatLimits(chats_per_client=3))

    def start(_: int) -> str:
        try:
            hub.start("203.0.113.7")
            return "started"
        except ProtocolError as exc:
            return exc.code

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(start, range(12)))
    assert sorted(results).count("started") == 3 and set(results) == {"started", "too_many_sessions"}
    hub.start("2001:db8::1")  # another address is not held up
    with pytest.raises(ProtocolError, match="open chats"):
        hub.start("203.0.113.7")


def test_open_sockets_in_all_are_bounded_by_the_hub(store):
    client = TestClient(app_for(store, ChatLimits(max_chats=1)))
    with (client.websocket_connect("/chat/ws"), client.websocket_connect("/chat/ws"),
          client.websocket_connect("/chat/ws") as third):
        assert third.receive_json()["code"] == "busy"
        with pytest.raises(WebSocketDisconnect):
            third.receive_json()


def test_the_websocket_pushes_a_no_input_reprompt_without_being_asked(store):
    clock = Clock()
    hub, _ = make_hub(store, keyword_brain(), ChatLimits(no_input_ms=60_000), clock)
    client = TestClient(create_app(store, chat_hub=hub))
    with client.websocket_connect("/chat/ws") as ws:
        ws.send_text(json.dumps({"type": "start"}))
        assert [ws.receive_json()["type"] for _ in range(4)] == ["started", "message", "message", "message"]
        clock.now_s += 61  # the user says nothing; the socket's once-a-second look finds the reprompt
        pushed = ws.receive_json()
        assert pushed["from"] == "agent" and pushed["text"] == "Are you still there?" and pushed["seq"] == 4


def test_only_the_sites_named_may_use_the_chat_from_their_pages(store):
    client = TestClient(app_for(store, ChatLimits(origins=("https://bank.example",))))
    for origin, allowed in (("https://bank.example", True), ("http://testserver", True), (None, True),
                            ("https://evil.example", False), ("null", False)):
        headers = {"origin": origin} if origin else {}
        response = client.post("/api/chat", json={"type": "start"}, headers=headers)
        if allowed:
            assert response.status_code == 200, origin
        else:
            error_of(response, 403, "forbidden_origin")
        with client.websocket_connect("/chat/ws", headers=headers) as ws:
            ws.send_text(json.dumps({"type": "end", "session": "x"}))
            first = ws.receive_json()
            assert (first.get("code") == "forbidden_origin") is not allowed, origin
