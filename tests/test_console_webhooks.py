"""The console's Webhooks page: the outbox's dead-lettered, pending and delivered events for admins, with
Retry (CSRF-checked, audited); supervisors get 403."""

from __future__ import annotations

import pytest

from ivr import webhooks
from ivr.console.app import create_app
from ivr.store import outbox
from tests.console_client import csrf_of, login
from tests.test_store_support import console_store


@pytest.fixture
def app(tmp_path):
    with console_store(tmp_path, "correct horse battery") as store:
        with store.engine.begin() as conn:
            ids = [outbox.enqueue(conn, kind, call_id, {}) for kind, call_id in (
                ("dialog.failed", "call-a"), ("call.escalated", "call-b"), ("call.started", "call-c"),
                ("call.ended", "call-d"))]
        one = webhooks.RetryPolicy(max_attempts=1)
        for item in outbox.claim(store, "w", 30.0, limit=3):  # two dead, one delivered, one left pending
            result = webhooks.Result(200) if item.call_id == "call-c" else webhooks.Result(None, "URLError: refused")
            outbox.record(store, item, "w", result, one)
        app = create_app(store)
        app.state.ids = ids
        yield app


def test_admins_see_dead_letters_and_retry_them(app):
    store, ids = app.state.store, app.state.ids
    client, _ = login(app, "ada")
    page = client.get("/admin/webhooks")
    assert page.status_code == 200
    assert "2 dead-lettered" in page.text and ids[0] in page.text and ids[1] in page.text
    assert ids[2] not in page.text and "URLError: refused" in page.text and 'href="/calls/call-a"' in page.text
    assert ids[3] in client.get("/admin/webhooks?status=pending").text
    assert ids[2] in client.get("/admin/webhooks?status=delivered").text
    assert all(i in client.get("/admin/webhooks?status=all").text for i in ids)
    assert 'href="/admin/webhooks"' in client.get("/calls").text  # in the admin's menu
    csrf = csrf_of(client)
    assert client.post("/admin/webhooks/retry", data={"event_id": ids[0]}).status_code == 403  # no CSRF token
    done = client.post("/admin/webhooks/retry", data={"event_id": ids[0], "csrf": csrf})
    assert done.status_code == 303 and outbox.counts(store) == {"pending": 2, "delivered": 1, "dead": 1}
    assert "1 event(s) will be sent again" in client.get(done.headers["location"]).text
    assert client.post("/admin/webhooks/retry", data={"event_id": ids[2], "csrf": csrf}).status_code == 303
    assert outbox.counts(store)["delivered"] == 1  # a delivered event is not sent again
    client.post("/admin/webhooks/retry", data={"event_id": "all", "csrf": csrf})
    assert outbox.counts(store) == {"pending": 3, "delivered": 1, "dead": 0}
    audit = [(e["user_name"], e["action"], e["detail"]) for e in store.audit_log()]
    assert ("ada", "webhook-retry", ids[0]) in audit and ("ada", "webhook-retry", "1 event(s)") in audit


def test_supervisors_do_not_see_webhooks(app):
    client, _ = login(app, "sam")
    assert client.get("/admin/webhooks").status_code == 403
    assert client.post("/admin/webhooks/retry", data={"event_id": "all", "csrf": csrf_of(client)}).status_code == 403
    assert outbox.counts(app.state.store)["dead"] == 2
    assert 'href="/admin/webhooks"' not in client.get("/calls").text
