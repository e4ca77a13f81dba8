"""Replay conversation-test scenarios as text: what the dialog does with perfect transcripts.

    .venv/bin/python scripts/replay_scenarios.py suites/bank/dev [--json out.json] [-v]

Each scenario's turns go straight to the NLU and the dialog machine (no audio, no recognizer, no clock):
`say` as the transcript, `dtmf` as keys, `silence_ms` as a no-input, `hangup` ends the call; the caller
reacts to "Did you mean ...?", read-backs, FAQ follow-ups and re-prompts as `ivr test`'s reactive caller
does (ivr.convtest.caller). After the last turn the caller is silent. The expectations are checked like
`ivr test` checks them (outcome, reason, target, nodes in order, faq, slots). A call that needs audio to be
judged (a recorded turn other than FSDD digits, or `escalated`) is reported as skipped. So a scenario that
passes here and fails in `ivr test` failed on recognition (or timing), not on understanding.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from dialog.actions import Hangup, Listen, Say, Transfer  # noqa: E402
from dialog.events import DigitsEntered, Event, NoInput, Utterance  # noqa: E402
from dialog.machine import Machine  # noqa: E402
from dialog.nlu.understand import Nlu  # noqa: E402
from ivr.convtest.scenario import FlowCatalog, Reply, Scenario, ScenarioTurn, load_suite  # noqa: E402

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
FSDD = re.compile(r"fsdd-[a-z]+-(\d+)\.(flac|wav)$")
MAX_STEPS = 40


@dataclass
class Replayed:
    outcome: str = "unfinished"
    reason: str = ""
    target: str = ""
    nodes: list[str] = field(default_factory=list)
    faqs: list[str] = field(default_factory=list)
    slots: dict[str, str] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    skipped: str = ""


def understood(nlu: Nlu, text: str) -> Utterance:
    """The Utterance a call session would dispatch for `text`."""
    found = nlu.understand(text)
    build = getattr(found, "utterance", None)
    if build is not None:
        utterance: Utterance = build(text, 1.0)
        return utterance
    return Utterance(text, 1.0, found.intent, found.intent_confidence, found.faq_answer)


def turn_event(nlu: Nlu, turn: Any) -> Event | None:
    """The dialog event of a caller turn (None for a hang-up or a recording we cannot read as text)."""
    if turn.hangup:
        return None
    if turn.dtmf:
        return DigitsEntered(turn.dtmf)
    if turn.wav:
        found = FSDD.search(turn.wav)
        if found is None:
            return None
        text = " ".join(DIGIT_WORDS[int(d)] for d in found.group(1))
        return understood(nlu, text)
    if turn.say:
        return understood(nlu, turn.say)
    return NoInput()


def replay(scenario: Scenario, machine: Machine, nlu: Nlu) -> Replayed:
    result = Replayed()
    if scenario.expect.escalated:
        result.skipped = "escalation needs the caller's voice"
    if any(t.turn.wav and not FSDD.search(t.turn.wav) for t in scenario.turns):
        result.skipped = "a recorded turn that is not FSDD digits"
    if result.skipped:
        return result
    script: list[ScenarioTurn] = list(scenario.turns)
    reprompts: list[Reply] = list(scenario.react.reprompt)
    current: ScenarioTurn | None = None
    state, actions = machine.start()
    result.nodes.append(state.node)
    last_event = ""
    for _ in range(MAX_STEPS):
        for action in actions:
            if isinstance(action, Say):
                result.log.append(f"  agent: {action.text}")
        end = next((a for a in actions if isinstance(a, Transfer | Hangup)), None)
        if end is not None:
            result.outcome = "transferred" if isinstance(end, Transfer) else "completed"
            result.reason = end.reason
            result.target = end.target if isinstance(end, Transfer) else ""
            break
        listen = next((a for a in reversed(actions) if isinstance(a, Listen)), None)
        if listen is not None and listen.kind == "faq":
            result.faqs.append(getattr(state, "last_faq", "") or _answered(nlu, actions))
        reply = _reaction(scenario, listen, current, reprompts, last_event, machine)
        event: Event | None
        if reply is not None:
            if reply.repeat and current is not None:
                event = turn_event(nlu, current.turn)
                result.log.append(f"caller (repeats): {current.turn.say or current.turn.dtmf}")
            else:
                event = DigitsEntered(reply.dtmf) if reply.dtmf else understood(nlu, reply.say)
                result.log.append(f"caller (reacts): {reply.say or reply.dtmf}")
        elif script:
            current = script.pop(0)
            if current.turn.hangup:
                result.outcome, result.reason = "caller-hangup", "caller-hangup"
                break
            event = turn_event(nlu, current.turn)
            result.log.append(f"caller: {current.turn.say or current.turn.dtmf or current.turn.wav or 'silence'}")
        else:
            event = NoInput()
            result.log.append("caller: (silence)")
        if event is None:
            event = NoInput()
        last_event = type(event).__name__
        state, actions = machine.step(state, event)
        if isinstance(event, Utterance):
            faqs = getattr(event, "faqs", ())
            result.log[-1] += f"   [nlu {event.intent or '-'} {event.intent_confidence:.2f}; " \
                              f"faq {faqs[0].id if faqs else '-'} {faqs[0].score if faqs else 0:.2f}]"
        if result.nodes[-1] != state.node:
            result.nodes.append(state.node)
        result.slots = dict(state.slots)
    return result


def _answered(nlu: Nlu, actions: list[Any]) -> str:
    """The FAQ entry whose answer the agent just said (for dialogs without DialogState.last_faq)."""
    said = {a.text for a in actions if isinstance(a, Say)}
    return next((e.id for e in getattr(nlu.faq, "entries", []) if e.answer in said), "")


def _reaction(scenario: Scenario, listen: Listen | None, current: ScenarioTurn | None, reprompts: list[Reply],
              last_event: str, machine: Machine) -> Reply | None:
    react = scenario.react
    if listen is None:
        return None
    if listen.kind == "confirm" and react.confirm_yes is not None and react.confirm_no is not None:
        if current is None or not current.means:
            return None
        flow = machine.flow
        choices = [c for node in flow.nodes.values() for c in node.expect] + list(flow.global_choices)
        meanings = {c.goto for c in choices if c.label == listen.about} | {listen.about}
        return react.confirm_yes if current.means in meanings else react.confirm_no
    if listen.kind in ("yes_no", "faq"):
        return react.yes_no
    if listen.kind == "reprompt" and last_event != "NoInput" and reprompts:
        return reprompts.pop(0)
    return None


def check(scenario: Scenario, got: Replayed) -> list[str]:
    """The expectations that do not hold, as lines."""
    expect, failures = scenario.expect, []
    for key in ("outcome", "reason", "target"):
        wanted = getattr(expect, key)
        if wanted is not None and wanted != getattr(got, key):
            failures.append(f"{key}: expected {wanted}, got {getattr(got, key) or '(none)'}")
    if expect.nodes is not None:
        it = iter(got.nodes)
        if not all(any(n == m for m in it) for n in expect.nodes):
            failures.append(f"nodes: expected {list(expect.nodes)}, visited {got.nodes}")
    if expect.faq is not None and expect.faq not in got.faqs:
        failures.append(f"faq: expected {expect.faq}, answered {got.faqs}")
    if expect.slots is not None:
        for key, value in expect.slots:
            if got.slots.get(key) != value:
                failures.append(f"slots: expected {key}={value}, got {got.slots}")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suite")
    parser.add_argument("--json", dest="json_out")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every failed call's conversation")
    args = parser.parse_args(argv)
    if {"heldout", "fresh"} & set(Path(args.suite).resolve().parts):
        print("the held-out and fresh splits are not replayed here", file=sys.stderr)
        return 2
    catalog = FlowCatalog()
    scenarios = load_suite(args.suite)
    nlu = Nlu.load()
    rows, passed, skipped = [], 0, 0
    for scenario in scenarios:
        machine = Machine(catalog.flow(scenario.flow))
        got = replay(scenario, machine, nlu)
        if got.skipped:
            skipped += 1
            print(f"SKIP {scenario.slug}: {got.skipped}")
            rows.append({"scenario": scenario.slug, "skipped": got.skipped})
            continue
        failures = check(scenario, got)
        passed += not failures
        print(f"{'PASS' if not failures else 'FAIL'} {scenario.slug}" + "".join(f"\n     {f}" for f in failures))
        if failures and args.verbose:
            print("\n".join(got.log))
        rows.append({"scenario": scenario.slug, "passed": not failures, "failures": failures,
                     "nodes": got.nodes, "outcome": got.outcome, "reason": got.reason, "faqs": got.faqs})
    judged = len(scenarios) - skipped
    print(f"{passed}/{judged} right with perfect transcripts ({skipped} skipped: need audio)")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"passed": passed, "judged": judged, "skipped": skipped,
                                                   "scenarios": rows}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
