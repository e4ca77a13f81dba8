"""`ivr report failures`: what the agent failed to understand, the material for retraining.

From each stored call's events: the caller turns the dialog could not place, in two kinds,
"out-of-scope" (the NLU ran and found no intent and no FAQ answer) and "no-match" (no NLU on the turn
and the call stayed in its node); FAQ misses (`faq_miss` events, with the turn's words); how calls
ended, escalations (transfers) by reason. Failed turns are grouped by similarity, so one line stands
for many callers asking the same thing: label the groups, add them to the training data, retrain,
re-evaluate. The report shows caller words: it is for the people who improve the agent.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ivr.call.events import CallEnded, DialogStep, FaqMiss, Listening, NluResult, Transcript, from_dict
from ivr.errors import IvrError
from ivr.report.calls import CallDirSource, CallSource, StoredCall
from ivr.report.grouping import group

ESCALATION_OUTCOMES = ("transferred",)


@dataclass(frozen=True)
class FailedTurn:
    call_id: str
    node: str
    kind: str
    """"out-of-scope" or "no-match"."""
    text: str


@dataclass
class FailureReport:
    calls: int = 0
    turns: int = 0
    failed: list[FailedTurn] | None = None
    faq_misses: list[FailedTurn] | None = None
    outcomes: Counter[str] | None = None
    escalations: Counter[str] | None = None
    """Transfer reasons."""
    groups: list[list[int]] | None = None
    """Indices into `failed`, similar turns together."""


def failed_turns(call: StoredCall) -> tuple[int, list[FailedTurn], list[FailedTurn]]:
    """(caller turns, failed turns, FAQ misses) of one call."""
    turns = 0
    failed: list[FailedTurn] = []
    misses: list[FailedTurn] = []
    node = ""
    text: str | None = None
    last_text = ""
    nlu: NluResult | None = None
    for event in map(from_dict, call.events):
        match event:
            case Listening():
                node = event.node or node
            case Transcript() if event.text.strip():
                text, nlu = event.text.strip(), None
                last_text = text
                turns += 1
            case NluResult():
                nlu = event
            case FaqMiss() if last_text:
                misses.append(FailedTurn(call.call_id, event.node or node, "faq-miss", last_text))
            case DialogStep(event="Utterance") if text is not None:
                if nlu is not None and not nlu.intent and not nlu.faq:
                    failed.append(FailedTurn(call.call_id, node, "out-of-scope", text))
                elif nlu is None and event.node == node:
                    failed.append(FailedTurn(call.call_id, node, "no-match", text))
                text = None
    return turns, failed, misses


def build_report(source: CallSource, since: datetime | None = None, threshold: float = 0.35) -> FailureReport:
    report = FailureReport(failed=[], faq_misses=[], outcomes=Counter(), escalations=Counter())
    assert report.failed is not None and report.faq_misses is not None
    assert report.outcomes is not None and report.escalations is not None
    for call in source.calls(since):
        report.calls += 1
        turns, failed, misses = failed_turns(call)
        report.turns += turns
        report.failed += failed
        report.faq_misses += misses
        ended = next((e for e in map(from_dict, reversed(call.events)) if isinstance(e, CallEnded)), None)
        if ended is not None:
            outcome, reason = ended.outcome, ended.reason
            report.outcomes[f"{outcome} ({reason})" if reason else outcome] += 1
            if outcome in ESCALATION_OUTCOMES:
                report.escalations[reason or "unknown"] += 1
    report.groups = group([t.text for t in report.failed], threshold)
    return report


def parse_since(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        since = datetime.fromisoformat(value)
    except ValueError:
        raise IvrError(f"--since {value!r}: give a date like 2025-01-31 (or 2025-01-31T09:00)") from None
    return since if since.tzinfo else since.replace(tzinfo=UTC)


def to_json(report: FailureReport) -> dict[str, Any]:
    failed = report.failed or []
    return {"calls": report.calls, "caller_turns": report.turns,
            "outcomes": dict(report.outcomes or {}), "escalations": dict(report.escalations or {}),
            "groups": [{"size": len(g), "kinds": dict(Counter(failed[i].kind for i in g)),
                        "nodes": dict(Counter(failed[i].node for i in g)),
                        "utterances": [asdict(failed[i]) for i in g]} for g in report.groups or []],
            "faq_misses": [asdict(m) for m in report.faq_misses or []]}


def print_report(report: FailureReport, examples: int = 3) -> None:
    failed = report.failed or []
    print(f"{report.calls} calls, {report.turns} caller turns, {len(failed)} not understood "
          f"({sum(t.kind == 'out-of-scope' for t in failed)} out of scope, "
          f"{sum(t.kind == 'no-match' for t in failed)} no match), {len(report.faq_misses or [])} FAQ misses")
    print("\nescalations to a human, by reason:")
    for reason, count in (report.escalations or Counter()).most_common():
        print(f"  {count:5d}  {reason}")
    print("\ncall outcomes:")
    for outcome, count in (report.outcomes or Counter()).most_common():
        print(f"  {count:5d}  {outcome}")
    print("\nnot understood, grouped by similarity (largest first):")
    for n, g in enumerate(report.groups or [], 1):
        nodes = ", ".join(f"{k} x{v}" for k, v in Counter(failed[i].node for i in g).most_common(3))
        print(f"  group {n}: {len(g)} turn(s) in {nodes}")
        for i in g[:examples]:
            print(f"      [{failed[i].kind}] {failed[i].text}")
    if report.faq_misses:
        print("\nFAQ misses:")
        for miss in report.faq_misses:
            print(f"  [{miss.node}] {miss.text}")


def cmd_report_failures(args: Any) -> int:
    report = build_report(CallDirSource(Path(args.calls)), parse_since(args.since), args.threshold)
    print_report(report)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(to_json(report), indent=2, ensure_ascii=False), encoding="utf-8")
        print(f"\nJSON written to {args.json_out}")
    return 0
