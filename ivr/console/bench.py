"""The console benchmark: every page and API of the supervisor console timed over a store of many calls.

    python -m ivr.console.bench --calls 50000 --json bench-results/console.json

Builds a store of synthetic calls (ivr.console.benchdata; or reuses the one at --store when it already
holds as many), signs in as an admin through FastAPI's TestClient (in process: the time is the app's and
the database's, no network), asks each page of PAGES once to warm up and then --repeat times, and prints
p50/p95 milliseconds per page; the JSON has the same with the store's size and the machine's load. The
target is every page under TARGET_MS. A new page is one more (name, url) row in PAGES.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from ivr.jsonreport import write_json_report
from ivr.store import Store, StoreConfig, schema

TARGET_MS = 100.0
PASSWORD = "timing pages, not for real use"
PAGES: list[tuple[str, str]] = [
    ("calls: first page", "/calls"),
    ("calls: a later page", "/calls?offset={late_offset}"),
    ("calls: last page", "/calls?offset={last_offset}"),
    ("calls API: first page", "/api/calls"),
    ("calls: caller, last 4 digits", "/calls?caller={caller_last4}"),
    ("calls: caller, full number", "/calls?caller={caller}"),
    ("calls: search, anyone's words", "/calls?q=card&who=anyone"),
    ("calls: search, caller only", "/calls?q=card"),
    ("calls: search, rare phrase", "/calls?q=insurance"),
    ("calls: search, two words", "/calls?q=lost+card"),
    ("calls: intent", "/calls?intent=lost_card"),
    ("calls: emotion", "/calls?emotion=angry"),
    ("calls: outcome + escalated", "/calls?outcome=transferred&escalated=yes"),
    ("calls: date range (a week)", "/calls?date_from={week_from}&date_to={week_to}"),
    ("calls: date range + intent + emotion", "/calls?date_from={week_from}&date_to={week_to}&intent=balance"
                                             "&emotion=angry"),
    ("calls: sorted by duration", "/calls?sort=duration&order=asc"),
    ("calls: outcome, sorted by duration", "/calls?outcome=completed&sort=duration"),
    ("calls: not reviewed, sorted by score", "/calls?reviewed=no&sort=score"),
    ("calls: search, a phrase", "/calls?q=%22lost+my+card%22&who=anyone"),
    ("calls: CSV of a day", "/calls.csv?date_from={week_to}&date_to={week_to}"),
    ("call page", "/calls/{call_id}"),
    ("call API", "/api/calls/{call_id}"),
    ("call progress API", "/api/calls/{call_id}/progress"),
    ("live board", "/live"),
    ("live API (one snapshot)", "/api/live?once=1"),
    ("audit log: first page", "/admin/audit"),
    ("audit log: a later page", "/admin/audit?offset=10000"),
    ("model versions", "/admin/models"),
    ("scorecards", "/admin/scorecards"),
    ("dashboard: all calls", "/dashboard"),
    ("dashboard: a week", "/dashboard?date_from={week_from}&date_to={week_to}"),
    ("dashboard: flow + queue", "/dashboard?flow=example-bank&queue=sip%3Acards%40example.com"),
    ("dashboard API: a day", "/api/dashboard?date_from={week_to}&date_to={week_to}"),
]
"""(name, url) of every timed page; {names} in a url are filled from the store (see `page_values`)."""


@dataclass(frozen=True)
class Timing:
    name: str
    url: str
    status: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    cpu_p50_ms: float
    """The process's CPU time (all its threads) per request: what the page costs, less the wait for a busy
    machine's cores."""
    size_bytes: int

    def row(self) -> dict[str, Any]:
        return {"url": self.url, "status": self.status, "p50_ms": self.p50_ms, "p95_ms": self.p95_ms,
                "max_ms": self.max_ms, "cpu_p50_ms": self.cpu_p50_ms, "size_bytes": self.size_bytes}


def page_values(store: Store, caller: str) -> dict[str, str]:
    """What the urls of PAGES are filled with: a call in the middle, a week of calls, offsets, a caller."""
    c = schema.calls.c
    with store.engine.connect() as conn:
        total = int(conn.execute(select(func.count()).select_from(schema.calls)).scalar_one())
        newest = conn.execute(select(func.max(c.started_at))).scalar_one() or datetime.now(UTC)
        call_id = conn.execute(select(c.id).order_by(c.started_at.desc()).offset(total // 2).limit(1)).scalar()
    week_to = newest.date() - timedelta(days=1)
    digits = re.sub(r"\D", "", caller)
    return {"call_id": str(call_id or "none"), "late_offset": str(max(0, total // 2 // 100 * 100)),
            "last_offset": str(max(0, (total - 1) // 100 * 100)), "caller": caller, "caller_last4": digits[-4:],
            "week_from": (week_to - timedelta(days=6)).isoformat(), "week_to": week_to.isoformat()}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def time_pages(client: Any, pages: list[tuple[str, str]], values: dict[str, str], repeat: int) -> list[Timing]:
    timings = []
    for name, template in pages:
        url = template.format(**values)
        response = client.get(url)  # warm-up: templates compiled, the database's pages in its cache
        spent, cpu = [], []
        for _ in range(max(1, repeat)):
            t0, c0 = time.perf_counter(), time.process_time()
            response = client.get(url)
            spent.append(1000.0 * (time.perf_counter() - t0))
            cpu.append(1000.0 * (time.process_time() - c0))
        timings.append(Timing(name, url, response.status_code, round(statistics.median(spent), 1),
                              round(_percentile(spent, 95), 1), round(max(spent), 1), round(statistics.median(cpu), 1),
                              len(response.content)))
    return timings


def signed_in_client(store: Store) -> Any:
    """A TestClient of the console over `store`, signed in as an admin (made when missing)."""
    from fastapi.testclient import TestClient

    from ivr.console.app import create_app
    from ivr.console.auth import Users

    users = Users(store)
    if not any(u["name"] == "bench" for u in users.list()):
        users.add("bench", "admin", PASSWORD)
    client = TestClient(create_app(store), follow_redirects=False)
    page = client.get("/login")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    answer = client.post("/login", data={"username": "bench", "password": PASSWORD, "csrf": found.group(1) if found
                                         else "", "next": "/calls"})
    if answer.status_code != 303:
        raise RuntimeError(f"bench login failed: HTTP {answer.status_code}")
    return client


@contextmanager
def bench_store(folder: str | None, calls: int, days: int) -> Iterator[tuple[Store, dict[str, Any]]]:
    """The store at `folder` (a temporary one when None), filled with `calls` synthetic calls unless it
    holds them already."""
    from ivr.console.benchdata import fill_store

    with tempfile.TemporaryDirectory(prefix="ivr-console-bench-") as tmp:
        root = Path(folder or tmp)
        root.mkdir(parents=True, exist_ok=True)
        config = StoreConfig(db_url=f"sqlite:///{root}/bench.db", data_dir=root / "data",
                             recording_key=bytes(range(32)), key_file=root / "unused.key")
        store = Store(config)
        try:
            with store.engine.connect() as conn:
                have = int(conn.execute(select(func.count()).select_from(schema.calls)).scalar_one())
            t0 = time.perf_counter()
            made: dict[str, Any] = ({"calls": have, "reused": True} if have >= calls
                                    else fill_store(store, calls - have, days))
            made["build_s"] = round(time.perf_counter() - t0, 1)
            with store.engine.connect() as conn:
                made["total_calls"] = int(conn.execute(select(func.count()).select_from(schema.calls)).scalar_one())
                made["total_turns"] = int(conn.execute(select(func.count()).select_from(schema.turns)).scalar_one())
                made["total_events"] = int(conn.execute(select(func.count()).select_from(schema.events)).scalar_one())
            yield store, made
        finally:
            store.close()


def run(args: argparse.Namespace, pages: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """Measure, print the table, write the JSON."""
    report = measure(args, pages)
    print_table(report)
    out = write_json_report(args.json, report)
    print(f"JSON written to {out}")
    return report


def measure(args: argparse.Namespace, pages: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """The timings of `pages` (PAGES) over a store of args.calls calls (args.store, args.days, args.repeat)."""
    from ivr.console.benchdata import SAMPLE_CALLER

    load_before = [round(x, 2) for x in os.getloadavg()]
    with bench_store(args.store, args.calls, args.days) as (store, made):
        client = signed_in_client(store)
        with client:
            timings = time_pages(client, pages or PAGES, page_values(store, SAMPLE_CALLER), args.repeat)
    report = {"store": made, "dialect": "sqlite", "repeat": args.repeat, "target_ms": TARGET_MS,
              "machine": {"cpus": os.cpu_count(), "load_avg_before": load_before,
                          "load_avg_after": [round(x, 2) for x in os.getloadavg()]},
              "pages": {t.name: t.row() for t in timings},
              "over_target": [t.name for t in timings if t.p95_ms > TARGET_MS or t.status != 200]}
    return report


def print_table(report: dict[str, Any]) -> None:
    store = report["store"]
    print(f"\nConsole pages over {store['total_calls']:,} calls ({store['total_turns']:,} turns, "
          f"{store['total_events']:,} events), {report['repeat']} requests each")
    print(f"{'page':<40}{'HTTP':>5}{'p50 ms':>9}{'p95 ms':>9}{'CPU ms':>9}{'KB':>8}")
    for name, row in report["pages"].items():
        mark = "  over" if name in report["over_target"] else ""
        print(f"{name:<40}{row['status']:>5}{row['p50_ms']:>9}{row['p95_ms']:>9}{row['cpu_p50_ms']:>9}"
              f"{row['size_bytes'] / 1024:>8.1f}{mark}")
    load = report["machine"]["load_avg_after"]
    print(f"  (target: p95 under {report['target_ms']:.0f} ms; CPU ms: the process's CPU time, p50; load average "
          f"{load[0]} over 1 min, {load[1]} over 5 min, on {report['machine']['cpus']} CPUs)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ivr.console.bench", description=__doc__.split("\n")[0])
    p.add_argument("--calls", type=int, default=50_000, help="calls in the store (default 50000)")
    p.add_argument("--days", type=int, default=42, help="over how many days the calls are spread")
    p.add_argument("--repeat", type=int, default=20,
                   help="timed requests per page, after one warm-up (a p95 of fewer is about their slowest one)")
    p.add_argument("--store", help="keep the store in this folder, and reuse it when it holds --calls already")
    p.add_argument("--json", default="bench-results/console.json", help="where to write the JSON results")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.calls < 1 or args.repeat < 1 or args.days < 1:
        parser().error("--calls, --repeat and --days are at least 1")
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
