"""The bank conversation suite (suites/bank): every scenario file is well formed, without running a call.

Checks, for all three splits: the scenario keys and their types, that every `means` names a choice,
intent or FAQ entry of the bank flow, that `expect` is present and names real nodes, FAQ entries and slots,
that each call is on a telephone line with G.711, and the rules that keep the unseen splits unseen: no caller
voice setting and no human recording of suites/bank/heldout appears in suites/bank/dev, and neither a voice
setting (espeak-ng variant, Piper speed or noise scale), a recording nor a sentence of suites/bank/fresh
appears in dev or heldout. Problems in held-out and fresh files are reported by file name and key only, never
with their contents, so nobody tuning on dev reads the unseen calls.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from dialog.flow import Flow, load_default_flow
from dialog.nlu.faq import default_faq_path
from ivr.convtest.scenario import FlowCatalog, ScenarioError, load_scenario

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "suites" / "bank"
SPLITS = ("dev", "heldout", "fresh")
UNSEEN = frozenset({"heldout", "fresh"})
"""Splits nobody tunes on: their problems are reported by file name and key, without contents."""
SHARED = Path(os.environ.get("IVR_SHARED_DIR", REPO.parent / "shared"))

TOP_KEYS = {"name", "tags", "flow", "caller", "turns", "react", "expect"}
CALLER_KEYS = {"voice", "variant", "speed", "noise_scale", "line"}
LINE_KEYS = {"band", "codec", "noise_snr_db", "seed"}
TURN_KINDS = {"say", "wav", "dtmf", "silence_ms", "hangup"}
TURN_OPTIONS = {"means", "barge_in_after_ms", "gap_ms"}
REACT_KEYS = {"confirm", "reprompt", "yes_no"}
EXPECT_KEYS = {"outcome", "reason", "target", "nodes", "faq", "slots", "escalated"}
OUTCOMES = {"completed", "transferred", "caller-hangup", "agent-hangup", "no-input"}
MIN_SCENARIOS = {"dev": 60, "heldout": 50, "fresh": 40}
STABLE_NODES = frozenset({"main_menu", "balance", "card_lost", "hours", "statement_account", "statement_sent",
                          "transfer_agent", "goodbye"})
"""The bank flow's node names that tests and call logs rely on (its header), but the greeting every call
passes: each split expects every one of them."""


@dataclass
class Problems:
    """Problems found in one split; held-out and fresh problems keep the file and key, never the values."""

    split: str
    lines: list[str] = field(default_factory=list)

    def add(self, file: Path, where: str, detail: str) -> None:
        text = f"{self.split}/{file.name}: {where}"
        self.lines.append(text if self.split in UNSEEN else f"{text}: {detail}")

    def mapping(self, file: Path, where: str, value: Any, keys: set[str] | frozenset[str]) -> bool:
        """Whether `value` is a mapping, reporting it if not, and each of its keys outside `keys`."""
        if not isinstance(value, dict):
            self.add(file, where, "must be a mapping")
            return False
        for key in sorted(set(value) - keys):
            self.add(file, f"{where}.{key}", "unknown key")
        return True

    def report(self) -> None:
        if self.lines:
            pytest.fail(f"{len(self.lines)} problem(s) in suites/bank/{self.split}:\n" + "\n".join(self.lines),
                        pytrace=False)


def scenario_files(split: str) -> list[Path]:
    return sorted((SUITE / split).rglob("*.yaml"))


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def load(file: Path) -> Any:
    """A parsed scenario (read once per test session; callers must not change it)."""
    return yaml.load(file.read_text(encoding="utf-8"), Loader=_LOADER)


@dataclass(frozen=True)
class BankFlow:
    nodes: frozenset[str]
    means: frozenset[str]
    """What a turn may mean: choice intents and goto nodes, and FAQ entry ids."""
    faq_ids: frozenset[str]
    slots: frozenset[str]


@pytest.fixture(scope="module")
def bank() -> BankFlow:
    flow: Flow = load_default_flow()
    faq_ids = frozenset(str(entry["id"]) for entry in load(default_faq_path())["entries"])
    choices = [c for node in flow.nodes.values() for c in node.expect] + list(flow.global_choices)
    labels = {c.goto for c in choices} | {c.intent for c in choices if c.intent}
    slots = frozenset(node.collect.slot for node in flow.nodes.values() if node.collect is not None)
    return BankFlow(frozenset(flow.nodes), frozenset(labels) | faq_ids, faq_ids, slots)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _wav_path(file: Path, wav: str) -> Path:
    text = wav.replace("${SHARED}", str(SHARED))
    path = Path(text)
    return path if path.is_absolute() else file.parent / path


def check_caller(file: Path, caller: Any, out: Problems) -> None:
    if not out.mapping(file, "caller", caller, CALLER_KEYS):
        return
    voice = caller.get("voice")
    if voice not in ("piper", "espeak-ng"):
        out.add(file, "caller.voice", f"{voice!r} is not piper or espeak-ng")
    if voice == "espeak-ng" and not re.fullmatch(r"[a-z0-9-]+\+[A-Za-z0-9]+", str(caller.get("variant", ""))):
        out.add(file, "caller.variant", "espeak-ng needs voice+variant, e.g. en-gb-scotland+m3")
    if voice == "piper" and ("variant" in caller or not _is_number(caller.get("noise_scale"))):
        out.add(file, "caller", "piper takes noise_scale (a number) and no variant")
    if not _is_number(caller.get("speed")) or not 0.5 <= caller["speed"] <= 2.0:
        out.add(file, "caller.speed", "must be a number from 0.5 to 2")
    line = caller.get("line")
    if not out.mapping(file, "caller.line", line, LINE_KEYS):
        return
    if line.get("band") != "telephone" or line.get("codec") not in ("pcmu", "pcma"):
        out.add(file, "caller.line", "every call of this suite is on a telephone line with G.711 (pcmu or pcma)")
    if "noise_snr_db" in line and (not _is_number(line["noise_snr_db"]) or not 15 <= line["noise_snr_db"] <= 30
                                   or not isinstance(line.get("seed"), int)):
        out.add(file, "caller.line.noise_snr_db", "line noise is 15 to 30 dB SNR with an integer seed")


def check_turns(file: Path, turns: Any, bank: BankFlow, out: Problems) -> None:
    if not isinstance(turns, list) or not turns:
        out.add(file, "turns", "must be a non-empty list")
        return
    for n, turn in enumerate(turns, 1):
        where = f"turns[{n}]"
        if not isinstance(turn, dict):
            out.add(file, where, "must be a mapping")
            continue
        kinds = set(turn) & TURN_KINDS
        if len(kinds) != 1 or set(turn) - TURN_KINDS - TURN_OPTIONS:
            out.add(file, where, f"needs exactly one of {sorted(TURN_KINDS)}, plus {sorted(TURN_OPTIONS)}")
            continue
        if "means" in turn and ("say" not in turn and "wav" not in turn or turn["means"] not in bank.means):
            out.add(file, f"{where}.means", f"{turn['means']!r} is no choice, intent or FAQ id of the bank flow")
        if "say" in turn and (not isinstance(turn["say"], str) or not turn["say"].strip()):
            out.add(file, f"{where}.say", "must be a text")
        if "dtmf" in turn and not re.fullmatch(r"[0-9*#]+", str(turn["dtmf"])):
            out.add(file, f"{where}.dtmf", "keys are 0-9, * and #")
        if "wav" in turn:
            path = _wav_path(file, str(turn["wav"]))
            if "${SHARED}" in str(turn["wav"]) and not SHARED.is_dir():
                continue  # ../shared is a development checkout's, not a user's
            if not path.is_file():
                out.add(file, f"{where}.wav", f"no such recording: {path}")
        for key in ("silence_ms", "barge_in_after_ms", "gap_ms"):
            if key in turn and (not isinstance(turn[key], int) or turn[key] < 0):
                out.add(file, f"{where}.{key}", "must be a whole number of ms")


def check_react(file: Path, react: Any, out: Problems) -> None:
    if not out.mapping(file, "react", react, REACT_KEYS):
        return
    confirm = react.get("confirm")
    if confirm is not None and (not isinstance(confirm, dict) or set(confirm) != {"yes", "no"}
                                or not all(isinstance(v, str) for v in confirm.values())):
        out.add(file, "react.confirm", "needs the texts 'yes' and 'no' (quoted keys)")
    for n, item in enumerate(react.get("reprompt") or [], 1):
        if not (isinstance(item, str) or isinstance(item, dict) and set(item) == {"dtmf"}):
            out.add(file, f"react.reprompt[{n}]", "is repeat, a text or {dtmf: KEYS}")
    if "yes_no" in react and not isinstance(react["yes_no"], str):
        out.add(file, "react.yes_no", "must be a text (quote yes and no)")


def check_expect(file: Path, expect: Any, bank: BankFlow, out: Problems) -> None:
    if not isinstance(expect, dict) or not expect:
        out.add(file, "expect", "every call says what its right outcome is")
        return
    for key in sorted(set(expect) - EXPECT_KEYS):
        out.add(file, f"expect.{key}", "unknown key")
    if expect.get("outcome") not in OUTCOMES:
        out.add(file, "expect.outcome", f"{expect.get('outcome')!r} is not one of {sorted(OUTCOMES)}")
    nodes = expect.get("nodes", [])
    if not isinstance(nodes, list) or set(nodes) - bank.nodes:
        out.add(file, "expect.nodes", f"{nodes!r} names nodes the bank flow does not have")
    if "faq" in expect and expect["faq"] not in bank.faq_ids:
        out.add(file, "expect.faq", f"{expect['faq']!r} is no FAQ entry")
    slots = expect.get("slots", {})
    if not isinstance(slots, dict) or set(slots) - bank.slots or not all(isinstance(v, str) for v in slots.values()):
        out.add(file, "expect.slots", "slot names of the flow, values as quoted strings")
    if "escalated" in expect and not isinstance(expect["escalated"], bool):
        out.add(file, "expect.escalated", "true or false")


def check_split(split: str, bank: BankFlow) -> Problems:
    out = Problems(split)
    for file in scenario_files(split):
        try:
            data = load(file)
        except yaml.YAMLError as error:
            out.add(file, "yaml", str(error).splitlines()[0])
            continue
        if not isinstance(data, dict):
            out.add(file, "file", "a scenario is a mapping")
            continue
        for key in sorted(set(data) - TOP_KEYS):
            out.add(file, key, "unknown key")
        if not isinstance(data.get("name"), str) or not data["name"].strip():
            out.add(file, "name", "required")
        if not isinstance(data.get("tags", []), list):
            out.add(file, "tags", "a list")
        if data.get("flow", "bank") != "bank":
            out.add(file, "flow", "this suite is for the bundled bank flow")
        check_caller(file, data.get("caller"), out)
        check_turns(file, data.get("turns"), bank, out)
        if "react" in data:
            check_react(file, data["react"], out)
        check_expect(file, data.get("expect"), bank, out)
    return out


@pytest.mark.parametrize("split", SPLITS)
def test_every_scenario_is_well_formed(split: str, bank: BankFlow) -> None:
    files = scenario_files(split)
    assert len(files) >= MIN_SCENARIOS[split], f"suites/bank/{split} has {len(files)} scenarios"
    check_split(split, bank).report()


@pytest.mark.parametrize("split", SPLITS)
def test_the_runner_loads_every_scenario(split: str) -> None:
    """`ivr test` accepts every file (its loader also finds the recordings under ${SHARED})."""
    if not SHARED.is_dir():
        pytest.skip(f"shared data not found at {SHARED}: the suite's recordings come from ../shared")
    catalog = FlowCatalog()
    out = Problems(split)
    for file in scenario_files(split):
        try:
            load_scenario(file, catalog)
        except ScenarioError as error:
            out.add(file, "ivr test's loader", str(error))
    out.report()


def _voices(split: str) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """(file name, voice setting) for every call: espeak-ng voice+variant, or Piper's speed and noise."""
    for file in scenario_files(split):
        caller = load(file)["caller"]
        if caller["voice"] == "espeak-ng":
            yield file.name, ("espeak-ng", caller["variant"])
        else:
            yield file.name, ("piper", float(caller["speed"]), float(caller["noise_scale"]))


def _recordings(split: str) -> set[str]:
    return {str(turn["wav"]) if "${SHARED}" in str(turn["wav"]) else turn["wav"].split("/")[-1]
            for file in scenario_files(split) for turn in load(file)["turns"] if "wav" in turn}


def test_heldout_voices_and_recordings_never_appear_in_dev() -> None:
    dev = {setting for _, setting in _voices("dev")}
    clashes = [name for name, setting in _voices("heldout") if setting in dev]
    if clashes:
        pytest.fail(f"held-out files whose caller voice is also used in dev: {', '.join(clashes)}", pytrace=False)
    dev_variants = {s[1].split("+")[1] for s in dev if s[0] == "espeak-ng"}
    dev_piper = {v for s in dev if s[0] == "piper" for v in (("speed", s[1]), ("noise", s[2]))}
    for name, setting in _voices("heldout"):
        if setting[0] == "espeak-ng" and setting[1].split("+")[1] in dev_variants:
            pytest.fail(f"heldout/{name}: its espeak-ng variant is also used in dev", pytrace=False)
        if setting[0] == "piper" and {("speed", setting[1]), ("noise", setting[2])} & dev_piper:
            pytest.fail(f"heldout/{name}: its Piper speed or noise scale is also used in dev", pytrace=False)
    if _recordings("heldout") & _recordings("dev"):
        pytest.fail("a human recording of the held-out split is also played in dev", pytrace=False)


def _said(file: Path) -> dict[str, str]:
    """What the caller says in a scenario (turns and reactions), lower case without punctuation, with the
    key that says it (the first one)."""
    data = load(file)
    react = data.get("react") or {}
    texts = [(f"turns[{n}].say", t["say"]) for n, t in enumerate(data["turns"], 1) if "say" in t]
    texts += [(f"react.reprompt[{n}]", r) for n, r in enumerate(react.get("reprompt") or [], 1)
              if isinstance(r, str) and r != "repeat"]
    texts += [(f"react.confirm.{k}", v) for k, v in (react.get("confirm") or {}).items()]
    texts += [("react.yes_no", react["yes_no"])] if "yes_no" in react else []
    said: dict[str, str] = {}
    for key, text in texts:
        said.setdefault(" ".join(re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()), key)
    return said


def _sentences(file: Path) -> set[str]:
    return set(_said(file))


def test_no_sentence_is_said_in_both_splits() -> None:
    heldout = set().union(*(_sentences(file) for file in scenario_files("heldout")))
    shared = [file.name for file in scenario_files("dev") if _sentences(file) & heldout]
    if shared:  # dev files only: which of their sentences is for the dev writer to find
        pytest.fail(f"dev scenarios that say a sentence of the held-out split: {', '.join(shared)}", pytrace=False)


def test_each_split_covers_the_whole_bank_flow(bank: BankFlow) -> None:
    for split in SPLITS:
        scenarios = [load(file) for file in scenario_files(split)]
        nodes = {n for s in scenarios for n in s["expect"].get("nodes", [])}
        faqs = {s["expect"]["faq"] for s in scenarios if "faq" in s["expect"]}
        slots = {k for s in scenarios for k in s["expect"].get("slots", {})}
        missing = sorted((STABLE_NODES - nodes) | (bank.faq_ids - faqs) | (bank.slots - slots))
        if missing:  # names of the flow, not contents of the split
            pytest.fail(f"suites/bank/{split} has no call that expects {', '.join(missing)}", pytrace=False)
        escalated = sum(bool(s["expect"].get("escalated")) for s in scenarios)
        noisy = sum("noise_snr_db" in s["caller"]["line"] for s in scenarios)
        assert escalated >= 2, f"suites/bank/{split}: upset callers who should reach a person"
        assert 0.25 <= noisy / len(scenarios) <= 0.45, f"suites/bank/{split}: about a third of calls with line noise"


def test_fresh_split_shares_no_voice_recording_or_sentence_with_the_others() -> None:
    """suites/bank/fresh is new to everything tuned so far: its espeak-ng variants, Piper speeds and noise
    scales, recordings and sentences appear in neither dev nor heldout (reported by fresh file and key)."""
    others = [setting for split in ("dev", "heldout") for _, setting in _voices(split)]
    variants = {s[1].split("+")[1].lower() for s in others if s[0] == "espeak-ng"}
    piper = {v for s in others if s[0] == "piper" for v in (("speed", s[1]), ("noise", s[2]))}
    problems = []
    for name, setting in _voices("fresh"):
        if setting[0] == "espeak-ng" and setting[1].split("+")[1].lower() in variants:
            problems.append(f"fresh/{name}: caller.variant: also used in dev or heldout")
        if setting[0] == "piper":
            problems += [f"fresh/{name}: caller.{'speed' if kind == 'speed' else 'noise_scale'}: "
                         "also used in dev or heldout" for kind, value in (("speed", setting[1]), ("noise", setting[2]))
                         if (kind, value) in piper]
    recordings = _recordings("dev") | _recordings("heldout")
    for file in scenario_files("fresh"):
        for n, turn in enumerate(load(file)["turns"], 1):
            wav = str(turn.get("wav", ""))
            if wav and (wav if "${SHARED}" in wav else wav.split("/")[-1]) in recordings:
                problems.append(f"fresh/{file.name}: turns[{n}].wav: also played in dev or heldout")
    said = set().union(*(_sentences(file) for split in ("dev", "heldout") for file in scenario_files(split)))
    for file in scenario_files("fresh"):
        problems += [f"fresh/{file.name}: {key}: also said in dev or heldout"
                     for text, key in _said(file).items() if text in said]
    if problems:
        pytest.fail(f"{len(problems)} problem(s) in suites/bank/fresh:\n" + "\n".join(problems), pytrace=False)
