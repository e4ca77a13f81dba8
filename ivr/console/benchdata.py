"""Synthetic calls for the console benchmark: a store filled in bulk with calls that look like a bank's.

Each call has a topic, 1 to 5 caller turns with the agent's answers, intents (some turns not understood),
emotions with scores, reply latencies, no-input timeouts, and an outcome (completed, transferred to a queue
for a reason, hung up by the caller); calls are spread over weeks, more of them in office hours. Rows go in
with one multi-row insert per table and batch (not through the per-event StoreWriter, which is far slower),
in the shape the writer gives them; a column the store does not have is left out, so the same data fills
an older schema too.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table

from ivr.store import Store, kpistore, schema

BATCH_CALLS = 1000
HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 4, 8, 14, 18, 18, 16, 14, 16, 17, 16, 14, 10, 7, 5, 4, 3, 2, 1)
"""Calls by hour of the day (UTC): a working day's shape."""
FLOWS = ("example-bank", "card-services")
QUEUES = ("sip:agents@example.com", "sip:cards@example.com", "sip:loans@example.com")
TOPICS: dict[str, tuple[str, ...]] = {
    "balance": ("what is my balance", "how much money do I have", "check my account balance please",
                "balance", "I want to know my balance"),
    "lost_card": ("I lost my card", "my card was stolen", "block my credit card", "I can't find my debit card"),
    "hours": ("when are you open", "what are your opening hours", "are you open on saturday"),
    "transfer_money": ("I want to send money to my son", "make a transfer", "pay my rent to another account"),
    "agent": ("I want to talk to a person", "agent please", "let me speak to someone"),
}
ANSWERS = ("yes", "no that's all", "no thank you", "yes please", "repeat that")
MISSES = ("do you sell insurance", "my mortgage statement looks wrong", "the app keeps crashing",
          "can I change my pin at the cash machine", "what's the exchange rate for euros", "uh hmm",
          "I got a letter about my pension", "why was I charged twice")
EMOTIONS = ("neutral", "happy", "sad", "angry", "frustrated")
NEGATIVITY = {"neutral": 0.15, "happy": 0.05, "sad": 0.55, "angry": 0.85, "frustrated": 0.7}
TRANSFER_REASONS = ("caller asked for an agent", "no-match", "negative-emotion", "no-input", "card blocked: agent")
OUTCOMES = (("completed", 58), ("transferred", 25), ("caller-hangup", 12), ("agent-hangup", 3), ("rtp-timeout", 2))
AUDIT_ACTIONS = ("open", "listen", "export", "login", "logout")
SAMPLE_CALLER = "+1 555 010 4477"
"""The first call's caller (the benchmark's caller filter looks for it); the others are random numbers."""


@dataclass
class Batch:
    """One batch's rows, by table."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    turns: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class CallMaker:
    """Makes the rows of synthetic calls from one seeded random generator."""

    store: Store
    end: datetime
    days: int
    rng: random.Random
    made: int = 0

    def call(self, batch: Batch, live: bool = False) -> None:
        rng = self.rng
        self.made += 1
        call_id = f"bench-{self.made:06d}"
        if live:
            started = self.end - timedelta(seconds=rng.uniform(5, 300))
        else:
            day = self.end - timedelta(days=rng.randrange(self.days) + 1)
            started = day.replace(hour=rng.choices(range(24), HOUR_WEIGHTS)[0], minute=rng.randrange(60),
                                  second=rng.randrange(60))
        topic = rng.choice(list(TOPICS))
        caller = SAMPLE_CALLER if self.made == 1 else f"+1555{rng.randrange(10_000_000):07d}"
        row: dict[str, Any] = {"id": call_id, "source": rng.choice(("sip", "sip", "sip", "web", "chat")),
                               "started_at": started, "escalated": False, "sample_rate_hz": 8000,
                               "flow": rng.choices(FLOWS, (4, 1))[0], **self.store._caller_columns(caller)}
        CallBuilder(self, batch, row, topic).build(live)
        batch.calls.append(row)


class CallBuilder:
    """The turns and events of one call, and what they leave in its calls row."""

    def __init__(self, maker: CallMaker, batch: Batch, row: dict[str, Any], topic: str) -> None:
        self.rng = maker.rng
        self.batch = batch
        self.row = row
        self.topic = topic
        self.t_ms = 0.0
        self.seq_event = 0
        self.seq_turn = 0
        self.negativity: list[float] = []
        self.latencies: list[float] = []

    def event(self, kind: str, **data: Any) -> None:
        self.seq_event += 1
        self.batch.events.append({"call_id": self.row["id"], "seq": self.seq_event, "t_ms": round(self.t_ms, 1),
                                  "type": kind, "data": data})

    def turn(self, speaker: str, text: str, end_ms: float, **more: Any) -> None:
        self.seq_turn += 1
        self.batch.turns.append({"call_id": self.row["id"], "seq": self.seq_turn, "speaker": speaker,
                                 "start_ms": round(self.t_ms, 1), "end_ms": round(end_ms, 1), "text": text,
                                 "interrupted": False, **more})

    def say(self, text: str) -> None:
        self.event("say", text=text, barge_in=True)
        self.turn("agent", text, self.t_ms + 1800)
        self.t_ms += 1800
        self.event("prompt_finished")

    def build(self, live: bool) -> None:
        rng = self.rng
        self.event("call_started", call_id=self.row["id"], sample_rate_hz=8000, flow=self.row["flow"])
        self.event("dialog", event="CallStarted", node="main_menu")
        self.say("Welcome to Example Bank. How can I help you?")
        n_turns = 1 + min(4, int(rng.expovariate(0.6)))
        no_inputs = 0
        for i in range(n_turns):
            if rng.random() < 0.08:
                self.t_ms += 6000
                self.event("no_input", timeout_ms=6000)
                no_inputs += 1
                self.say("Sorry, I didn't hear you. You can say balance, lost card, or agent.")
            self.caller_turn(i)
        self.row.update(no_inputs=no_inputs, replies=len(self.latencies), reply_ms_total=sum(self.latencies),
                        negativity=sum(self.negativity) / len(self.negativity) if self.negativity else None,
                        node="main_menu")
        if not live:
            self.end()

    def caller_turn(self, i: int) -> None:
        rng = self.rng
        self.event("listening", node="main_menu", timeout_ms=6000, asks="", about="")
        self.t_ms += rng.uniform(400, 1500)
        onset = self.t_ms
        self.event("speech_started", onset_ms=round(onset, 1))
        self.t_ms += rng.uniform(900, 3000)
        self.event("speech_stopped", onset_ms=round(onset, 1), end_ms=round(self.t_ms, 1))
        intent, miss = self.meaning(i)
        text = rng.choice(TOPICS.get(intent, ANSWERS if intent else MISSES))
        emotion = rng.choices(EMOTIONS, (60, 10, 8, 10, 12))[0]
        scores = {e: round(0.7 if e == emotion else 0.3 / (len(EMOTIONS) - 1), 3) for e in EMOTIONS}
        negativity = round(min(1.0, max(0.0, NEGATIVITY[emotion] + rng.uniform(-0.1, 0.1))), 3)
        self.negativity.append(negativity)
        turn_end = self.t_ms
        self.event("transcript", text=text, confidence=round(rng.uniform(0.6, 0.99), 2))
        at_s = onset / 1000
        words = [{"text": w, "start_s": round(at_s + 0.3 * k, 2), "end_s": round(at_s + 0.3 * k + 0.25, 2),
                  "confidence": 0.9} for k, w in enumerate(text.split())]
        self.turn("caller", text, turn_end, words=words, confidence=0.9, intent=intent or None, emotion=emotion,
                  emotion_scores=scores, nlu_miss=miss)
        self.t_ms = turn_end + 20
        self.event("emotion", label=emotion, scores=scores, negativity=negativity)
        if miss != "no-match":
            self.event("nlu", intent=intent, confidence=0.8 if intent else 0.2, faq="", faq_score=0.0, latency_ms=3.0)
        self.event("dialog", event="Utterance", node=intent if intent in TOPICS else "main_menu")
        if intent and not self.row.get("intent"):
            self.row["intent"] = intent
        self.row.update(emotion=emotion, last_text=text)
        latency = round(max(250.0, rng.lognormvariate(6.7, 0.35)), 1)
        self.latencies.append(latency)
        self.t_ms = turn_end + latency
        self.event("reply_started", turn_end_ms=round(turn_end, 1), latency_ms=latency)
        self.say("Sorry, I didn't catch that." if miss else f"Here is what I found about {intent or 'that'}.")

    def meaning(self, i: int) -> tuple[str, str | None]:
        """(intent, how the turn was not understood): '' and 'out-of-scope' or 'no-match' for a miss."""
        roll = self.rng.random()
        if roll < 0.08:
            return "", "out-of-scope"
        if roll < 0.13:
            return "", "no-match"
        return (self.topic if i == 0 else self.rng.choice(("yes", "no"))), None

    def end(self) -> None:
        rng, row = self.rng, self.row
        outcome = rng.choices([o for o, _ in OUTCOMES], [w for _, w in OUTCOMES])[0]
        reason, target = {"completed": ("completed", ""), "caller-hangup": ("caller hung up", ""),
                          "agent-hangup": ("ended by server", ""), "rtp-timeout": ("no RTP from the caller", "")
                          }.get(outcome, ("", ""))
        if outcome == "transferred":
            reason, target = rng.choice(TRANSFER_REASONS), rng.choice(QUEUES)
        self.t_ms += rng.uniform(500, 4000)
        self.event("call_ended", outcome=outcome, reason=reason, target=target, node="goodbye", slots={})
        row.update(outcome=outcome, reason=reason, transfer_target=target or None,
                   escalated=outcome == "transferred", node="goodbye", duration_ms=round(self.t_ms, 1),
                   ended_at=row["started_at"] + timedelta(milliseconds=self.t_ms))


def _insert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    have = set(table.c.keys())
    keys = sorted({k for r in rows for k in r} & have)
    conn.execute(table.insert(), [{k: r.get(k) for k in keys} for r in rows])


def fill_store(store: Store, calls: int, days: int = 42, live: int = 20, audit_rows: int = 20_000, seed: int = 15,
               end: datetime | None = None) -> dict[str, Any]:
    """Add `calls` synthetic calls (of them `live` still going) over the `days` before `end` (now), and
    `audit_rows` audit entries; returns what was made."""
    maker = CallMaker(store, (end or datetime.now(UTC)).replace(microsecond=0), max(1, days), random.Random(seed))
    totals = {"calls": 0, "turns": 0, "events": 0}
    while maker.made < calls:
        batch = Batch()
        for _ in range(min(BATCH_CALLS, calls - maker.made)):
            maker.call(batch, live=maker.made >= calls - live)
        with store.engine.begin() as conn:
            _insert(conn, schema.calls, batch.calls)
            _insert(conn, schema.turns, batch.turns)
            _insert(conn, schema.events, batch.events)
        for name in totals:
            totals[name] += len(getattr(batch, name))
    with store.engine.begin() as conn:
        _fill_menus(conn)
        kpistore.rebuild(conn)  # the sums the writer keeps as calls go, summed at once
        _insert(conn, schema.audit, [{"at": maker.end - timedelta(seconds=7 * i), "user_name": "sam",
                                      "action": AUDIT_ACTIONS[i % len(AUDIT_ACTIONS)],
                                      "call_id": f"bench-{1 + i % max(1, calls):06d}", "detail": None}
                                     for i in range(audit_rows)])
    return {**totals, "audit": audit_rows, "days": days, "live": min(live, calls)}


def _fill_menus(conn: Connection) -> None:
    """The call list's filter menus, as the writer would have noted them."""
    values = {("outcome", o) for o, _ in OUTCOMES}
    values |= {("intent", i) for i in (*TOPICS, "yes", "no")} | {("emotion", e) for e in EMOTIONS}
    conn.execute(schema.filter_values.delete())
    conn.execute(schema.filter_values.insert(), [{"name": n, "value": v} for n, v in sorted(values)])
