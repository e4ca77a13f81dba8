"""`ivr serve`'s webhooks: with a call store, an outbox worker (ivr.store.outbox) that delivers the events
the calls' writers put in the outbox; without one, the runner posts transfer events itself (in memory).

Every worker process behind the Kamailio front runs its own outbox worker over the shared store; their
leases keep them from posting the same event at once.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from prometheus_client import Counter

from ivr.store.db import Store
from ivr.store.hookevents import WebhookOptions
from ivr.store.outbox import OutboxWorker, due_count
from ivr.webhooks import RetryPolicy
from telephony.sip.config import SipConfig

log = logging.getLogger(__name__)

DELIVERIES = Counter("ivr_webhook_deliveries_total", "Webhook POST attempts by event type and result: delivered, "
                     "failed (retried later) or dead (dead-lettered after the last attempt)", ["event", "result"])
FINAL_DELIVERY_S = 3.0
"""At shutdown, how long the worker may go on posting what is due (until an attempt fails: the receiver is
down); the rest waits in the outbox for the next start."""


def retry_policy(config: SipConfig) -> RetryPolicy:
    return RetryPolicy(base_s=config.webhook_retry_s, cap_s=config.webhook_retry_max_s,
                       max_attempts=config.webhook_max_attempts, timeout_s=config.webhook_timeout_s)


def start_webhooks(config: SipConfig, store: Store | None, observers: list[Any]) -> OutboxWorker | None:
    """The outbox worker, started, with the store observers told to write webhook events; None without
    a webhook URL or a store (then transfers are posted in memory by the runner)."""
    if not config.webhook_url:
        return None
    secret = config.webhook_secret()
    if secret is None:
        log.warning("webhooks are not signed: set webhook_secret_env (--webhook-secret-env) to the name of a "
                    "variable holding a secret")
    if store is None:
        log.warning("webhooks without a call store: only transfers are sent, retried in memory, lost on restart")
        return None
    worker = OutboxWorker(store, config.webhook_url, secret, retry_policy(config), on_result=count_delivery)
    options = WebhookOptions(console_url=config.webhook_console_url, wake=worker.wake)
    for observer in observers:
        if hasattr(observer, "webhooks"):
            observer.webhooks = options
    worker.start()
    return worker


def count_delivery(event_type: str, result: str) -> None:
    DELIVERIES.labels(event=event_type, result=result).inc()


def stop_webhooks(worker: OutboxWorker | None) -> None:
    """After the calls have closed: their last events get a moment, then the worker stops."""
    if worker is None:
        return
    deadline = time.monotonic() + FINAL_DELIVERY_S
    failures = worker.failed_attempts + worker.dead
    worker.wake()
    while time.monotonic() < deadline and worker.is_alive() and worker.failed_attempts + worker.dead == failures:
        try:
            if not due_count(worker.store):
                break
        except Exception:  # the store is gone: nothing more to send now
            break
        time.sleep(0.1)
    worker.stop(max(0.5, deadline - time.monotonic()))
