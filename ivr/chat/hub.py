"""The chats of one console process: who may start one, their sessions, their store writers, and expiry.

The chat endpoints need no console login (the widget is for a website's visitors), so the hub bounds
what one client can make the server do (`ChatLimits`): request size (ivr.chat.protocol), messages and
new chats per minute per client address (IPv6 by /64, as the login throttle counts), open chats per
address, open chats in all, messages per chat, and idle chats, which are ended ("abandoned", reason
"idle") and forgotten. A chat's secret (`session`) is its only key; the chat id the console shows is
another.

Every chat is stored like a call (source "chat") by a StoreWriter on its event log. A store that fails
never stops a chat. Calls into one chat are serialized by its lock; the methods block (NLU, the store)
and are meant for a worker thread, not the event loop.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ivr.call.events import WebhookRequested
from ivr.chat.brain import ChatBrain
from ivr.chat.handoff import WEBHOOK_EVENT, Handoff, handoff_of, log_handoff
from ivr.chat.protocol import ProtocolError
from ivr.chat.session import DEFAULT_NO_INPUT_MS, ChatMessage, ChatSession
from ivr.console.guards import LoginThrottle, client_key
from ivr.store import Store
from ivr.store.hookevents import WebhookOptions
from ivr.store.writer import StoreWriter

log = logging.getLogger(__name__)

SWEEP_EVERY_S = 1.0


@dataclass(frozen=True)
class ChatLimits:
    max_chats: int = 500
    """Open chats in all; past that a new one gets `busy` (so does one past twice as many kept, ended ones too)."""
    chats_per_client: int = 3
    """Open chats per client address."""
    starts_per_minute: int = 10
    """New chats per client address per minute."""
    messages_per_minute: int = 30
    """User messages per client address per minute."""
    messages_per_chat: int = 200
    """User messages in one chat; then it is ended (outcome "abandoned", reason "too-long")."""
    idle_s: float = 900.0
    """A chat with no message from its user for this long is ended ("abandoned", reason "idle")."""
    keep_ended_s: float = 120.0
    """How long an ended chat can still be read (poll, resume) before it is forgotten."""
    no_input_ms: int = DEFAULT_NO_INPUT_MS
    """Silence while the agent waits before the flow's NoInput (0: wait for the user forever)."""
    origins: tuple[str, ...] = ()
    """The sites whose pages may use the chat ("https://bank.example"), besides the console's own; empty: any.
    A browser says which page a request comes from (Origin); a request without one (a script) is let in."""

    def allows(self, origin: str | None, own: str) -> bool:
        return not self.origins or not origin or origin == own or origin in self.origins


def chat_off() -> ChatBrain:
    """The brain of a console started without the chat (`ivr console --no-chat`): every chat is unavailable."""
    raise ProtocolError("unavailable", "the chat is off on this server")


class _SinceClock:
    """A chat's own time (ms since it started) on the hub's clock."""

    def __init__(self, now_s: Callable[[], float]) -> None:
        self._now_s, self._start_s = now_s, now_s()

    def now_ms(self) -> float:
        return (self._now_s() - self._start_s) * 1000.0


@dataclass
class Chat:
    session: ChatSession
    client: str
    last_active_s: float
    writer: StoreWriter | None = None
    user_messages: int = 0
    ended_s: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class ChatHub:
    def __init__(self, store: Store | None, brain: ChatBrain | Callable[[], ChatBrain] = ChatBrain.load,
                 limits: ChatLimits | None = None, on_handoff: Callable[[Handoff], None] = log_handoff,
                 now_s: Callable[[], float] = time.monotonic, webhooks: WebhookOptions | None = None) -> None:
        """`brain`: the models, or how to load them (on the first chat); `webhooks`: the chats' writers put
        webhook events in the store's outbox (call.started, call.ended, ..., and call.transferred at a handoff)."""
        self.store = store
        self.webhooks = webhooks
        self.limits = limits or ChatLimits()
        self.on_handoff = on_handoff
        self._brain = brain if isinstance(brain, ChatBrain) else None
        self._load_brain = None if isinstance(brain, ChatBrain) else brain
        self._now_s = now_s
        self._chats: dict[str, Chat] = {}
        self._lock = threading.Lock()
        self._brain_lock = threading.Lock()
        self._starts = LoginThrottle(self.limits.starts_per_minute, 60.0, clock=now_s)
        self._messages = LoginThrottle(self.limits.messages_per_minute, 60.0, clock=now_s)
        self._swept_s = 0.0

    def __len__(self) -> int:
        return len(self._chats)

    def brain(self) -> ChatBrain:
        with self._brain_lock:
            if self._brain is None:
                assert self._load_brain is not None
                try:
                    self._brain = self._load_brain()
                except ProtocolError:
                    raise
                except Exception as exc:  # a model that does not load: chats are unavailable, the console runs on
                    log.error("chat: cannot load the flow or models: %s: %s", type(exc).__name__, exc)
                    raise ProtocolError("unavailable", "the chat is not available now") from None
            return self._brain

    # ---- requests -------------------------------------------------------------------------------------

    def start(self, host: str | None) -> tuple[str, Chat]:
        """A new chat for the client at `host`: (its secret, the chat), its opening messages posted."""
        client = client_key(host)
        self.sweep()
        brain = self.brain()
        chat_id = f"chat-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"
        session = ChatSession(brain, _SinceClock(self._now_s), chat_id, self.limits.no_input_ms)
        chat = Chat(session, client, self._now_s())
        secret = secrets.token_urlsafe(24)
        with chat.lock:  # nobody else knows the chat yet: taken at once, held until it has started
            with self._lock:  # checked and counted in one step, so a burst of starts cannot pass the limits
                self._admit(client)
                self._chats[secret] = chat
            if self.store is not None:
                chat.writer = StoreWriter(self.store, source="chat", background=False, webhooks=self.webhooks)
                session.log.subscribe(chat.writer)
            session.start()
            self._after(chat)
        log.info("chat %s started", chat_id)
        return secret, chat

    def _admit(self, client: str) -> None:
        """ProtocolError unless `client` may start a chat now (the hub's lock is held)."""
        live = [c for c in self._chats.values() if not c.session.ended]
        if sum(c.client == client for c in live) >= self.limits.chats_per_client:
            raise ProtocolError("too_many_sessions", f"at most {self.limits.chats_per_client} open chats "
                                "per address: end one first")
        if len(live) >= self.limits.max_chats or len(self._chats) >= 2 * self.limits.max_chats:
            raise ProtocolError("busy", "too many chats right now; try again later", 30)
        wait_s = self._starts.hit(client)
        if wait_s:
            raise ProtocolError("rate_limited", "too many new chats; wait a little", wait_s)

    def chat(self, secret: str) -> Chat:
        chat = self._chats.get(secret) if secret else None
        if chat is None:
            raise ProtocolError("no_session", "no such chat (it ended or expired): start a new one")
        return chat

    def send(self, secret: str, host: str | None, text: str) -> Chat:
        chat = self.chat(secret)
        wait_s = self._messages.hit(client_key(host))
        if wait_s:
            raise ProtocolError("rate_limited", "too many messages; wait a little", wait_s)
        with chat.lock:
            if chat.session.ended:
                raise ProtocolError("ended", "this chat has ended: start a new one")
            chat.last_active_s = self._now_s()
            chat.user_messages += 1
            chat.session.send(text)
            if chat.user_messages >= self.limits.messages_per_chat and not chat.session.ended:
                chat.session.close("abandoned", "too-long")
            self._after(chat)
        return chat

    def end(self, secret: str) -> Chat:
        chat = self.chat(secret)
        with chat.lock:
            chat.session.close("caller-hangup", "user left")
            self._after(chat)
        return chat

    # ---- time -----------------------------------------------------------------------------------------

    def sweep(self, force: bool = False) -> None:
        """Timers of every chat (no-input), idle chats ended, ended ones forgotten; at most once a second."""
        now = self._now_s()
        if not force and now - self._swept_s < SWEEP_EVERY_S:
            return
        self._swept_s = now
        with self._lock:
            chats = list(self._chats.items())
        for secret, chat in chats:
            with chat.lock:
                if chat.ended_s is not None:
                    if now - chat.ended_s >= self.limits.keep_ended_s:
                        with self._lock:
                            self._chats.pop(secret, None)
                    continue
                if now - chat.last_active_s >= self.limits.idle_s:
                    chat.session.close("abandoned", "idle")
                else:
                    chat.session.tick()
                self._after(chat)

    def close(self) -> None:
        """The server stops: every open chat ends ("abandoned", reason "shutdown") and is stored."""
        with self._lock:
            chats = list(self._chats.values())
        for chat in chats:
            with chat.lock:
                chat.session.close("abandoned", "shutdown")
                self._after(chat)

    def _after(self, chat: Chat) -> None:
        """After a chat moved: once it has ended, finish its store writer and hand it over if it transferred."""
        if not chat.session.ended or chat.ended_s is not None:
            return
        chat.ended_s = self._now_s()
        handoff = handoff_of(chat.session) if chat.session.outcome == "transferred" else None
        if handoff is not None and self.webhooks is not None:  # into the outbox with the chat's last update
            chat.session.log.emit(WebhookRequested(name=WEBHOOK_EVENT, data=handoff.webhook_data()))
        if chat.writer is not None:
            chat.writer.finish()
        if handoff is not None:
            try:
                self.on_handoff(handoff)
            except Exception as exc:  # noqa: BLE001 - a failing hook never breaks the chat
                log.error("chat %s: handoff hook failed: %s", chat.session.chat_id, type(exc).__name__)
        log.info("chat %s ended: %s (%s)", chat.session.chat_id, chat.session.outcome, chat.session.end_reason)


def messages_json(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    return [m.to_json() for m in messages]
