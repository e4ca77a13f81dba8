"""Quality review of calls: scorecards (questions an admin defines), reviews (a scorecard filled for a call),
the call's "reviewed" status and comments.

A scorecard's question is answered yes/no or on a 1-5 scale and has a weight; a review's score is the
weighted mean of its answers on 0-100 (yes 100, no 0; 1..5 -> 0, 25, 50, 75, 100). A scorecard is never
edited once made (its reviews point at it): an admin retires it and makes another. Submitting a review marks
the call reviewed (by whom, when) with that score; a call may also be marked reviewed without a scorecard.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError

from ivr.errors import IvrError
from ivr.store import schema
from ivr.store.db import Store, utc

KINDS = {"yesno": "yes / no", "scale5": "1 to 5"}
"""How a question is answered, and how the console names it."""
MAX_QUESTIONS = 20
MAX_QUESTION_CHARS = 300
MAX_WEIGHT = 100.0
MAX_COMMENT_CHARS = 2000
MAX_NAME_CHARS = 80


@dataclass(frozen=True)
class Question:
    text: str
    kind: str  # yesno | scale5
    weight: float = 1.0

    def check(self) -> Question:
        text = " ".join(self.text.split())
        if not 1 <= len(text) <= MAX_QUESTION_CHARS:
            raise IvrError(f"a question is 1-{MAX_QUESTION_CHARS} characters")
        if self.kind not in KINDS:
            raise IvrError(f"a question is answered {' or '.join(KINDS)}")
        if not 0 < self.weight <= MAX_WEIGHT:
            raise IvrError(f"a question's weight is more than 0 and at most {MAX_WEIGHT:g}")
        return Question(text, self.kind, float(self.weight))

    def value(self, answer: str) -> float:
        """The answer on 0..1 ('yes'/'no', or '1'..'5'); IvrError when it is not one of those."""
        answer = answer.strip().lower()
        if self.kind == "yesno" and answer in ("yes", "no"):
            return 1.0 if answer == "yes" else 0.0
        if self.kind == "scale5" and answer in ("1", "2", "3", "4", "5"):
            return (int(answer) - 1) / 4.0
        raise IvrError(f"answer '{self.text}' with {KINDS[self.kind]}")


def score(questions: list[Question], answers: list[str]) -> float:
    """The weighted score, 0-100 to one decimal, of one answer per question."""
    if len(answers) != len(questions):
        raise IvrError("answer every question of the scorecard")
    total = sum(q.weight for q in questions)
    return round(100.0 * sum(q.weight * q.value(a) for q, a in zip(questions, answers, strict=True)) / total, 1)


def _questions(raw: list[dict[str, Any]]) -> list[Question]:
    return [Question(str(q["text"]), str(q["kind"]), float(q["weight"])) for q in raw]


class Reviews:
    def __init__(self, store: Store) -> None:
        self.store = store

    # ---- scorecards ---------------------------------------------------------------------------------

    def create_scorecard(self, name: str, questions: list[Question], by: str) -> int:
        name = " ".join(name.split())
        if not 1 <= len(name) <= MAX_NAME_CHARS:
            raise IvrError(f"a scorecard's name is 1-{MAX_NAME_CHARS} characters")
        if not 1 <= len(questions) <= MAX_QUESTIONS:
            raise IvrError(f"a scorecard has 1-{MAX_QUESTIONS} questions")
        checked = [q.check() for q in questions]
        try:
            with self.store.engine.begin() as conn:
                result = conn.execute(schema.scorecards.insert().values(
                    name=name, questions=[asdict(q) for q in checked], created_by=by, created_at=datetime.now(UTC),
                    active=True))
        except IntegrityError:
            raise IvrError(f"there is a scorecard named {name} already") from None
        return _new_id(result.inserted_primary_key)

    def scorecards(self, active_only: bool = False) -> list[dict[str, Any]]:
        sc = schema.scorecards
        query = select(sc).order_by(sc.c.name)
        if active_only:
            query = query.where(sc.c.active.is_(True))
        with self.store.engine.connect() as conn:
            return [_scorecard(dict(r)) for r in conn.execute(query).mappings()]

    def scorecard(self, scorecard_id: int) -> dict[str, Any] | None:
        sc = schema.scorecards
        with self.store.engine.connect() as conn:
            row = conn.execute(select(sc).where(sc.c.id == scorecard_id)).mappings().first()
        return _scorecard(dict(row)) if row is not None else None

    def set_active(self, scorecard_id: int, active: bool) -> str | None:
        """Offer the scorecard on call pages again, or retire it; its name, or None when there is none."""
        sc = schema.scorecards
        with self.store.engine.begin() as conn:
            name = conn.execute(select(sc.c.name).where(sc.c.id == scorecard_id)).scalar()
            if name is not None:
                conn.execute(update(sc).where(sc.c.id == scorecard_id).values(active=active))
        return None if name is None else str(name)

    # ---- reviews and the reviewed status ------------------------------------------------------------

    def submit(self, call_id: str, scorecard_id: int, reviewer: str, answers: list[str]) -> float:
        """Store a filled scorecard of the call and mark the call reviewed with its score; the score."""
        card = self.scorecard(scorecard_id)
        if card is None or not card["active"]:
            raise IvrError("no such scorecard in use")
        value = score(card["questions"], answers)
        now = datetime.now(UTC)
        with self.store.engine.begin() as conn:
            self._mark(conn, call_id, reviewer, now, value)
            conn.execute(schema.reviews.insert().values(
                call_id=call_id, scorecard_id=scorecard_id, reviewer=reviewer, at=now, score=value,
                answers=[a.strip().lower() for a in answers]))
        return value

    def mark_reviewed(self, call_id: str, reviewer: str) -> None:
        """Mark the call reviewed now by `reviewer` (its score, if any, is kept)."""
        with self.store.engine.begin() as conn:
            self._mark(conn, call_id, reviewer, datetime.now(UTC))

    @staticmethod
    def _mark(conn: Connection, call_id: str, reviewer: str, at: datetime, value: float | None = None) -> None:
        values: dict[str, Any] = {"reviewed_at": at, "reviewed_by": reviewer}
        if value is not None:
            values["score"] = value
        done = conn.execute(update(schema.calls).where(schema.calls.c.id == call_id).values(**values))
        if not done.rowcount:
            raise IvrError("no such call")

    def of_call(self, call_id: str) -> list[dict[str, Any]]:
        """The call's reviews, newest first, each with its scorecard's name and questions beside the answers."""
        r, sc = schema.reviews, schema.scorecards
        query = (select(r, sc.c.name, sc.c.questions).join(sc, sc.c.id == r.c.scorecard_id)
                 .where(r.c.call_id == call_id).order_by(r.c.id.desc()))
        with self.store.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [{"id": row["id"], "reviewer": row["reviewer"], "at": utc(row["at"]), "score": row["score"],
                 "scorecard": row["name"],
                 "answers": list(zip(_questions(row["questions"]), row["answers"], strict=False))} for row in rows]

    # ---- comments -----------------------------------------------------------------------------------

    def add_comment(self, call_id: str, author: str, text: str) -> None:
        text = text.strip()
        if not 1 <= len(text) <= MAX_COMMENT_CHARS:
            raise IvrError(f"a comment is 1-{MAX_COMMENT_CHARS} characters")
        with self.store.engine.begin() as conn:
            if conn.execute(select(schema.calls.c.id).where(schema.calls.c.id == call_id)).first() is None:
                raise IvrError("no such call")
            conn.execute(schema.comments.insert().values(call_id=call_id, author=author, at=datetime.now(UTC),
                                                         text=text))

    def comments(self, call_id: str) -> list[dict[str, Any]]:
        """The call's comments, oldest first: author, at, text."""
        cm = schema.comments
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(cm).where(cm.c.call_id == call_id).order_by(cm.c.id)).mappings().all()
        return [{"author": row["author"], "at": utc(row["at"]), "text": row["text"]} for row in rows]


def _scorecard(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "questions": _questions(row["questions"]), "created_at": utc(row["created_at"])}


def _new_id(key: Any) -> int:
    assert key is not None, "the insert gave no key"
    return int(key[0])
