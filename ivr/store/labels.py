"""Labels: a supervisor's corrections of a caller turn, kept with who and when, and read back as training rows.

A label says what a caller turn should have been:
- `transcript`: the words the caller really said (redacted like every stored text);
- `intent`: the flow intent the caller meant (or `oos`: nothing the flow offers);
- `faq`: "should have been FAQ X", the id of a FAQ entry;
- `emotion`: the caller's emotion.
A turn keeps every label given to it; the newest of each kind counts, and the newest of `intent` and `faq`
is the turn's training target. `training_rows` turns labelled turns into (text, target) rows for
`ivr train intents --from-store`: the text is the corrected transcript when there is one, else what was
recognized.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, select

from dialog.nlu.model import FAQ_PREFIX
from ivr.errors import IvrError
from ivr.store import schema
from ivr.store.db import Store, utc

KINDS = ("transcript", "intent", "faq", "emotion")
TARGET_KINDS = ("intent", "faq")
MAX_VALUE_CHARS = 500


@dataclass(frozen=True)
class LabelledTurn:
    """A caller turn with an intent or FAQ label: one training row."""

    call_id: str
    turn_seq: int
    text: str
    """The corrected transcript when labelled, else the stored (recognized) one."""
    target: str
    """A flow intent, `oos` or `faq:<id>`."""
    user_name: str
    created_at: datetime

    @property
    def key(self) -> str:
        """Stable across exports: which part (training or held out) a turn falls in depends on this only."""
        return f"{self.call_id}#{self.turn_seq}"

    def bucket(self) -> int:
        """0..99 from a hash of `key`: the same turn lands in the same split every time."""
        return int(hashlib.sha256(self.key.encode()).hexdigest()[:8], 16) % 100


def _caller_turn(store: Store, call_id: str, turn_seq: int) -> dict[str, Any]:
    t = schema.turns.c
    with store.engine.connect() as conn:
        row = conn.execute(select(schema.turns).where(and_(t.call_id == call_id, t.seq == turn_seq))).mappings().first()
    if row is None:
        raise IvrError(f"call {call_id} has no turn {turn_seq}")
    if row["speaker"] != "caller":
        raise IvrError("only the caller's turns are labelled")
    return dict(row)


def add_label(store: Store, call_id: str, turn_seq: int, kind: str, value: str, user_name: str) -> int:
    """Store a label (and an audit entry) and return its id; an unknown kind, an empty or overlong value, or
    a turn that is not the caller's is an IvrError (nothing stored)."""
    if kind not in KINDS:
        raise IvrError(f"unknown label kind {kind!r}: one of {', '.join(KINDS)}")
    value = " ".join(value.split())
    if kind == "faq" and value.startswith(FAQ_PREFIX):
        value = value[len(FAQ_PREFIX):]
    if not value:
        raise IvrError(f"the {kind} label is empty")
    if len(value) > MAX_VALUE_CHARS:
        raise IvrError(f"the {kind} label is longer than {MAX_VALUE_CHARS} characters")
    turn = _caller_turn(store, call_id, turn_seq)
    previous = {"intent": turn.get("intent"), "emotion": turn.get("emotion")}.get(kind)
    if kind == "transcript":
        value = store.redact(value)
    detail = f"turn {turn_seq}: {kind}" + ("" if kind == "transcript" else f" {value}")  # no caller words
    with store.engine.begin() as conn:
        result = conn.execute(schema.labels.insert().values(
            call_id=call_id, turn_seq=turn_seq, kind=kind, value=value, previous=previous, user_name=user_name,
            created_at=datetime.now(UTC)))
        Store._audit(conn, user_name, "label", call_id, detail)  # noqa: SLF001 (one transaction with the label)
        key = result.inserted_primary_key
        return int(key[0]) if key else 0


def call_labels(store: Store, call_id: str) -> list[dict[str, Any]]:
    """A call's labels, oldest first."""
    c = schema.labels.c
    with store.engine.connect() as conn:
        rows = conn.execute(select(schema.labels).where(c.call_id == call_id).order_by(c.id)).mappings().all()
    return [{**dict(r), "created_at": utc(r["created_at"])} for r in rows]


def count_labels(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(schema.labels)).scalar_one())


def training_rows(store: Store) -> list[LabelledTurn]:
    """Every caller turn with an intent or FAQ label, as (text, target), oldest label first."""
    lab, t = schema.labels.c, schema.turns.c
    query = (select(schema.labels, t.text.label("turn_text"))
             .join(schema.turns, and_(t.call_id == lab.call_id, t.seq == lab.turn_seq))
             .order_by(lab.id))
    latest: dict[tuple[str, int], dict[str, Any]] = {}
    with store.engine.connect() as conn:
        for row in conn.execute(query).mappings():
            turn = latest.setdefault((row["call_id"], row["turn_seq"]), {"text": row["turn_text"] or ""})
            if row["kind"] == "transcript":
                turn["text"] = row["value"]
            elif row["kind"] in TARGET_KINDS:
                turn["target"] = FAQ_PREFIX + row["value"] if row["kind"] == "faq" else row["value"]
                turn["user"], turn["at"] = row["user_name"], utc(row["created_at"])
    rows = [LabelledTurn(call_id, seq, turn["text"], turn["target"], turn["user"], turn["at"])
            for (call_id, seq), turn in latest.items() if "target" in turn and turn["text"].strip()]
    return sorted(rows, key=lambda r: (r.created_at, r.key))
