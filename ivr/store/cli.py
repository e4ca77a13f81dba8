"""`ivr store ...`: import call directories, erase a caller's data, apply retention, the webhook outbox."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ivr.errors import IvrError


def add_store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="database URL (default $IVR_DB_URL or sqlite:///calls/ivr.db)")
    p.add_argument("--data-dir", help="store files: encrypted recordings (default $IVR_DATA_DIR or calls/store)")


def open_store(args: argparse.Namespace) -> Any:
    from ivr.store import Store

    return Store.open(getattr(args, "db", None), getattr(args, "data_dir", None))


def register(subparsers: Any) -> None:
    store = subparsers.add_parser("store", help="the call store: import calls, erase a caller, retention")
    sub = store.add_subparsers(dest="store_command", required=True)

    imp = sub.add_parser("import-dir", help="store call directories written by `ivr call` or `ivr serve`")
    imp.add_argument("dirs", nargs="+", help="a call directory, or a directory of them (e.g. calls/)")
    imp.add_argument("--caller", help="the caller's number for a single call directory (stored only hashed)")
    add_store_args(imp)
    imp.set_defaults(func=cmd_import_dir)

    erase = sub.add_parser("erase", help="delete every call of a caller number, audio included (GDPR erasure)")
    erase.add_argument("--caller", required=True, help="the caller's phone number or SIP URI")
    add_store_args(erase)
    erase.set_defaults(func=cmd_erase)

    ret = sub.add_parser("retention", help="delete calls (and audio) older than N days")
    ret.add_argument("--days", type=float, required=True, help="keep calls of the last N days")
    add_store_args(ret)
    ret.set_defaults(func=cmd_retention)

    out = sub.add_parser("outbox", help="webhook events: list pending, delivered and dead-lettered ones; retry")
    out_sub = out.add_subparsers(dest="outbox_command", required=True)
    show = out_sub.add_parser("list", help="the outbox's events, newest first (no bodies)")
    show.add_argument("--status", choices=("pending", "delivered", "dead"), help="only events in this state")
    show.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    add_store_args(show)
    show.set_defaults(func=cmd_outbox_list)
    again = out_sub.add_parser("retry", help="send dead-lettered events again (attempts counted afresh)")
    again.add_argument("event_ids", nargs="*", metavar="EVENT_ID", help="the events (evt_...) to retry")
    again.add_argument("--all", action="store_true", help="every dead-lettered event")
    add_store_args(again)
    again.set_defaults(func=cmd_outbox_retry)


def cmd_import_dir(args: argparse.Namespace) -> int:
    from ivr.store.importer import find_call_dirs, import_call_dir

    dirs = [d for root in args.dirs for d in find_call_dirs(Path(root))]
    if not dirs:
        raise IvrError(f"no call directories (with events.jsonl) under {', '.join(args.dirs)}")
    if args.caller and len(dirs) > 1:
        raise IvrError("--caller applies to one call directory; give exactly one")
    with open_store(args) as store:
        for d in dirs:
            call_id = import_call_dir(store, d, caller=args.caller)
            print(f"stored {d} as call {call_id}")
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        count = store.erase_caller(args.caller)
    print(f"erased {count} call(s) of that caller, recordings included")
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    if args.days < 0:
        raise IvrError("--days must be 0 or more")
    with open_store(args) as store:
        count = store.apply_retention(args.days)
    print(f"deleted {count} call(s) older than {args.days:g} days")
    return 0


def cmd_outbox_list(args: argparse.Namespace) -> int:
    from ivr.store import outbox

    with open_store(args) as store:
        counts = outbox.counts(store)
        rows = outbox.list_events(store, status=args.status, limit=args.limit)
    print(", ".join(f"{n} {status}" for status, n in counts.items()))
    for r in rows:
        when = r["delivered_at"] if r["status"] == "delivered" else r["next_attempt_at"]
        answer = r["last_error"] or (f"HTTP {r['last_status']}" if r["last_status"] else "")
        print(f"{r['event_id']}  {r['event_type']:<24} call {r['call_id'] or '-':<14} {r['status']:<9} "
              f"{r['attempts']} attempt(s)  {when:%Y-%m-%d %H:%M:%S}  {answer}".rstrip())
    return 0


def cmd_outbox_retry(args: argparse.Namespace) -> int:
    from ivr.store import outbox

    if not args.event_ids and not args.all:
        raise IvrError("name the events to retry (evt_...), or give --all")
    with open_store(args) as store:
        count = outbox.retry(store, None if args.all else list(args.event_ids))
        store.audit("cli", "webhook-retry", None, f"{count} event(s)")
    print(f"{count} dead-lettered event(s) pending again; a running `ivr serve` with --webhook sends them")
    return 0
