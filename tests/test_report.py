"""`ivr report failures`: failed turns grouped by similarity, escalations counted, FAQ misses listed."""

from __future__ import annotations

import json
import os
import time

from ivr.cli import main
from ivr.report.calls import CallDirSource
from ivr.report.failures import build_report, parse_since
from ivr.report.grouping import group


def test_similar_requests_group_together_and_apart_from_others():
    texts = ["how do i change my pin", "change my pin number please", "i want to change the pin",
             "what is the exchange rate for euros", "euro exchange rate today", "open a mortgage"]
    groups = group(texts)
    assert sorted(map(sorted, groups))[:3] == [[0, 1, 2], [3, 4], [5]]
    assert group([]) == []


def _turn(text, node, intent="", faq=""):
    return [{"type": "listening", "node": node}, {"type": "transcript", "text": text, "confidence": 0.9},
            {"type": "nlu", "intent": intent, "confidence": 0.5, "faq": faq},
            {"type": "dialog", "event": "Utterance", "node": node if not intent else "balance"}]


def _write_call(root, name, events, age_s=0.0):
    d = root / name
    d.mkdir(parents=True)
    path = d / "events.jsonl"
    events = [{"type": "call_started", "call_id": name}, *events]
    path.write_text("".join(json.dumps({"t_ms": 10.0 * i, **e}) + "\n" for i, e in enumerate(events)))
    when = time.time() - age_s
    os.utime(path, (when, when))


def _calls(tmp_path):
    _write_call(tmp_path, "c1", [*_turn("change my pin number", "main_menu"),
                                 *_turn("what is my balance", "main_menu", intent="balance"),
                                 {"type": "call_ended", "outcome": "completed", "reason": "completed"}])
    _write_call(tmp_path, "c2", [*_turn("how do i change my pin", "main_menu"),
                                 {"type": "faq_miss", "node": "main_menu"},
                                 *_turn("kids are talking by the door", "main_menu"),
                                 {"type": "call_ended", "outcome": "transferred", "reason": "negative-emotion"}])
    _write_call(tmp_path, "old", [*_turn("something from last year", "main_menu"),
                                  {"type": "call_ended", "outcome": "transferred", "reason": "no-match"}],
                age_s=400 * 86400)


def test_report_counts_escalations_groups_failures_and_lists_faq_misses(tmp_path):
    _calls(tmp_path)
    report = build_report(CallDirSource(tmp_path))
    assert report.calls == 3 and report.turns == 5
    assert report.escalations == {"negative-emotion": 1, "no-match": 1}
    texts = [[report.failed[i].text for i in g] for g in report.groups]
    assert sorted(texts[0]) == ["change my pin number", "how do i change my pin"]
    assert [m.text for m in report.faq_misses] == ["how do i change my pin"]
    recent = build_report(CallDirSource(tmp_path), parse_since(time.strftime("%Y-%m-%d",
                                                                              time.gmtime(time.time() - 86400))))
    assert recent.calls == 2 and "no-match" not in recent.escalations


def test_report_command_prints_and_writes_json(tmp_path, capsys):
    _calls(tmp_path / "calls")
    out = tmp_path / "failures.json"
    assert main(["report", "failures", "--calls", str(tmp_path / "calls"), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "negative-emotion" in printed and "change my pin" in printed
    data = json.loads(out.read_text())
    assert data["groups"][0]["size"] == 2 and data["escalations"]["negative-emotion"] == 1
    assert main(["report", "failures", "--calls", str(tmp_path / "nowhere")]) == 1
    assert main(["report", "failures", "--calls", str(tmp_path / "calls"), "--since", "yesterday"]) == 1


def test_print_rows_right_aligns_each_column_under_its_title(capsys):
    from ivr.jsonreport import print_rows

    print_rows([{"t": 0.5, "cut": 0.0123}, {"t": 0.75, "cut": 0.2}],
               [("threshold", 9, lambda r: str(r["t"])), ("cut off", 7, lambda r: f"{r['cut']:.1%}")], note="(x)")
    assert capsys.readouterr().out.splitlines() == ["threshold  cut off  (x)", "      0.5     1.2%",
                                                    "     0.75    20.0%"]
