"""Issue 15's console defects, as store, search and redaction logic (the browser side is in
tests/test_console_browser_fixes.py): caller-only search, mono imports kept mono with the recording's
own start, redaction of callers only, any form of a caller number, the call's topic as its intent,
filter menus without a scan of turns, paging totals, logout audited, role change and unlock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import soundfile as sf
from sqlalchemy import event

from ivr.call.privacy import redact_event, redact_text
from ivr.console.app import create_app
from ivr.console.auth import MAX_FAILED_LOGINS, Users
from ivr.store import CallFilter, Store, StoreWriter
from tests.console_client import PASSWORD, csrf_of, login
from tests.import_support import import_mono, mono_wav
from tests.test_store_support import add_call, call_events, console_store, store_config


@pytest.fixture
def store(tmp_path):
    with Store(store_config(tmp_path)) as s:
        yield s


# ---- item 2: search ------------------------------------------------------------------------------------

def test_search_looks_in_what_the_caller_said_not_the_agents_prompts(tmp_path):
    with console_store(tmp_path, PASSWORD) as store:
        add_call(store, "bal", ["what is my balance"])
        add_call(store, "card", ["I lost my card"])
        client, _ = login(create_app(store), "sam")

        def found(query):
            return sorted(c["id"] for c in client.get("/api/calls?" + query).json()["calls"])

        assert found("q=welcome") == []  # the greeting is the agent's: no call by default
        assert found("q=balance") == ["bal"]
        assert found("q=welcome&who=agent") == ["bal", "card"]
        assert found("q=welcome&who=anyone") == ["bal", "card"]
        assert found("q=lost&who=agent") == []
        assert client.get("/api/calls?q=x&who=nobody").status_code == 422


# ---- items 3 and 7: imports ------------------------------------------------------------------------------

def test_a_mono_import_is_stored_as_one_channel_with_the_recordings_start(store, tmp_path):
    call_id = import_mono(store, mono_wav(tmp_path / "call.wav", date="2026-03-04T05:06:07Z"))
    wav = store.read_recording(call_id)
    import io

    data, _rate = sf.read(io.BytesIO(wav), always_2d=True)
    assert data.shape[1] == 1  # not two identical channels
    assert store.get_call(call_id)["started_at"] == datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def test_an_import_without_a_date_tag_takes_the_time_in_its_name(store, tmp_path):
    call_id = import_mono(store, mono_wav(tmp_path / "line4-20250102-030405.wav"))
    assert store.get_call(call_id)["started_at"] == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_an_import_without_a_date_starts_its_length_before_it_was_last_written(store, tmp_path):
    path = mono_wav(tmp_path / "plain.wav", seconds=2.0)
    written = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC).timestamp()
    import os

    os.utime(path, (written, written))
    call_id = import_mono(store, path)
    assert store.get_call(call_id)["started_at"] == datetime(2024, 6, 1, 11, 59, 58, tzinfo=UTC)


# ---- item 4: redaction -------------------------------------------------------------------------------

def test_the_agents_prompts_and_amounts_are_not_redacted_callers_digits_are():
    menu = "Or press one, two, three, four, or zero."
    assert redact_event({"type": "say", "text": menu})["text"] == menu
    assert redact_event({"type": "say", "text": "Your balance is $1,250.40."})["text"] == "Your balance is $1,250.40."
    assert redact_text("I paid 1,250.40 dollars") == "I paid 1,250.40 dollars"
    assert redact_text("it was $1,250.40") == "it was $1,250.40"
    # read-backs of the caller's number are still hidden in the agent's words
    assert "12345678" not in redact_event({"type": "say", "text": "I heard 1 2 3 4 5 6 7 8. Right?"})["text"]
    # the caller's digit strings still go, spoken or written
    assert redact_event({"type": "transcript", "text": "one two three four five six"})["text"] == "[number]"
    assert redact_text("my account is 12345678") == "my account is [account number]"
    assert redact_text("card 4111 1111 1111 1111") == "card [card number]"


def test_the_stored_agent_turns_keep_their_words(store):
    events = call_events("c", ["my account is 12345678"])
    events.insert(3, {"t_ms": 10.0, "type": "say", "text": "Press one, two, three, four, or zero. "
                      "Your balance is $1,250.40.", "barge_in": True})
    StoreWriter(store, background=False).apply([(datetime.now(UTC), e) for e in events])
    turns = store.get_call("c")["turns"]
    agent = " ".join(t["text"] for t in turns if t["speaker"] == "agent")
    caller = " ".join(t["text"] for t in turns if t["speaker"] == "caller")
    assert "one, two, three, four, or zero" in agent and "$1,250.40" in agent
    assert "12345678" not in caller


# ---- item 5: caller numbers ---------------------------------------------------------------------------

@pytest.mark.parametrize("typed", ["+15550104477", "+1 (555) 010-4477", "5550104477", "(555) 010-4477",
                                   "555-010-4477", "010-4477", "4477", "477", "77", "sip:+15550104477@pbx"])
def test_the_caller_filter_takes_any_form_of_the_number(store, typed):
    add_call(store, "mine", ["hello"], caller="+1 555 010 4477")
    add_call(store, "other", ["hello"], caller="+1 666 020 5588")
    assert [c["id"] for c in store.list_calls(CallFilter(caller=typed))] == ["mine"]


def test_another_area_code_is_another_caller(store):
    add_call(store, "mine", ["hello"], caller="+1 555 010 4477")
    add_call(store, "elsewhere", ["hello"], caller="+1 666 010 4477")
    assert [c["id"] for c in store.list_calls(CallFilter(caller="(555) 010-4477"))] == ["mine"]
    assert sorted(c["id"] for c in store.list_calls(CallFilter(caller="4477"))) == ["elsewhere", "mine"]


# ---- item 6: the call's intent -------------------------------------------------------------------------

def test_the_calls_intent_is_its_topic_not_the_last_answer(store):
    add_call(store, "bal", ["what's my balance", "no that's all"], intents=["balance", "no"])
    assert store.get_call("bal")["intent"] == "balance"
    add_call(store, "only-no", ["no"], intents=["no"])
    assert store.get_call("only-no")["intent"] == "no"


def test_a_call_routed_by_keyword_has_the_node_it_went_to_as_intent(store):
    events = call_events("kw", ["balance"])
    for e in events:  # no NLU result, as when a keyword matched: the dialog went from the menu to 'balance'
        if e["type"] == "dialog" and e["event"] == "Utterance":
            e["node"] = "balance"
    StoreWriter(store, background=False).apply([(datetime.now(UTC), e) for e in events])
    assert store.get_call("kw")["intent"] == "balance"
    assert [c["id"] for c in store.list_calls(CallFilter(intent="balance"))] == ["kw"]


# ---- item 10: paging and filter menus -------------------------------------------------------------------

def test_the_list_page_has_a_total_and_reads_no_turns_for_its_menus(tmp_path):
    with console_store(tmp_path, PASSWORD) as store:
        for i in range(7):
            add_call(store, f"c{i}", ["hello"], intents=["balance"], emotions=[{"angry": 0.9, "neutral": 0.1}])
        app = create_app(store)
        client, _ = login(app, "sam")
        statements: list[str] = []

        def seen(_conn, _cursor, statement, *_args):
            statements.append(statement)

        event.listen(store.engine, "before_cursor_execute", seen)
        try:
            page = client.get("/calls?limit=3&offset=3")
        finally:
            event.remove(store.engine, "before_cursor_execute", seen)
        assert page.status_code == 200
        assert "Showing 4–6 of 7" in page.text and 'id="calls-next"' in page.text and 'id="calls-prev"' in page.text
        assert '<option value="balance"' in page.text and '<option value="angry"' in page.text
        assert not [s for s in statements if "FROM turns" in s], statements
        body = client.get("/api/calls?limit=2").json()
        assert body["total"] == 7 and len(body["calls"]) == 2


def test_the_audit_log_pages_with_a_total(tmp_path):
    with console_store(tmp_path, PASSWORD) as store:
        for i in range(250):
            store.audit("cli", "test", None, str(i))
        client, _ = login(create_app(store), "ada")
        first = client.get("/admin/audit")
        total = store.count_audit()
        assert total > 250 and f"Showing 1–100 of {total}" in first.text
        last = client.get(f"/admin/audit?offset={total - 1}")
        assert f"Showing {total}–{total} of {total}" in last.text and 'id="audit-next"' not in last.text


def test_an_old_store_gets_its_filter_values_from_what_it_holds(tmp_path):
    from ivr.store import schema
    from ivr.store.migrations import _v3_caller_match_and_filter_values

    with Store(store_config(tmp_path)) as store:
        add_call(store, "c", ["hi"], intents=["hours"], emotions=[{"sad": 1.0}], outcome="completed")
        with store.engine.begin() as conn:
            conn.execute(schema.filter_values.delete())
        assert store.distinct_values("intent") == []
        with store.engine.begin() as conn:
            _v3_caller_match_and_filter_values(conn)
        assert store.distinct_values("intent") == ["hours"] and store.distinct_values("emotion") == ["sad"]
        assert store.distinct_values("outcome") == ["completed"]


# ---- item 12: audit and user management ----------------------------------------------------------------

def test_logout_is_audited_and_an_admin_changes_roles_and_unlocks(tmp_path):
    with console_store(tmp_path, PASSWORD) as store:
        app = create_app(store)
        sam, _ = login(app, "sam")
        assert sam.post("/logout", data={"csrf": csrf_of(sam)}).status_code == 303
        assert ("sam", "logout") in [(e["user_name"], e["action"]) for e in store.audit_log()]

        users = Users(store)
        for _ in range(MAX_FAILED_LOGINS):
            users.authenticate("sam", "wrong password!")
        assert users.authenticate("sam", PASSWORD)[1] == "locked"
        ada, _ = login(app, "ada")
        csrf = csrf_of(ada)
        assert ada.post("/admin/users/sam/unlock", data={"csrf": csrf}).status_code == 303
        assert users.authenticate("sam", PASSWORD)[0] is not None
        assert ada.post("/admin/users/sam/role", data={"csrf": csrf, "role": "admin"}).status_code == 303
        assert {u["name"]: u["role"] for u in users.list()}["sam"] == "admin"
        refused = ada.post("/admin/users/ada/role", data={"csrf": csrf, "role": "supervisor"})
        assert "your own role" in ada.get(refused.headers["location"]).text
        actions = [(e["action"], e["detail"]) for e in store.audit_log()]
        assert ("user-unlock", "sam") in actions and ("user-role", "sam (admin)") in actions


def test_a_filter_value_noted_twice_is_no_error(store):
    with store.engine.begin() as conn:  # as two writers bringing the same new value at once
        store.note_filter_value(conn, "intent", "hours")
        store.note_filter_value(conn, "intent", "hours")
    add_call(store, "c", ["hi"], intents=["hours"])
    assert store.distinct_values("intent") == ["hours"] and store.get_call("c")["intent"] == "hours"
