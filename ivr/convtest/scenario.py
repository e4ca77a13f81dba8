"""Conversation-test scenarios: one YAML file per whole call, loaded and checked with one-line errors.

A scenario names the caller's voice and line, the caller's turns (the turn kinds of `ivr call --script`,
plus `means` on a turn: what it asks for), how the caller reacts when the agent asks instead of moving on,
and what must hold at the end of the call. See README.md, "Testing your flows: `ivr test`".
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dialog.flow import Flow
from ivr.errors import IvrError
from models.errors import AgentError
from telephony.line import BANDS, CODECS, NOISES, LineSpec
from telephony.wavfile import TURN_KEYS, CallerTurn
from telephony.yamlfile import read_yaml

REPO = Path(__file__).resolve().parents[2]
SHARED_VAR = "${SHARED}"
VOICE_ENGINES = ("piper", "espeak-ng")
DTMF_KEYS = set("0123456789*#ABCD")
BANK_FLOW = "bank"

SCENARIO_KEYS = {"name", "tags", "flow", "caller", "turns", "react", "expect"}
CALLER_KEYS = {"voice", "variant", "speed", "noise_scale", "line"}
LINE_KEYS = {"band", "codec", "noise_snr_db", "noise", "seed"}
REACT_KEYS = {"confirm", "reprompt", "yes_no"}
EXPECT_KEYS = {"outcome", "reason", "target", "nodes", "faq", "slots", "escalated"}


class ScenarioError(IvrError):
    """A scenario file that cannot be run: the message names the file and the key."""


@dataclass(frozen=True)
class VoiceSpec:
    """The simulated caller's voice."""

    engine: str = "piper"
    """piper (the bundled en_US-joe-medium voice) or espeak-ng."""
    variant: str = ""
    """espeak-ng: a voice[+variant] that `espeak-ng --voices` lists (default en-us)."""
    speed: float = 1.0
    """1.0 normal; piper: length_scale = 1/speed; espeak-ng: 175*speed words a minute."""
    noise_scale: float | None = None
    """piper only: the voice's variability (None: the voice's own setting)."""

    @property
    def label(self) -> str:
        """For reports: engine, variant and speed (what WER is aggregated by)."""
        name = self.engine if self.engine == "piper" else f"{self.engine} {self.variant or 'en-us'}"
        return name if self.speed == 1.0 else f"{name} x{self.speed:g}"


@dataclass(frozen=True)
class Reply:
    """What the caller does in reaction: say a text, press keys, or repeat their last scripted turn."""

    say: str = ""
    dtmf: str = ""
    repeat: bool = False


@dataclass(frozen=True)
class React:
    confirm_yes: Reply | None = None
    """The answer to "Did you mean X?" when X is the current turn's `means`."""
    confirm_no: Reply | None = None
    """... and when it is not."""
    reprompt: tuple[Reply, ...] = ()
    """After each no-match re-prompt, the next of these (then the script goes on)."""
    yes_no: Reply | None = None
    """The answer to a yes/no question: a read-back (an account number read back) or "Did that answer your
    question?" after an FAQ answer."""


@dataclass(frozen=True)
class Expect:
    """What must hold at the end of the call; None (or empty) is not checked."""

    outcome: str | None = None
    reason: str | None = None
    target: str | None = None
    nodes: tuple[str, ...] | None = None
    """Visited in this order; other nodes may come between."""
    faq: str | None = None
    """This FAQ entry was answered."""
    slots: tuple[tuple[str, str], ...] | None = None
    escalated: bool | None = None
    """The call was (not) handed over for negative emotion."""


@dataclass(frozen=True)
class ScenarioTurn:
    turn: CallerTurn
    means: str = ""
    """The flow choice, intent or FAQ id this turn asks for ("" when not said)."""


@dataclass(frozen=True)
class Scenario:
    path: Path
    name: str
    slug: str
    """A file-system-safe id, unique within the suite (from the file's path)."""
    turns: tuple[ScenarioTurn, ...]
    tags: tuple[str, ...] = ()
    flow: str = ""
    """"" for the bundled bank flow, else a flow file's absolute path."""
    voice: VoiceSpec = VoiceSpec()
    line: LineSpec | None = None
    """None: the caller's audio reaches the session as synthesized (no band, codec or noise)."""
    react: React = React()
    expect: Expect = field(default_factory=Expect)


def shared_dir() -> Path:
    """${SHARED}: $IVR_SHARED_DIR, else ../shared beside the repository."""
    env = os.environ.get("IVR_SHARED_DIR")
    return Path(env) if env else REPO.parent / "shared"


def find_scenarios(target: str | Path) -> list[Path]:
    """SUITE: one .yaml file, or a folder searched recursively for *.yaml / *.yml, in path order (flows and
    FAQs among them are skipped by load_suite)."""
    root = Path(target)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise ScenarioError(f"{root}: no such suite (a scenario .yaml file or a folder of them)")
    files = sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    if not files:
        raise ScenarioError(f"{root}: no scenario files (*.yaml) in this folder")
    return files


def load_suite(target: str | Path, tags: list[str] | None = None, keyword: str | None = None,
               flows: FlowCatalog | None = None) -> list[Scenario]:
    """Every scenario of the suite that has one of `tags` (when given) and whose name or file contains
    `keyword` (when given, case-insensitive)."""
    root = Path(target)
    catalog = flows or FlowCatalog()
    scenarios = []
    base = root if root.is_dir() else root.parent
    for path in find_scenarios(root):
        if root.is_dir() and _not_a_scenario(path):
            continue
        scenario = load_scenario(path, catalog, _slug(path.relative_to(base)))
        if tags and not set(tags) & set(scenario.tags):
            continue
        if keyword and keyword.lower() not in f"{scenario.name} {path}".lower():
            continue
        scenarios.append(scenario)
    return scenarios


def _not_a_scenario(path: Path) -> bool:
    """A flow (nodes:) or an FAQ (entries:) kept beside the scenarios that use it."""
    data = read_yaml(path, "scenario")
    return isinstance(data, dict) and "turns" not in data and ("nodes" in data or "entries" in data)


def _slug(relative: Path) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(relative.with_suffix(""))).strip("_") or "scenario"


class FlowCatalog:
    """Flows of a suite, each loaded once, and the names a scenario may refer to in them."""

    def __init__(self, default: str = "") -> None:
        """`default`: the flow of scenarios that name none (a flow file's path; "" the bundled bank flow)."""
        self.default = str(Path(default).resolve()) if default else ""
        self._flows: dict[str, Flow] = {}
        self._faq_ids: tuple[str, ...] | None = None

    def flow(self, key: str) -> Flow:
        """"" is the bundled bank flow; else a flow file's path. FlowError when it cannot be loaded."""
        if key not in self._flows:
            from dialog.flow import load_default_flow, load_flow
            self._flows[key] = load_flow(Path(key)) if key else load_default_flow()
        return self._flows[key]

    def faq_ids(self) -> tuple[str, ...]:
        if self._faq_ids is None:
            from dialog.nlu.faq import load_faq
            self._faq_ids = tuple(entry.id for entry in load_faq().entries)
        return self._faq_ids

    def meanings(self, key: str) -> set[str]:
        """What `means` may name: choice intents and targets, nodes, slots, FAQ ids."""
        flow = self.flow(key)
        names = set(flow.nodes) | set(self.faq_ids())
        for node in flow.nodes.values():
            names.update(c.label for c in node.expect)
            if node.collect is not None:
                names.add(node.collect.slot)
        names.update(c.label for c in flow.global_choices)
        return names


def load_scenario(path: Path, flows: FlowCatalog | None = None, slug: str | None = None) -> Scenario:
    """One scenario file, checked; ScenarioError names the file and the key at fault."""
    data = read_yaml(path, "scenario")
    where = _Where(path)
    if not isinstance(data, dict):
        raise where.error("", "a scenario is a mapping with name, turns, and optionally tags, flow, caller, "
                          "react, expect")
    where.unknown(data, SCENARIO_KEYS, "")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise where.error("name", "required: a text saying what this call is")
    tags = data.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str | int) for t in tags):
        raise where.error("tags", "a list of labels, e.g. [balance, noisy]")
    catalog = flows or FlowCatalog()
    flow = _flow(where, data.get("flow"), catalog)
    voice, line = _caller(where, data.get("caller"))
    turns = _turns(where, data.get("turns"))
    known = catalog.meanings(flow)
    for i, turn in enumerate(turns, 1):
        if turn.means and turn.means not in known:
            raise where.error(f"turns[{i}].means", f"'{turn.means}' is no choice, intent, node, slot or FAQ id "
                              "of the flow")
    react = _react(where, data.get("react"))
    expect = _expect(where, data.get("expect"), catalog.flow(flow), catalog.faq_ids())
    return Scenario(path=path, name=name.strip(), slug=slug or _slug(Path(path.name)), turns=tuple(turns),
                    tags=tuple(str(t) for t in tags), flow=flow, voice=voice, line=line, react=react,
                    expect=expect)


class _Where:
    """Builds the one-line errors: 'FILE: KEY: what is wrong'."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, key: str, message: str) -> ScenarioError:
        return ScenarioError(f"{self.path}: {key}: {message}" if key else f"{self.path}: {message}")

    def unknown(self, data: dict[str, Any], allowed: set[str], key: str) -> None:
        extra = sorted(str(k) for k in set(data) - allowed)
        if extra:
            where = f"{key}: " if key else ""
            raise ScenarioError(f"{self.path}: {where}unknown key(s) {', '.join(extra)}; "
                                f"use {', '.join(sorted(allowed))}")

    def mapping(self, value: Any, key: str, allowed: set[str]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(key, f"a mapping with {', '.join(sorted(allowed))}")
        self.unknown(value, allowed, key)
        return value

    def number(self, value: Any, key: str, low: float, high: float) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise self.error(key, f"a number from {low:g} to {high:g}, not {value!r}")
        return float(value)

    def text(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"a non-empty text, not {value!r}")
        return value


def _flow(where: _Where, value: Any, catalog: FlowCatalog) -> str:
    if value is None:
        key = catalog.default
    elif value == BANK_FLOW:
        key = ""
    else:
        text = where.text(value, "flow")
        p = Path(text)
        p = p if p.is_absolute() else where.path.parent / p
        if not p.is_file():
            raise where.error("flow", f"'{text}' is neither 'bank' nor a flow file ({p} not found)")
        key = str(p.resolve())
    try:
        catalog.flow(key)
    except AgentError as exc:
        raise where.error("flow", str(exc)) from None
    return key


def _caller(where: _Where, value: Any) -> tuple[VoiceSpec, LineSpec | None]:
    data = where.mapping(value, "caller", CALLER_KEYS)
    engine = data.get("voice", "piper")
    if engine not in VOICE_ENGINES:
        raise where.error("caller.voice", f"'{engine}' is not one of {', '.join(VOICE_ENGINES)}")
    variant = data.get("variant", "")
    if variant and engine != "espeak-ng":
        raise where.error("caller.variant", "only for voice: espeak-ng (a voice[+variant] of `espeak-ng --voices`)")
    if variant and not re.fullmatch(r"[A-Za-z0-9_.+-]+", str(variant)):
        raise where.error("caller.variant", f"'{variant}' is not an espeak-ng voice name")
    speed = where.number(data.get("speed", 1.0), "caller.speed", 0.3, 3.0)
    noise_scale = None
    if "noise_scale" in data:
        if engine != "piper":
            raise where.error("caller.noise_scale", "only for voice: piper")
        noise_scale = where.number(data["noise_scale"], "caller.noise_scale", 0.0, 2.0)
    voice = VoiceSpec(str(engine), str(variant), speed, noise_scale)
    if "line" not in data:
        return voice, None
    line = where.mapping(data["line"], "caller.line", LINE_KEYS)
    for key, allowed in (("band", BANDS), ("codec", CODECS), ("noise", NOISES)):
        if key in line and line[key] not in allowed:
            raise where.error(f"caller.line.{key}", f"'{line[key]}' is not one of {', '.join(allowed)}")
    snr = line.get("noise_snr_db")
    seed = line.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise where.error("caller.line.seed", f"a whole number, not {seed!r}")
    spec = LineSpec(band=line.get("band", "telephone"), codec=line.get("codec", "pcmu"),
                    noise_snr_db=None if snr is None else where.number(snr, "caller.line.noise_snr_db", -20, 80),
                    noise=line.get("noise", "white"), seed=seed)
    return voice, spec


def _turns(where: _Where, value: Any) -> list[ScenarioTurn]:
    if not isinstance(value, list) or not value:
        raise where.error("turns", "required: a non-empty list of caller turns (say, wav, dtmf, silence_ms, "
                          "hangup)")
    turns = []
    allowed = TURN_KEYS | {"means"}
    for i, item in enumerate(value, 1):
        key = f"turns[{i}]"
        if isinstance(item, str):
            item = {"say": item}
        if not isinstance(item, dict):
            raise where.error(key, "a mapping (say / wav / dtmf / silence_ms / hangup) or a text")
        where.unknown(item, allowed, key)
        if not set(item) & {"say", "wav", "dtmf", "silence_ms", "hangup"}:
            raise where.error(key, "needs one of say, wav, dtmf, silence_ms, hangup")
        fields: dict[str, Any] = {}
        if "say" in item:
            fields["say"] = where.text(item["say"], f"{key}.say")
        if "wav" in item:
            fields["wav"] = str(_wav_path(where, where.text(item["wav"], f"{key}.wav"), f"{key}.wav"))
        if "dtmf" in item:
            keys = item["dtmf"]
            if not isinstance(keys, str) or not keys or set(keys) - DTMF_KEYS:
                raise where.error(f"{key}.dtmf", f"a quoted string of keys 0-9 * # A-D, not {keys!r}")
            fields["dtmf"] = keys
        for name in ("silence_ms", "gap_ms", "barge_in_after_ms"):
            if name in item:
                fields[name] = int(where.number(item[name], f"{key}.{name}", 0, 600_000))
        if "hangup" in item:
            if not isinstance(item["hangup"], bool):
                raise where.error(f"{key}.hangup", "true or false")
            fields["hangup"] = item["hangup"]
        means = item.get("means", "")
        if means and "say" not in item and "wav" not in item:
            raise where.error(f"{key}.means", "only on a say or wav turn")
        if means != "" and not isinstance(means, str):
            raise where.error(f"{key}.means", f"a choice, intent or FAQ id, not {means!r}")
        turns.append(ScenarioTurn(CallerTurn(**fields), means))
    return turns


def _wav_path(where: _Where, text: str, key: str) -> Path:
    expanded = text.replace(SHARED_VAR, str(shared_dir()))
    p = Path(expanded)
    p = p if p.is_absolute() else where.path.parent / p
    if not p.is_file():
        hint = " (${SHARED} is $IVR_SHARED_DIR or ../shared beside the repository)" if SHARED_VAR in text else ""
        raise where.error(key, f"{p} not found{hint}")
    return p


def _reply(where: _Where, value: Any, key: str, repeat: bool = False) -> Reply:
    if isinstance(value, bool):  # YAML reads a bare yes/no as a boolean
        value = "yes" if value else "no"
    if isinstance(value, str) and value.strip():
        if repeat and value.strip() == "repeat":
            return Reply(repeat=True)
        return Reply(say=value)
    if isinstance(value, dict) and set(value) in ({"dtmf"}, {"say"}):
        if "dtmf" in value:
            keys = value["dtmf"]
            if not isinstance(keys, str) or not keys or set(keys) - DTMF_KEYS:
                raise where.error(f"{key}.dtmf", f"a quoted string of keys 0-9 * # A-D, not {keys!r}")
            return Reply(dtmf=keys)
        return Reply(say=where.text(value["say"], f"{key}.say"))
    choices = "a text, `repeat`, or {dtmf: KEYS}" if repeat else "a text or {dtmf: KEYS}"
    raise where.error(key, f"{choices}, not {value!r}")


def _react(where: _Where, value: Any) -> React:
    data = where.mapping(value, "react", REACT_KEYS)
    yes = no = None
    if "confirm" in data:
        confirm = data["confirm"]
        if not isinstance(confirm, dict):
            raise where.error("react.confirm", "a mapping {yes: TEXT, no: TEXT}")
        confirm = {("yes" if k is True else "no" if k is False else k): v for k, v in confirm.items()}
        where.unknown(confirm, {"yes", "no"}, "react.confirm")
        if set(confirm) != {"yes", "no"}:
            raise where.error("react.confirm", "needs both yes and no")
        yes, no = (_reply(where, confirm[k], f"react.confirm.{k}") for k in ("yes", "no"))
    reprompt: tuple[Reply, ...] = ()
    if "reprompt" in data:
        items = data["reprompt"]
        if not isinstance(items, list) or not items:
            raise where.error("react.reprompt", "a non-empty list, e.g. [repeat, \"I said my balance\"]")
        reprompt = tuple(_reply(where, item, f"react.reprompt[{i}]", repeat=True) for i, item in enumerate(items, 1))
    yes_no = _reply(where, data["yes_no"], "react.yes_no") if "yes_no" in data else None
    return React(yes, no, reprompt, yes_no)


def _expect(where: _Where, value: Any, flow: Flow, faq_ids: tuple[str, ...]) -> Expect:
    data = where.mapping(value, "expect", EXPECT_KEYS)
    texts = {k: where.text(data[k], f"expect.{k}") for k in ("outcome", "reason", "target", "faq") if k in data}
    if "faq" in texts and texts["faq"] not in faq_ids:
        raise where.error("expect.faq", f"'{texts['faq']}' is not an FAQ id ({', '.join(faq_ids)})")
    nodes = None
    if "nodes" in data:
        raw = data["nodes"]
        if not isinstance(raw, list) or not raw or not all(isinstance(n, str) for n in raw):
            raise where.error("expect.nodes", "a non-empty list of node names")
        unknown = [n for n in raw if n not in flow.nodes]
        if unknown:
            raise where.error("expect.nodes", f"no node {', '.join(unknown)} in flow '{flow.name}'")
        nodes = tuple(raw)
    slots = None
    if "slots" in data:
        raw_slots = data["slots"]
        if not isinstance(raw_slots, dict) or not raw_slots:
            raise where.error("expect.slots", "a mapping of slot names to values, e.g. {account_number: \"427193\"}")
        if any(isinstance(v, int) and not isinstance(v, bool) for v in raw_slots.values()):
            raise where.error("expect.slots", "quote digit values (\"042719\"): YAML drops leading zeros of numbers")
        slots = tuple((str(k), str(v)) for k, v in raw_slots.items())
    escalated = data.get("escalated")
    if escalated is not None and not isinstance(escalated, bool):
        raise where.error("expect.escalated", "true or false")
    return Expect(texts.get("outcome"), texts.get("reason"), texts.get("target"), nodes, texts.get("faq"),
                  slots, escalated)
