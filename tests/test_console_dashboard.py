"""The KPI dashboard's figures over calls written through the store's writer (containment, transfers by
reason, abandons, no-inputs, handle time, latency, negativity, phrases not understood; by date, flow and
queue), the writer's per-call figures, and the console benchmark on a small store (every page answered)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from ivr.console import bench
from ivr.console.app import create_app
from ivr.store import StoreWriter
from tests.console_client import PASSWORD, login
from tests.test_store_support import call_events, console_store

DAY1 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
DAY2 = datetime(2026, 3, 3, 15, 30, tzinfo=UTC)


def write_call(store, call_id, started_at, texts, negativity, flow="example-bank", no_input=False, source="sip",
               **kwargs):
    """A call through StoreWriter, as a session logs it: its flow, caller negativity, a no-input timeout."""
    events = call_events(call_id, texts, emotions=[{"neutral": 0.5, "angry": 0.5}] * len(texts), **kwargs)
    events[0]["flow"] = flow
    for event in events:
        if event["type"] == "emotion":
            event["negativity"] = negativity
    if no_input:
        events.insert(5, {"t_ms": 2100.0, "type": "no_input", "timeout_ms": 6000})
    writer = StoreWriter(store, source=source, background=False)
    writer.apply([(started_at + timedelta(milliseconds=e["t_ms"]), e) for e in events])
    writer.finish([], None)
    assert not writer.failed


def write_first_calls(store):
    """Two calls on DAY1 (a balance, a lost card handed over) and a no-input hang-up on DAY2."""
    write_call(store, "a", DAY1, ["what is my balance", "no that's all"], 0.2, intents=["balance", "no"])
    write_call(store, "b", DAY1 + timedelta(hours=1), ["I lost my card"], 0.8, intents=["lost_card"],
               outcome="transferred", reason="caller asked for an agent")
    write_call(store, "c", DAY2, ["do you sell insurance"], 0.5, no_input=True, outcome="caller-hangup",
               reason="caller hung up")


@pytest.fixture
def site(tmp_path):
    with console_store(tmp_path, PASSWORD) as store:
        write_first_calls(store)
        write_call(store, "d", DAY2, ["Do you sell insurance", "I lost my card"], 0.5, flow="card-services",
                   intents=["", "lost_card"], outcome="transferred", reason="no-match")
        write_call(store, "imp", DAY1, ["an imported recording"], 0.9, source="import")
        client, _ = login(create_app(store), "sam")
        yield store, client


def test_the_writer_keeps_each_calls_dashboard_figures(site):
    store, _client = site
    c = store.get_call("c")
    assert (c["flow"], c["no_inputs"], c["replies"], c["reply_ms_total"], c["negativity"]) == (
        "example-bank", 1, 1, 1300.0, 0.5)
    assert [t["nlu_miss"] for t in c["turns"] if t["speaker"] == "caller"] == ["no-match"]  # no NLU, stayed put
    d = store.get_call("d")
    assert [t["nlu_miss"] for t in d["turns"] if t["speaker"] == "caller"] == ["out-of-scope", None]
    assert [t["nlu_miss"] for t in store.get_call("a")["turns"] if t["speaker"] == "caller"] == [None, None]


def test_the_dashboard_counts_the_calls_written(site):
    _store, client = site
    data = client.get("/api/dashboard").json()
    t = data["totals"]
    assert (t["calls"], t["ended"]) == (4, 4)  # the imported recording is not counted
    assert (t["containment"], t["transfer_rate"], t["abandon_rate"], t["no_input_rate"]) == (0.5, 0.5, 0.25, 0.25)
    assert (t["latency_ms"], t["negativity"]) == (1300.0, 0.5)
    assert t["handle_s"] == pytest.approx((10500 + 6500 + 6500 + 10500) / 4 / 1000)
    assert {r["reason"]: (r["calls"], r["rate"]) for r in data["transfer_reasons"]} == {
        "caller asked for an agent": (1, 0.25), "no-match": (1, 0.25)}
    assert data["not_understood"] == [{"phrase": "do you sell insurance", "turns": 2}]  # case aside
    assert [(d["day"], d["calls"]) for d in data["per_day"]] == [("2026-03-02", 2), ("2026-03-03", 2)]
    assert [h["calls"] for h in data["per_hour_of_day"] if h["calls"]] == [1, 1, 2]  # 10:00, 11:00, 15:00


def test_the_dashboard_filters_by_date_flow_and_queue(site):
    _store, client = site

    def totals(query):
        return client.get("/api/dashboard?" + query).json()["totals"]

    day1 = totals("date_from=2026-03-02&date_to=2026-03-02")
    assert (day1["calls"], day1["containment"], day1["abandon_rate"]) == (2, 0.5, 0.0)
    assert client.get("/api/dashboard?date_from=2026-03-02&date_to=2026-03-02").json()["not_understood"] == []
    assert totals("flow=card-services")["calls"] == 1
    queue = totals("queue=sip:agents@example.com")
    assert (queue["calls"], queue["containment"]) == (2, 0.0)
    page = client.get("/dashboard?date_from=2026-03-03")
    assert page.status_code == 200
    assert 'id="kpi-calls">2<' in page.text and "do you sell insurance" in page.text
    assert client.get("/api/dashboard?date_from=March").status_code == 422
    assert client.get("/api/dashboard?date_from=2026-03-03&date_to=2026-03-02").status_code == 422
    assert client.get("/dashboard?flow=" + "x" * 300).status_code == 422


def test_the_console_benchmark_times_every_page_of_a_small_store(tmp_path):
    out = tmp_path / "console.json"
    assert bench.main(["--calls", "300", "--repeat", "1", "--json", str(out), "--store", str(tmp_path / "s")]) == 0
    report = json.loads(out.read_text())
    assert report["store"]["total_calls"] == 300 and report["store"]["total_turns"] > 600
    assert list(report["pages"]) == [name for name, _url in bench.PAGES]
    assert {name: row["status"] for name, row in report["pages"].items() if row["status"] != 200} == {}
    assert all(row["p50_ms"] > 0 and row["size_bytes"] > 0 for row in report["pages"].values())


def test_the_sums_summed_again_from_the_calls_match_the_writers(site):
    """Migration 5 (and the benchmark) sum the stored calls at once; the writer adds each call as it goes:
    the dashboard shows the same either way."""
    from ivr.store import kpistore

    store, client = site
    kept = client.get("/api/dashboard").json()
    with store.engine.begin() as conn:
        kpistore.rebuild(conn)
    assert client.get("/api/dashboard").json() == kept


def test_the_dashboard_reads_the_same_on_postgresql(tmp_path):
    """The hourly sums' upserts, the UTC hours and the phrase counts on a real PostgreSQL (skipped without one)."""
    from ivr.console import kpis
    from ivr.store import Store, kpistore
    from tests.test_store_support import postgres_server, store_config

    with postgres_server() as server:
        store = Store(store_config(tmp_path, server.new_database()))
        try:
            write_call(store, "a", DAY1, ["what is my balance"], 0.2, intents=["balance"])
            write_call(store, "b", DAY1 + timedelta(hours=1), ["I lost my card"], 0.8, intents=["lost_card"],
                       outcome="transferred", reason="caller asked for an agent")
            write_call(store, "c", DAY2, ["do you sell insurance"], 0.5, no_input=True, outcome="caller-hangup",
                       reason="caller hung up")
            data = kpis.dashboard(store, kpis.KpiFilter())
            t = data["totals"]
            assert (t["calls"], t["containment"], t["abandon_rate"], t["no_input_rate"]) == (3, 0.6667, 0.3333, 0.3333)
            assert [d["day"] for d in data["per_day"]] == ["2026-03-02", "2026-03-03"]
            assert data["transfer_reasons"] == [{"reason": "caller asked for an agent", "calls": 1, "rate": 0.3333}]
            assert data["not_understood"] == [{"phrase": "do you sell insurance", "turns": 1}]
            day1 = kpis.KpiFilter(date_from=DAY1.date(), date_to=DAY1.date(), flow="example-bank")
            assert kpis.dashboard(store, day1)["totals"]["calls"] == 2
            with store.engine.begin() as conn:
                kpistore.rebuild(conn)
            assert kpis.dashboard(store, kpis.KpiFilter()) == data
        finally:
            store.close()


def test_calls_stored_before_step_5_get_their_figures_from_their_events(site):
    """Reply latencies, no-inputs and negativity of calls stored before the writer kept them: step 5 reads
    them from the calls' events (and sums the dashboard's figures again)."""
    from sqlalchemy import text

    from ivr.store import Store
    from ivr.store.migrations import MIGRATIONS

    store, _client = site
    kept = store.get_call("c")
    step_5 = {number: step for number, _what, step in MIGRATIONS}[5]
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE calls SET replies = NULL, reply_ms_total = NULL, no_inputs = NULL, "
                          "negativity = NULL"))
        conn.execute(text("DELETE FROM kpi_hours"))
        step_5(conn)  # as on a store of version 4 (it leaves what it finds done as it is)
    again = Store(store.config)
    try:
        c = again.get_call("c")
        assert (c["replies"], c["reply_ms_total"], c["no_inputs"], c["negativity"]) == (
            kept["replies"], kept["reply_ms_total"], kept["no_inputs"], kept["negativity"]) == (1, 1300.0, 1, 0.5)
        client, _ = login(create_app(again), "sam")
        t = client.get("/api/dashboard").json()["totals"]
        assert (t["calls"], t["latency_ms"], t["no_input_rate"], t["negativity"]) == (4, 1300.0, 0.25, 0.5)
    finally:
        again.close()
