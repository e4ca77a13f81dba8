"""Helpers for the chat tests (no tests here): the chat's brain with and without the NLU, a hub over a
console store with a clock the test moves, and a conversation over the HTTP API."""

from __future__ import annotations

from typing import Any

from dialog.flow import load_default_flow
from dialog.machine import Machine
from ivr.chat.brain import ChatBrain
from ivr.chat.handoff import Handoff
from ivr.chat.hub import ChatHub, ChatLimits


class Clock:
    """Seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def keyword_brain() -> ChatBrain:
    """The bank flow on the text channel without NLU or emotion models (keywords and keys only): quick."""
    return ChatBrain(Machine(load_default_flow(), channel="text"))


def make_hub(store: Any, brain: ChatBrain, limits: ChatLimits | None = None,
             clock: Clock | None = None) -> tuple[ChatHub, list[Handoff]]:
    handoffs: list[Handoff] = []
    hub = ChatHub(store, brain, limits, on_handoff=handoffs.append, now_s=clock or Clock())
    return hub, handoffs


class HttpChat:
    """One chat over POST /api/chat, keeping its secret and how far it has read."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.session = ""
        self.seen = 0
        self.ended = False

    def post(self, body: dict[str, Any]) -> Any:
        return self.client.post("/api/chat", json=body)

    def start(self) -> list[dict[str, Any]]:
        response = self.post({"type": "start"})
        assert response.status_code == 200, response.text
        self.session = response.json()["session"]
        return self._take(response.json())

    def say(self, text: str) -> list[str]:
        """The agent's replies to `text`."""
        response = self.post({"type": "message", "session": self.session, "text": text, "after": self.seen})
        assert response.status_code == 200, response.text
        return [m["text"] for m in self._take(response.json()) if m.get("from") == "agent"]

    def _take(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        self.seen += len(body["messages"])
        self.ended = body["ended"]
        return list(body["messages"])
