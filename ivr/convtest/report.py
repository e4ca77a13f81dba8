"""Reporting a suite run: the table on stdout, failure details, JSON and JUnit XML."""

from __future__ import annotations

import json
import platform
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ivr.convtest.runner import ScenarioResult

NAME_WIDTH = 46


def result_word(result: ScenarioResult) -> str:
    return "error" if result.error else "pass" if result.passed else "FAIL"


def print_header(out: TextIO) -> None:
    print(f"{'scenario':<{NAME_WIDTH}} {'result':<6} {'time':>7}  first failed expectation", file=out, flush=True)


def print_row(result: ScenarioResult, out: TextIO) -> None:
    name = result.scenario.name
    name = name if len(name) <= NAME_WIDTH else name[: NAME_WIDTH - 1] + "…"
    failures = result.failures()
    first = failures[0] if failures else ""
    print(f"{name:<{NAME_WIDTH}} {result_word(result):<6} {result.wall_s:>6.1f}s  {first}", file=out, flush=True)


def print_details(results: list[ScenarioResult], out: TextIO) -> None:
    """For each failed scenario: every failed expectation, and the caller's turns (said vs heard)."""
    failed = [r for r in results if not r.passed]
    for result in failed:
        print(f"\nFAILED {result.scenario.name} ({result.scenario.path})", file=out)
        for failure in result.failures():
            print(f"  {failure}", file=out)
        if result.facts is None:
            continue
        print(f"  call: {result.facts.outcome} ({result.facts.reason}); nodes {' > '.join(result.facts.nodes)}",
              file=out)
        for turn in result.facts.turns:
            print(f"  {turn_line(turn.as_dict())}", file=out)


def turn_line(turn: dict[str, Any]) -> str:
    who = "caller" if turn["role"] == "script" else f"caller ({turn['role']})"
    where = f"[{turn['t_ms'] / 1000:6.1f}s] {who}:"
    if "said" in turn:
        heard = turn.get("heard")
        errors = f" ({turn['word_errors']}/{turn['words']} words wrong)" if turn.get("word_errors") else ""
        got = f"heard {heard!r}{errors}" if heard is not None else "not transcribed"
        line = f"{where} said {turn['said']!r}, {got}"
    elif "dtmf" in turn:
        line = f"{where} keys {turn['dtmf']}"
    elif "wav" in turn:
        heard = turn.get("heard")
        line = f"{where} played {Path(turn['wav']).name}"
    else:
        line = f"{where} (silence / hang-up)"
    understood = [i for i in turn.get("intents", []) if i]
    if understood:
        line += f"; understood {', '.join(understood)}"
    if turn.get("nodes"):
        line += f" -> {', '.join(turn['nodes'])}"
    return line


def summarize(results: list[ScenarioResult]) -> dict[str, Any]:
    """Calls right (overall and by tag), word error rate by voice, voice-to-voice latency."""
    right = sum(r.passed for r in results)
    by_tag: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in results:
        for tag in r.scenario.tags:
            by_tag[tag][0] += r.passed
            by_tag[tag][1] += 1
    wer_by_voice: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # edits, words, turns, untranscribed
    latencies: list[float] = []
    for r in results:
        if r.facts is None:
            continue
        latencies += r.facts.latencies_ms
        row = wer_by_voice[r.scenario.voice.label]
        for turn in r.facts.turns:
            if not turn.said:
                continue
            if not turn.heard:
                row[3] += 1
                continue
            edits, words = turn.word_errors()
            row[0] += edits
            row[1] += words
            row[2] += 1
    total = [sum(v[i] for v in wer_by_voice.values()) for i in range(4)]
    by_engine: dict[str, list[int]] = {}
    for label, v in wer_by_voice.items():
        row = by_engine.setdefault(label.split()[0], [0, 0, 0, 0])
        for i in range(4):
            row[i] += v[i]

    def wer_row(v: list[int]) -> dict[str, Any]:
        return {"wer": round(v[0] / v[1], 4) if v[1] else None, "word_errors": v[0], "words": v[1],
                "turns": v[2], "not_transcribed": v[3]}

    return {
        "calls": len(results), "right": right, "percent": round(100.0 * right / len(results), 1) if results else 0.0,
        "by_tag": {t: {"right": v[0], "calls": v[1], "percent": round(100.0 * v[0] / v[1], 1)}
                   for t, v in sorted(by_tag.items())},
        "wer": {"overall": wer_row(total), "by_engine": {k: wer_row(v) for k, v in sorted(by_engine.items())},
                "by_voice": {k: wer_row(v) for k, v in sorted(wer_by_voice.items())}},
        "voice_to_voice_ms": {"turns": len(latencies),
                              "p50": round(float(np.percentile(latencies, 50)), 1) if latencies else None,
                              "p95": round(float(np.percentile(latencies, 95)), 1) if latencies else None},
    }


def print_summary(summary: dict[str, Any], out: TextIO) -> None:
    print(f"\ncalls right: {summary['right']}/{summary['calls']} ({summary['percent']:.1f}%)", file=out)
    if summary["by_tag"]:
        tags = ", ".join(f"{t} {v['right']}/{v['calls']}" for t, v in summary["by_tag"].items())
        print(f"by tag: {tags}", file=out)
    wer = summary["wer"]
    if wer["overall"]["words"] or wer["overall"]["not_transcribed"]:
        print(f"\n{'caller voice':<40}{'turns':>6}{'words':>7}{'WER':>8}{'not heard':>11}", file=out)
        engines = [(f"all {k}", v) for k, v in wer["by_engine"].items()] if len(wer["by_voice"]) > 1 else []
        for label, row in [*wer["by_voice"].items(), *engines, ("all voices", wer["overall"])]:
            rate = f"{100 * row['wer']:.1f}%" if row["wer"] is not None else "-"
            print(f"{label:<40}{row['turns']:>6}{row['words']:>7}{rate:>8}{row['not_transcribed']:>11}", file=out)
    v2v = summary["voice_to_voice_ms"]
    if v2v["turns"]:
        print(f"voice-to-voice: p50 {v2v['p50']:.0f} ms, p95 {v2v['p95']:.0f} ms over {v2v['turns']} replies",
              file=out)


def to_json(suite: str, results: list[ScenarioResult], summary: dict[str, Any]) -> dict[str, Any]:
    scenarios = []
    for r in results:
        s = r.scenario
        item: dict[str, Any] = {
            "name": s.name, "file": str(s.path), "slug": s.slug, "tags": list(s.tags), "voice": s.voice.label,
            "line": None if s.line is None else {"band": s.line.band, "codec": s.line.codec,
                                                 "noise_snr_db": s.line.noise_snr_db, "noise": s.line.noise,
                                                 "seed": s.line.seed},
            "passed": r.passed, "wall_s": round(r.wall_s, 2), "call_ms": round(r.call_ms, 1),
            "expectations": [{"key": c.key, "expected": c.expected, "actual": c.actual, "ok": c.ok}
                             for c in r.checks],
            "failures": r.failures(),
        }
        if r.error:
            item["error"] = r.error
        if r.facts is not None:
            item["happened"] = r.facts.as_dict()
            item["turns"] = [t.as_dict() for t in r.facts.turns]
        scenarios.append(item)
    return {"suite": suite, "machine": {"python": platform.python_version()}, "summary": summary,
            "scenarios": scenarios}


def to_junit(suite: str, results: list[ScenarioResult]) -> ET.ElementTree:
    """JUnit XML as CI systems read it: one testsuite, a testcase per scenario, failure/error elements."""
    failures = sum(1 for r in results if not r.passed and not r.error)
    errors = sum(1 for r in results if r.error)
    total_s = sum(r.wall_s for r in results)
    root = ET.Element("testsuites", name="ivr test", tests=str(len(results)), failures=str(failures),
                      errors=str(errors), time=f"{total_s:.3f}")
    ts = ET.SubElement(root, "testsuite", name=suite, tests=str(len(results)), failures=str(failures),
                       errors=str(errors), skipped="0", time=f"{total_s:.3f}")
    for r in results:
        classname = "convtest." + (r.scenario.path.parent.name or "suite").replace(".", "_")
        case = ET.SubElement(ts, "testcase", name=r.scenario.name, classname=classname, file=str(r.scenario.path),
                             time=f"{r.wall_s:.3f}")
        if r.passed:
            continue
        details = r.failures()
        if r.facts is not None:
            details += [f"call: {r.facts.outcome} ({r.facts.reason}), nodes {' > '.join(r.facts.nodes)}"]
            details += [turn_line(t.as_dict()) for t in r.facts.turns]
        element = "error" if r.error else "failure"
        node = ET.SubElement(case, element, message=r.failures()[0], type="ExpectationFailed" if not r.error
                             else "ScenarioError")
        node.text = "\n".join(details)
    ET.indent(root)
    return ET.ElementTree(root)


def write(path: str | Path, writer: Callable[[Path], object]) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    writer(p)


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    write(path, lambda p: p.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8"))


def write_junit(path: str | Path, tree: ET.ElementTree) -> None:
    write(path, lambda p: tree.write(p, encoding="utf-8", xml_declaration=True))
