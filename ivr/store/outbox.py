"""The webhook outbox: events written in the same transaction as the call update that causes them, then
delivered at least once by a worker thread, with exponential backoff and a dead-letter state.

Rows go pending -> delivered, or pending -> dead after the policy's last attempt (`retry` puts a dead
row back to pending). Several processes may share one store (`ivr serve` above 3 calls runs several
workers): a worker claims a due row with one conditional UPDATE that sets a lease (claimed_until) only
if nobody holds one, so two workers never post the same row at once; a worker that dies mid-delivery
leaves a lease that runs out, and another worker takes the row. A receiver can still see an event twice
(its answer was lost; a lease ran out during a slow POST): the Idempotency-Key header is the event's id,
the same on every attempt, and the receiver de-duplicates on it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, func, or_, select, update

from ivr import webhooks
from ivr.store import schema
from ivr.store.db import Store, utc

log = logging.getLogger(__name__)

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
STATUSES = (PENDING, DELIVERED, DEAD)
POLL_S = 1.0
"""How often a worker looks for due rows written by other processes (its own wake it at once)."""
BATCH = 20
"""Rows posted one after another before the worker looks at the time again."""
SCAN_MORE = 8
"""Candidates looked at beyond those wanted, in case other workers take some first."""
LEASE_MARGIN_S = 30.0
"""A claim's lease: the POST's time limit plus this."""
KEEP_DELIVERED_DAYS = 7.0
"""Delivered events are kept this long (the console lists them), then deleted by a worker."""
PURGE_EVERY_S = 3600.0


def enqueue(conn: Connection, event_type: str, call_id: str | None, data: dict[str, Any],
            created: datetime | None = None) -> str:
    """Add an event to the outbox inside the caller's transaction; returns its id (the idempotency key)."""
    now = datetime.now(UTC)
    created = created or now
    event_id = webhooks.new_event_id()
    body = webhooks.envelope(event_id, event_type, call_id, data, created.timestamp())
    conn.execute(schema.outbox.insert().values(
        event_id=event_id, event_type=event_type, call_id=call_id, body=body.decode("utf-8"), status=PENDING,
        attempts=0, next_attempt_at=now, created_at=created))
    return event_id


@dataclass(frozen=True)
class Claimed:
    id: int
    event_id: str
    event_type: str
    call_id: str | None
    body: bytes
    attempts: int


def claim(store: Store, worker: str, lease_s: float, limit: int = BATCH, now: datetime | None = None) -> list[Claimed]:
    """Up to `limit` due rows this worker now holds a lease on (none that another worker holds)."""
    now = now or datetime.now(UTC)
    o = schema.outbox.c
    free = or_(o.claimed_until.is_(None), o.claimed_until < now)
    due = and_(o.status == PENDING, o.next_attempt_at <= now, free)
    until = now + timedelta(seconds=lease_s)
    got: list[Claimed] = []
    with store.engine.connect() as conn:
        candidates = conn.execute(select(o.id).where(due).order_by(o.id).limit(limit + SCAN_MORE)).scalars().all()
    for row_id in candidates:
        if len(got) >= limit:
            break
        with store.engine.begin() as conn:  # one short transaction per row: the UPDATE is the claim
            result = conn.execute(update(schema.outbox).where(and_(o.id == row_id, due)).values(
                claimed_until=until, claimed_by=worker))
            if result.rowcount != 1:
                continue  # another worker took it between the SELECT and the UPDATE
            row = conn.execute(select(o.id, o.event_id, o.event_type, o.call_id, o.body, o.attempts).where(
                o.id == row_id)).one()
        got.append(Claimed(row.id, row.event_id, row.event_type, row.call_id, row.body.encode("utf-8"),
                           int(row.attempts)))
    return got


def record(store: Store, item: Claimed, worker: str, result: webhooks.Result, policy: webhooks.RetryPolicy,
           now: datetime | None = None) -> str:
    """Write an attempt's result on the row (only while this worker's lease holds it); the new status."""
    now = now or datetime.now(UTC)
    o = schema.outbox.c
    attempts = item.attempts + 1
    values: dict[str, Any] = {"attempts": attempts, "claimed_until": None, "claimed_by": None,
                              "last_status": result.status, "last_error": result.error[:200] or None}
    if result.ok:
        values.update(status=DELIVERED, delivered_at=now, last_error=None)
    elif attempts >= policy.max_attempts:
        values.update(status=DEAD)
    else:
        values.update(next_attempt_at=now + timedelta(seconds=policy.delay_s(attempts)))
    with store.engine.begin() as conn:
        conn.execute(update(schema.outbox).where(and_(o.id == item.id, o.claimed_by == worker)).values(**values))
    return str(values.get("status", PENDING))


def list_events(store: Store, status: str | None = None, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    """Outbox rows, newest first, without their bodies."""
    o = schema.outbox.c
    query = select(o.id, o.event_id, o.event_type, o.call_id, o.status, o.attempts, o.next_attempt_at,
                   o.created_at, o.delivered_at, o.last_status, o.last_error).order_by(o.id.desc())
    if status:
        query = query.where(o.status == status)
    with store.engine.connect() as conn:
        rows = conn.execute(query.limit(max(1, min(limit, 1000))).offset(max(0, offset))).mappings().all()
    return [{**dict(r), "next_attempt_at": utc(r["next_attempt_at"]), "created_at": utc(r["created_at"]),
             "delivered_at": utc(r["delivered_at"])} for r in rows]


def counts(store: Store) -> dict[str, int]:
    o = schema.outbox.c
    with store.engine.connect() as conn:
        found: dict[str, int] = {str(s): int(n) for s, n in conn.execute(
            select(o.status, func.count()).group_by(o.status))}
    return {s: int(found.get(s, 0)) for s in STATUSES}


def due_count(store: Store, now: datetime | None = None) -> int:
    """Pending events due now (claimed ones included)."""
    o = schema.outbox.c
    query = select(func.count()).select_from(schema.outbox).where(
        and_(o.status == PENDING, o.next_attempt_at <= (now or datetime.now(UTC))))
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def next_due(store: Store) -> datetime | None:
    """When the next pending event that no worker holds is due (None: there is none)."""
    o = schema.outbox.c
    free = or_(o.claimed_until.is_(None), o.claimed_until < datetime.now(UTC))
    with store.engine.connect() as conn:
        value = conn.execute(select(func.min(o.next_attempt_at)).where(o.status == PENDING, free)).scalar()
    return utc(value)


def retry(store: Store, event_ids: list[str] | None = None) -> int:
    """Dead events (those named, or all) back to pending, due now, with their attempts counted afresh."""
    o = schema.outbox.c
    where = [o.status == DEAD]
    if event_ids is not None:
        where.append(o.event_id.in_(event_ids))
    with store.engine.begin() as conn:
        result = conn.execute(update(schema.outbox).where(*where).values(
            status=PENDING, attempts=0, next_attempt_at=datetime.now(UTC), claimed_until=None, claimed_by=None))
    return int(result.rowcount or 0)


def purge_delivered(store: Store, older_than_days: float) -> int:
    cutoff = datetime.now(UTC) - timedelta(days=older_than_days)
    o = schema.outbox.c
    with store.engine.begin() as conn:
        result = conn.execute(delete(schema.outbox).where(and_(o.status == DELIVERED, o.delivered_at < cutoff)))
    return int(result.rowcount or 0)


Poster = Callable[[str, bytes, dict[str, str], float], webhooks.Result]


class OutboxWorker(threading.Thread):
    """Delivers the outbox's due events to `url`, signed with `secret` (when given), until `stop()`."""

    def __init__(self, store: Store, url: str, secret: bytes | None, policy: webhooks.RetryPolicy | None = None,
                 poll_s: float = POLL_S, name: str | None = None, post: Poster = webhooks.post,
                 on_result: Callable[[str, str], None] | None = None) -> None:
        super().__init__(name="webhook-outbox", daemon=True)
        self.store = store
        self.url = url
        self.secret = secret
        self.policy = policy or webhooks.RetryPolicy()
        self.poll_s = poll_s
        self.worker = name or f"{socket.gethostname()[:40]}:{os.getpid()}:{id(self) % 10000}"
        self._post = post
        self.on_result = on_result
        """Told (event type, "delivered" | "failed" | "dead") after each attempt (e.g. a metric)."""
        self._halt = threading.Event()
        self._wake = threading.Event()
        self.delivered = 0
        self.failed_attempts = 0
        self.dead = 0
        self._next_purge = 0.0

    def wake(self) -> None:
        """New rows are committed: look now instead of at the next poll."""
        self._wake.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._halt.set()
        self._wake.set()
        if self.is_alive():
            self.join(timeout_s)

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                if time.monotonic() >= self._next_purge:
                    self._next_purge = time.monotonic() + PURGE_EVERY_S
                    purge_delivered(self.store, KEEP_DELIVERED_DAYS)
                busy = self.run_once() > 0
            except Exception as exc:  # the store is unreachable for a moment: try again at the next poll
                log.warning("webhook outbox: %s: %s", type(exc).__name__, exc)
                busy = False
            if not busy:
                self._wake.wait(self._idle_s())
                self._wake.clear()

    def _idle_s(self) -> float:
        """Until the next pending event is due (a retry's backoff), at most poll_s."""
        try:
            due = next_due(self.store)
        except Exception:
            return self.poll_s
        if due is None:
            return self.poll_s
        return min(self.poll_s, max(0.01, (due - datetime.now(UTC)).total_seconds()))

    def run_once(self) -> int:
        """Post due rows, each claimed just before its POST (a lease never waits behind other POSTs, and
        a stopping worker holds none it has not tried); how many were tried."""
        tried = 0
        while tried < BATCH and not self._halt.is_set():
            items = claim(self.store, self.worker, self.policy.timeout_s + LEASE_MARGIN_S, limit=1)
            if not items:
                break
            self.deliver(items[0])
            tried += 1
        return tried

    def deliver(self, item: Claimed) -> str:
        attempt = item.attempts + 1
        head = webhooks.headers(item.event_id, item.event_type, item.body, self.secret, attempt)
        started = time.monotonic()
        result = self._post(self.url, item.body, head, self.policy.timeout_s)
        status = record(self.store, item, self.worker, result, self.policy)
        if self.on_result is not None:
            self.on_result(item.event_type, "failed" if status == PENDING else status)
        if status == DELIVERED:
            self.delivered += 1
            log.info("webhook %s (call %s) delivered on attempt %d in %.0f ms", item.event_type, item.call_id,
                     attempt, 1000 * (time.monotonic() - started))
        elif status == DEAD:
            self.dead += 1
            log.error("webhook %s (call %s) failed %d times (%s): dead-lettered; `ivr store outbox retry` "
                      "or the console's Webhooks page sends it again", item.event_type, item.call_id, attempt,
                      result.error or result.status)
        else:
            self.failed_attempts += 1
            log.warning("webhook %s (call %s) attempt %d failed (%s); next in %.1f s", item.event_type,
                        item.call_id, attempt, result.error or result.status, self.policy.delay_s(attempt))
        return status
