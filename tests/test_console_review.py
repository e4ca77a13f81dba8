"""Review at scale and QA without a browser: phrase search (SQLite FTS5, PostgreSQL, LIKE), sorting by an
index, the CSV export (every matching row, redacted, formula cells escaped), saved searches (a user's own
only), scorecards and their score, comments, the reviewed filter, and a store at step 4 brought to step 6."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from ivr.console.app import create_app
from ivr.console.csvexport import HEADER, safe_cell
from ivr.errors import IvrError
from ivr.store import CallFilter, Store, schema
from ivr.store.qa import Question, Reviews, score
from ivr.store.searches import SavedSearches
from tests.console_client import PASSWORD, login
from tests.test_store_support import add_call, console_store, postgres_server, store_config, utc_days_ago


@pytest.fixture(scope="module")
def pg():
    with postgres_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql", "like"])
def store(request, tmp_path, monkeypatch):
    url = request.getfixturevalue("pg").new_database() if request.param == "postgresql" else None
    if request.param == "like":
        import ivr.store.migrations as migrations

        monkeypatch.setattr(migrations, "sqlite_has_fts5", lambda conn: False)
    s = Store(store_config(tmp_path, url))
    try:
        yield s
    finally:
        s.close()


def ids(store, **kw):
    return [c["id"] for c in store.list_calls(CallFilter(**kw))]


def test_a_quoted_phrase_matches_its_words_in_order(store):
    add_call(store, "phrase", ["I lost my card on the bus"], live=False)
    add_call(store, "shuffled", ["my card, I lost it"], live=False)
    add_call(store, "apart", ["I lost the bus pass", "my card works"], live=False)
    assert sorted(ids(store, text="lost my card")) == ["apart", "phrase", "shuffled"]  # words: anywhere
    assert ids(store, text='"lost my card"') == ["phrase"]
    assert ids(store, text='"LOST MY CARD" bus') == ["phrase"]  # a phrase and a word together
    assert ids(store, text='"lost the bus" "card works"') == ["apart"]  # two phrases: both in the call
    assert ids(store, text='"card lost"') == []
    assert ids(store, text='"lost my card') == ["phrase"]  # an unclosed quote runs to the end
    assert ids(store, text='"my card works"', speaker="caller") == ["apart"]
    assert ids(store, text='"how can I help"', speaker="caller") == []  # the agent's greeting, not the caller's
    assert len(ids(store, text='"how can I help"')) == 3


def test_the_list_sorts_by_any_column_both_ways(store):
    for i, (call_id, said) in enumerate((("short", ["hi"]), ("long", ["one", "two", "three"]), ("mid", ["a", "b"]))):
        add_call(store, call_id, said, started_at=utc_days_ago(3 - i), live=False)
    assert ids(store) == ["mid", "long", "short"]  # newest first by default
    assert ids(store, sort="duration_ms") == ["long", "mid", "short"]
    assert ids(store, sort="duration_ms", descending=False) == ["short", "mid", "long"]
    assert ids(store, sort="duration_ms", descending=False, limit=1, offset=1) == ["mid"]
    with pytest.raises(IvrError, match="sorts by one of"):
        store.list_calls(CallFilter(sort="caller_hash"))


def test_a_sorted_filtered_page_reads_its_sort_index_not_the_rows(tmp_path):
    """SQLite's plan for a sorted page with filters: the column's sort index, walked in order (no sort of the
    matching rows); with a transcript search, the calls come from the per-call search documents' index and a
    phrase's turns from the turns' covering index."""
    store = Store(store_config(tmp_path))
    filters = {"outcome": "completed", "reviewed": False, "source": "sip", "score_min": 50.0, "escalated": False,
               "date_from": utc_days_ago(7).date()}
    searched = {**filters, "text": '"lost my card" stolen', "speaker": "caller"}

    def plan_of(f: CallFilter) -> list[str]:
        sql = str(store._sorted_query(f).limit(100).compile(store.engine, compile_kwargs={"literal_binds": True}))
        with store.engine.connect() as conn:
            return [str(row[-1]) for row in conn.execute(text("EXPLAIN QUERY PLAN " + sql))]

    try:
        for column in schema.SORT_COLUMNS:
            for descending in (True, False):
                plan = plan_of(CallFilter(sort=column, descending=descending, **filters))
                index = f"ix_calls_sort_{column}" + ("|ix_calls_started_id" if column == "started_at" else "")
                assert re.fullmatch(rf"(SCAN|SEARCH) calls USING INDEX ({index})( \(.*\))?", plan[0]), plan
                assert not any("TEMP B-TREE" in step for step in plan), (column, plan)
                plan = plan_of(CallFilter(sort=column, descending=descending, **searched))
                assert "ix_calls_doc" in plan[0] or f"ix_calls_sort_{column}" in plan[0], plan
                assert not any(re.match(r"SCAN calls( |$)", step) for step in plan), plan
                assert sum("COVERING INDEX ix_turns_search" in step for step in plan) == 1, plan  # the phrase
    finally:
        store.close()


def test_csv_cells_never_start_a_formula():
    for cell in ("=HYPERLINK(\"http://x\")", "+1 555", "-2+3", "@SUM(A1)", "\tx", "\r=1"):
        assert safe_cell(cell) == "'" + cell
    assert safe_cell("a = b") == "a = b" and safe_cell(None) == "" and safe_cell(12.5) == "12.5"


@pytest.fixture
def console(tmp_path):
    with console_store(tmp_path, PASSWORD) as store:
        yield store, create_app(store)


def csrf_of(page_text):
    return re.search(r'name="csrf" value="([^"]+)"', page_text).group(1)


def test_the_csv_has_every_matching_call_redacted_and_escaped(console):
    store, app = console
    start = utc_days_ago(1)
    for i in range(7):
        add_call(store, f"c{i}", [f"my card is 4111 1111 1111 111{i}"], caller=f"+1 555 010 44{i}{i}",
                 started_at=start + timedelta(minutes=i), live=False)
    add_call(store, "formula", ["=HYPERLINK(\"http://evil\") please"], started_at=start, live=False)
    add_call(store, "other", ["opening hours"], started_at=start, live=False)
    client, _ = login(app, "sam")
    response = client.get("/calls.csv?q=card&limit=2&offset=2&sort=started&order=asc")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith('attachment; filename="calls-')
    rows = list(csv.reader(io.StringIO(response.text)))
    assert tuple(rows[0]) == HEADER
    body = [dict(zip(HEADER, row, strict=True)) for row in rows[1:]]
    assert [r["call_id"] for r in body] == [f"c{i}" for i in range(7)]  # all of them, in the list's order
    assert body[3]["caller"] == "…33" and body[3]["last_words"] == "my card is [card number]"
    assert "4111" not in response.text and "555" not in response.text
    formula = list(csv.reader(io.StringIO(client.get("/calls.csv?q=hyperlink").text)))[1]
    assert formula[HEADER.index("last_words")] == "'=HYPERLINK(\"http://evil\") please"
    exports = [(e["action"], e["detail"]) for e in store.audit_log(2)]
    assert exports == [("export-list", "csv of 1 call(s)"), ("export-list", "csv of 7 call(s)")]
    assert client.get("/calls.csv?sort=nonsense").status_code == 422


def test_saved_searches_are_per_user_and_only_their_owner_deletes_them(console):
    store, app = console
    searches = SavedSearches(store)
    with store.engine.connect() as conn:
        users = dict(conn.execute(select(schema.users.c.name, schema.users.c.id)).all())
    ada_search = searches.save(users["ada"], "angry callers", "emotion=angry")
    assert searches.delete(users["sam"], ada_search) is None  # not sam's
    assert [s["name"] for s in searches.of_user(users["ada"])] == ["angry callers"]
    with store.engine.connect() as conn:  # the query (it may hold a number) is not stored in plain
        assert b"angry" not in bytes(conn.execute(text("SELECT query FROM saved_searches")).scalar())

    client, _ = login(app, "sam")
    csrf = csrf_of(client.get("/calls").text)
    saved = client.post("/saved-searches", data={"csrf": csrf, "name": "lost cards",
                                                 "query": 'q="lost my card"&sort=duration&offset=200&evil=1'})
    assert saved.status_code == 303 and saved.headers["location"] == "/calls?q=%22lost+my+card%22&sort=duration"
    page = client.get("/calls").text
    assert 'href="/calls?q=%22lost+my+card%22&amp;sort=duration">lost cards</a>' in page
    assert "angry callers" not in page  # ada's search is ada's
    assert client.post(f"/saved-searches/{ada_search}/delete", data={"csrf": csrf}).status_code == 404
    assert searches.of_user(users["ada"])[0]["id"] == ada_search
    bad = client.post("/saved-searches", data={"csrf": csrf, "name": "x", "query": "score_min=500"})
    assert bad.status_code == 422 and "score from 0 to 100" in bad.text
    assert client.post("/saved-searches", data={"csrf": csrf, "name": " ", "query": ""}).status_code == 422
    (mine,) = searches.of_user(users["sam"])
    assert client.post(f"/saved-searches/{mine['id']}/delete", data={"csrf": csrf}).status_code == 303
    assert searches.of_user(users["sam"]) == []
    actions = [(e["action"], e["detail"]) for e in store.audit_log(10) if e["action"].startswith("search-")]
    assert actions == [("search-delete", "lost cards"), ("search-save", "lost cards")]


def test_a_scorecards_score_is_the_weighted_mean_of_its_answers():
    questions = [Question("Greeted the caller?", "yesno", 3.0), Question("Clear answers", "scale5", 1.0)]
    assert score(questions, ["yes", "5"]) == 100.0
    assert score(questions, ["no", "1"]) == 0.0
    assert score(questions, ["yes", "3"]) == 87.5  # (3 * 1 + 1 * 0.5) / 4
    with pytest.raises(IvrError, match="with 1 to 5"):
        score(questions, ["yes", "6"])
    with pytest.raises(IvrError, match="every question"):
        score(questions, ["yes"])
    with pytest.raises(IvrError, match="weight"):
        Question("x", "yesno", 0).check()


def test_reviews_and_comments_on_a_call(console):
    store, app = console
    add_call(store, "rev", ["hello"], live=False)
    add_call(store, "todo", ["hello"], live=False)
    reviews = Reviews(store)
    card = reviews.create_scorecard("Basics", [Question("Greeted?", "yesno", 2), Question("Tone", "scale5")], "ada")
    with pytest.raises(IvrError, match="named Basics already"):
        reviews.create_scorecard("Basics", [Question("x", "yesno")], "ada")
    client, _ = login(app, "sam")
    csrf = csrf_of(client.get("/calls/rev").text)
    bad = client.post("/calls/rev/reviews", data={"csrf": csrf, "scorecard": str(card), "q0": "yes"})
    assert bad.status_code == 422 and "answer" in bad.text
    done = client.post("/calls/rev/reviews", data={"csrf": csrf, "scorecard": str(card), "q0": "yes", "q1": "2"})
    assert done.status_code == 303
    page = client.get("/calls/rev").text
    assert 'id="call-score">75.0</strong>' in page and 'id="reviewed-by">sam</strong>' in page
    assert client.post("/calls/rev/comments", data={"csrf": csrf, "text": "<script>x</script> ok"}).status_code == 303
    assert client.post("/calls/rev/comments", data={"csrf": csrf, "text": "  "}).status_code == 422
    page = client.get("/calls/rev").text
    assert "&lt;script&gt;x&lt;/script&gt; ok" in page and "<script>x</script>" not in page
    assert [c["author"] for c in reviews.comments("rev")] == ["sam"]
    assert ids(store, reviewed=True) == ["rev"] and ids(store, reviewed=False) == ["todo"]
    assert ids(store, score_min=70, score_max=80) == ["rev"] and ids(store, score_min=80) == []
    listed = client.get("/calls?reviewed=yes").text
    assert re.search(r'<td class="score">75.0</td>\s*<td class="reviewed">by sam, ', listed)
    store.delete_calls(["rev"])  # erasure takes the call's reviews and comments with it
    assert reviews.comments("rev") == [] and reviews.of_call("rev") == []


def test_a_store_before_step_6_is_brought_to_it(tmp_path):
    store = Store(store_config(tmp_path))
    add_call(store, "kept", ["hello"], live=False)
    with store.engine.begin() as conn:  # undo step 6 as a store made before it (later steps re-run)
        for index in (*schema.SORT_INDEXES, schema.TURN_SEARCH_INDEX):
            conn.execute(text(f"DROP INDEX {index.name}"))
        for table in ("comments", "reviews", "scorecards", "saved_searches"):
            conn.execute(text(f"DROP TABLE {table}"))
        for column in ("reviewed_at", "reviewed_by", "score"):
            conn.execute(text(f"ALTER TABLE calls DROP COLUMN {column}"))
        conn.execute(text("DELETE FROM schema_version WHERE version >= 6"))
    store.close()
    store = Store(store_config(tmp_path))
    try:
        assert ids(store, sort="score") == ["kept"] and ids(store, text='"hello"', speaker="caller") == ["kept"]
        Reviews(store).mark_reviewed("kept", "sam")
        assert ids(store, reviewed=True) == ["kept"]
        with store.engine.connect() as conn:
            names = set(conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'index'")).scalars())
        assert {i.name for i in (*schema.SORT_INDEXES, schema.TURN_SEARCH_INDEX)} <= names
    finally:
        store.close()
