"""`ivr test`: scenario files, the simulated line and caller, expectations, and a few whole calls."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from dialog.flow import load_default_flow
from ivr.call.events import from_dict, to_dict
from ivr.cli import main
from ivr.convtest.caller import MAX_REACTIONS_IN_A_ROW, ReactiveCaller
from ivr.convtest.expect import check, happened, is_subsequence
from ivr.convtest.report import summarize, to_junit
from ivr.convtest.runner import ScenarioResult
from ivr.convtest.scenario import (
    Expect,
    React,
    Reply,
    ScenarioError,
    ScenarioTurn,
    VoiceSpec,
    load_scenario,
    load_suite,
)
from telephony.audio.audiofile import write_wav
from telephony.audio.frame import Frame
from telephony.line import LineSpec, apply_line
from telephony.wavfile import CallerTurn

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "suite"

GOOD = """
name: balance by keypad
tags: [balance, keypad]
turns:
  - dtmf: "1"
  - say: "No, that's all."
    means: "no"
expect:
  outcome: completed
  nodes: [balance, goodbye]
"""


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---- loading and validation ---------------------------------------------------------------------

def test_a_scenario_loads_with_its_turns_and_expectations(tmp_path):
    s = load_scenario(write(tmp_path, GOOD))
    assert s.name == "balance by keypad" and s.tags == ("balance", "keypad")
    assert [t.turn.dtmf for t in s.turns] == ["1", ""] and s.turns[1].means == "no"
    assert s.expect.outcome == "completed" and s.expect.nodes == ("balance", "goodbye")
    assert s.voice == VoiceSpec() and s.line is None and s.flow == ""


@pytest.mark.parametrize(("text", "message"), [
    ("turns: [{say: hi}]", "name: required"),
    ("name: x\nturns: []", "turns: required"),
    ("name: x\ncolour: red\nturns: [hi]", "unknown key(s) colour"),
    ("name: x\nturns: [{dtmf: 1}]", "turns[1].dtmf: a quoted string of keys"),
    ("name: x\nturns: [{say: hi, shout: true}]", "turns[1]: unknown key(s) shout"),
    ("name: x\nturns: [{wav: nothere.wav}]", "turns[1].wav:"),
    ("name: x\nturns: [{say: hi, means: balanse}]", "turns[1].means: 'balanse' is no choice"),
    ("name: x\ncaller: {voice: festival}\nturns: [hi]", "caller.voice: 'festival' is not one of"),
    ("name: x\ncaller: {voice: piper, variant: en-gb}\nturns: [hi]", "caller.variant: only for voice: espeak-ng"),
    ("name: x\ncaller: {speed: fast}\nturns: [hi]", "caller.speed: a number"),
    ("name: x\ncaller: {line: {codec: g729}}\nturns: [hi]", "caller.line.codec: 'g729' is not one of"),
    ("name: x\nflow: nowhere.yaml\nturns: [hi]", "flow: 'nowhere.yaml' is neither"),
    ("name: x\nturns: [hi]\nreact: {confirm: {yes: ok}}", "react.confirm: needs both yes and no"),
    ("name: x\nturns: [hi]\nreact: {reprompt: [{shout: x}]}", "react.reprompt[1]:"),
    ("name: x\nturns: [hi]\nexpect: {nodes: [balanse]}", "expect.nodes: no node balanse"),
    ("name: x\nturns: [hi]\nexpect: {faq: nothing_like_it}", "expect.faq: 'nothing_like_it' is not an FAQ id"),
    ("name: x\nturns: [hi]\nexpect: {slots: {account_number: 42719}}", "expect.slots: quote digit values"),
    ("name: x\nturns: [hi]\nexpect: {escalated: maybe}", "expect.escalated: true or false"),
    ("name: [x\n", "invalid YAML"),
])
def test_a_bad_scenario_is_one_line_naming_the_file_and_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError if "YAML" not in message else Exception) as err:
        load_scenario(path)
    assert str(path) in str(err.value) and message in str(err.value)
    assert "\n" not in str(err.value)


def test_shared_expands_to_the_shared_folder(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    (shared / "data").mkdir(parents=True)
    write_wav(shared / "data" / "hello.wav", np.zeros(800, dtype=np.int16), 8000)
    monkeypatch.setenv("IVR_SHARED_DIR", str(shared))
    s = load_scenario(write(tmp_path, "name: x\nturns: [{wav: '${SHARED}/data/hello.wav'}]"))
    assert s.turns[0].turn.wav == str(shared / "data" / "hello.wav")


def test_a_suite_is_filtered_by_tag_and_name_and_skips_flows(tmp_path):
    write(tmp_path, GOOD, "a.yaml")
    (tmp_path / "more").mkdir()
    write(tmp_path / "more", "name: agent please\ntags: [agent]\nturns: [{dtmf: '0'}]\n", "b.yaml")
    write(tmp_path, "name: f\nstart: n\nnodes: {n: {say: hi, hangup: {reason: done}}}\n", "flow.yaml")
    assert [s.name for s in load_suite(tmp_path)] == ["balance by keypad", "agent please"]
    assert [s.slug for s in load_suite(tmp_path)] == ["a", "more_b"]
    assert [s.name for s in load_suite(tmp_path, tags=["agent"])] == ["agent please"]
    assert [s.name for s in load_suite(tmp_path, keyword="KEYPAD")] == ["balance by keypad"]


def test_the_example_suite_loads():
    assert len(load_suite(EXAMPLES)) == 3


def test_a_bad_suite_file_exits_2_before_any_model_loads(tmp_path, capsys):
    path = write(tmp_path, "name: x\nturns: [{dtmf: 1}]")
    assert main(["test", str(path)]) == 2
    assert "turns[1].dtmf" in capsys.readouterr().err


# ---- the line ------------------------------------------------------------------------------------

def _speechlike(seconds: float = 1.0, rate: int = 8000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    tone = sum(np.sin(2 * np.pi * f * t) for f in (150, 440, 1200, 2500))
    return (3000 * envelope * tone).astype(np.int16)


def test_the_line_is_deterministic_for_a_seed():
    audio = _speechlike()
    line = LineSpec(noise_snr_db=15, seed=7)
    first = apply_line(audio, 8000, line, salt="what is my balance")
    assert first.tobytes() == apply_line(audio, 8000, line, salt="what is my balance").tobytes()
    assert first.tobytes() != apply_line(audio, 8000, LineSpec(noise_snr_db=15, seed=8),
                                         salt="what is my balance").tobytes()


def test_the_line_adds_noise_at_the_asked_level_around_the_speech():
    audio = _speechlike()
    clean = apply_line(audio, 8000, LineSpec(codec="none")).astype(np.float64)
    noisy = apply_line(audio, 8000, LineSpec(codec="none", noise_snr_db=10, noise="pink")).astype(np.float64)
    lead = int(0.3 * 8000)
    assert noisy.size > clean.size and np.std(noisy[: lead // 2]) > 0  # noise before the speech
    noise = noisy[lead: lead + clean.size] - clean
    snr_db = 10 * np.log10(np.mean(clean ** 2) / np.mean(noise ** 2))
    assert 8 < snr_db < 12


def test_the_telephone_band_removes_low_hum_and_g711_quantizes():
    rate = 8000
    hum = (8000 * np.sin(2 * np.pi * 60 * np.arange(rate) / rate)).astype(np.int16)
    assert np.std(apply_line(hum, rate, LineSpec(codec="none"))) < 0.05 * np.std(hum)
    assert np.array_equal(apply_line(hum, rate, LineSpec(band="wide", codec="none")), hum)
    mulaw = apply_line(hum, rate, LineSpec(band="wide", codec="pcmu"))
    assert not np.array_equal(mulaw, hum) and np.max(np.abs(mulaw.astype(int) - hum)) < 600


# ---- expectations --------------------------------------------------------------------------------

def test_nodes_are_checked_in_order_with_others_between():
    assert is_subsequence(["balance", "goodbye"], ["main_menu", "balance", "main_menu", "goodbye"])
    assert not is_subsequence(["goodbye", "balance"], ["main_menu", "balance", "goodbye"])


EVENTS = [from_dict(record) for record in [
    {"t_ms": 0, "type": "dialog", "event": "CallStarted", "node": "main_menu"},
    {"t_ms": 0, "type": "say", "text": " ".join(load_default_flow().nodes["greeting"].say) + " How can I help?"},
    {"t_ms": 900, "type": "listening", "node": "main_menu", "asks": "menu", "about": ""},
    {"t_ms": 1500, "type": "speech_started", "onset_ms": 1480},
    {"t_ms": 3000, "type": "speech_stopped", "onset_ms": 1480, "end_ms": 2500},
    {"t_ms": 3400, "type": "transcript", "text": "how much do I play abroad", "confidence": 0.9},
    {"t_ms": 3400, "type": "nlu", "intent": "", "faq": "exchange_rate"},
    {"t_ms": 3400, "type": "dialog", "event": "Utterance", "node": "main_menu"},
    {"t_ms": 5000, "type": "listening", "node": "main_menu", "asks": "faq", "about": ""},
    {"t_ms": 6000, "type": "dtmf", "digit": "*"},
    {"t_ms": 6000, "type": "dialog", "event": "DigitsEntered", "node": "transfer_agent"},
    {"t_ms": 6100, "type": "reply_started", "latency_ms": 700.0},
    {"t_ms": 9000, "type": "call_ended", "outcome": "transferred", "reason": "caller-request",
     "target": "sip:queue@agents", "node": "transfer_agent", "slots": {"account_number": "427193"}},
]]


def _played():
    from ivr.convtest.caller import StartedTurn
    return [StartedTurn(1480, CallerTurn(say="How much do I pay abroad?"), "script", "exchange_rate"),
            StartedTurn(5990, CallerTurn(dtmf="0"), "script")]


def test_what_happened_is_read_from_the_events():
    facts = happened(EVENTS, _played(), load_default_flow())
    assert facts.nodes == ["greeting", "main_menu", "transfer_agent"]
    assert facts.faqs == ["exchange_rate"] and facts.slots == {"account_number": "427193"}
    assert (facts.outcome, facts.reason, facts.target) == ("transferred", "caller-request", "sip:queue@agents")
    said, keyed = facts.turns
    assert said.heard == ["how much do I play abroad"] and said.word_errors() == (1, 6)
    assert said.intents == ["faq:exchange_rate"] and keyed.nodes == ["transfer_agent"]
    assert facts.latencies_ms == [700.0]


def test_a_turn_understood_from_a_next_best_hypothesis_says_so():
    events = [from_dict({**to_dict(e), "hypothesis": 1}) if e.kind == "nlu" else e for e in EVENTS]
    said, _ = happened(events, _played(), load_default_flow()).turns
    assert said.heard == ["how much do I play abroad"]  # what the recognizer heard best (its WER)
    assert said.intents == ["faq:exchange_rate (hypothesis 2)"]


def test_each_expectation_says_what_happened_instead():
    facts = happened(EVENTS, _played(), load_default_flow())
    checks = check(Expect(outcome="completed", target="sip:queue@agents", nodes=("balance", "goodbye"),
                          faq="exchange_rate", slots=(("account_number", "427193"),), escalated=False), facts)
    assert [(c.key, c.ok) for c in checks] == [("outcome", False), ("target", True), ("nodes", False),
                                               ("faq", True), ("slots", True), ("escalated", True)]
    assert checks[0].describe() == "outcome: expected completed, got transferred"
    assert checks[2].describe() == ("nodes: expected [balance, goodbye], visited "
                                    "[greeting, main_menu, transfer_agent]")


def test_a_failed_scenario_is_a_junit_failure_with_the_turns(tmp_path):
    scenario = load_scenario(write(tmp_path, GOOD))
    facts = happened(EVENTS, _played(), load_default_flow())
    failed = ScenarioResult(scenario, check(scenario.expect, facts), facts, wall_s=1.5)
    broken = ScenarioResult(scenario, error="espeak-ng voice 'xx' failed")
    passed = ScenarioResult(scenario, check(Expect(outcome="transferred"), facts), facts)
    tree = to_junit("suite", [failed, broken, passed])
    path = tmp_path / "junit.xml"
    tree.write(path, encoding="utf-8", xml_declaration=True)
    root = ET.parse(path).getroot()
    suite = root.find("testsuite")
    assert suite is not None and suite.get("tests") == "3" and suite.get("failures") == "1"
    assert suite.get("errors") == "1"
    cases = suite.findall("testcase")
    failure = cases[0].find("failure")
    assert failure is not None and failure.get("message") == "outcome: expected completed, got transferred"
    assert "said 'How much do I pay abroad?', heard 'how much do I play abroad'" in (failure.text or "")
    assert cases[1].find("error") is not None and not list(cases[2])
    summary = summarize([failed, passed])
    assert summary["right"] == 1 and summary["by_tag"]["keypad"] == {"right": 1, "calls": 2, "percent": 50.0}
    assert summary["wer"]["by_voice"]["piper"]["word_errors"] == 2


# ---- the reactive caller -------------------------------------------------------------------------

def _caller(react: React, means: str = "balance") -> ReactiveCaller:
    turn = CallerTurn(say="How much money do I have?")
    caller = ReactiveCaller([(turn, ScenarioTurn(turn, means))], react, 8000,
                            speak=lambda text, rate: np.zeros(800, dtype=np.int16),
                            meanings=lambda about: {"balance"} if about == "balance" else set())
    assert _next_turn(caller) == ("script", turn)
    return caller


def _next_turn(caller: ReactiveCaller) -> tuple[str, CallerTurn] | None:
    """Let the agent talk, then be quiet, until the caller starts a turn: (its role, the turn)."""
    begun = len(caller.started)
    t0 = caller.started[-1][0] + 2000 if caller.started else 0.0
    for tick in range(200):
        t = t0 + 20 * tick
        level = 5000 if tick < 10 else 0
        caller.write(Frame.from_samples(np.full(160, level, dtype=np.int16), 8000, t))
        caller.read(t)
        caller.pressed_keys()
        if len(caller.started) > begun:
            played = caller.turns_played()[-1]
            return played.role, played.turn
    return None


CONFIRM = React(confirm_yes=Reply(say="yes please"), confirm_no=Reply(say="no"))


@pytest.mark.parametrize(("means", "answer"), [("balance", "yes please"), ("hours", "no")])
def test_the_caller_confirms_only_what_it_meant(means, answer):
    caller = _caller(CONFIRM, means)
    caller.on_event(from_dict({"type": "listening", "asks": "confirm", "about": "balance"}))
    assert _next_turn(caller) == ("confirm", CallerTurn(say=answer))


def test_reprompts_take_the_next_reaction_but_not_after_silence():
    caller = _caller(React(reprompt=(Reply(repeat=True), Reply(dtmf="1"))))
    caller.on_event(from_dict({"type": "dialog", "event": "NoInput"}))
    caller.on_event(from_dict({"type": "listening", "asks": "reprompt"}))
    assert _next_turn(caller) is None  # no reaction to a no-input reprompt
    caller.on_event(from_dict({"type": "dialog", "event": "Utterance"}))
    caller.on_event(from_dict({"type": "listening", "asks": "reprompt"}))
    assert _next_turn(caller) == ("reprompt", CallerTurn(say="How much money do I have?"))
    caller.on_event(from_dict({"type": "listening", "asks": "reprompt"}))
    assert _next_turn(caller) == ("reprompt", CallerTurn(dtmf="1"))
    caller.on_event(from_dict({"type": "listening", "asks": "reprompt"}))
    assert _next_turn(caller) is None  # reactions used up: the script goes on (here: it has ended)


def test_a_caller_asked_again_and_again_stops_answering():
    caller = _caller(CONFIRM, "hours")
    answers = []
    for _ in range(MAX_REACTIONS_IN_A_ROW + 2):
        caller.on_event(from_dict({"type": "listening", "asks": "confirm", "about": "balance"}))
        answers.append(_next_turn(caller))
    assert answers == [("confirm", CallerTurn(say="no"))] * MAX_REACTIONS_IN_A_ROW + [None, None]


def test_no_reaction_configured_or_caller_talking_means_the_script_goes_on():
    caller = _caller(React())
    caller.on_event(from_dict({"type": "listening", "asks": "confirm", "about": "balance"}))
    assert _next_turn(caller) is None
    caller = _caller(React(yes_no=Reply(say="yes")))
    caller.on_event(from_dict({"type": "speech_started", "onset_ms": 100}))
    caller.on_event(from_dict({"type": "listening", "asks": "yes_no"}))
    assert _next_turn(caller) is None
    caller.on_event(from_dict({"type": "speech_stopped", "onset_ms": 100}))
    caller.on_event(from_dict({"type": "listening", "asks": "faq"}))
    assert _next_turn(caller) == ("faq", CallerTurn(say="yes"))


def test_a_wrong_read_back_is_denied_and_the_number_said_again():
    turn = CallerTurn(say="four two seven one nine three")
    caller = ReactiveCaller([(turn, ScenarioTurn(turn, ""))], React(yes_no=Reply(say="yes")), 8000,
                            speak=lambda text, rate: np.zeros(800, dtype=np.int16), meanings=lambda about: set(),
                            expected_slots={"account_number": "427193"})
    assert _next_turn(caller) == ("script", turn)
    caller.on_event(from_dict({"type": "say", "text": "I heard 4 2 7 1 9. Is that right?"}))
    caller.on_event(from_dict({"type": "listening", "asks": "yes_no"}))
    assert _next_turn(caller) == ("yes_no", CallerTurn(say="no, that's not right"))
    caller.on_event(from_dict({"type": "listening", "asks": "collect"}))
    assert _next_turn(caller) == ("collect", turn)  # asked again: the caller says the number again
    caller.on_event(from_dict({"type": "say", "text": "I heard 4 2 7 1 9 3. Is that right?"}))
    caller.on_event(from_dict({"type": "listening", "asks": "yes_no"}))
    assert _next_turn(caller) == ("yes_no", CallerTurn(say="yes"))


@pytest.mark.parametrize(("answered", "answer"), [("new_card_delivery", "yes"), ("pin_change", "nope")])
def test_the_caller_says_whether_the_faq_answer_was_what_it_asked(answered, answer):
    caller = _caller(React(yes_no=Reply(say="yes"), confirm_no=Reply(say="nope")), means="new_card_delivery")
    caller.on_event(from_dict({"type": "nlu", "intent": "", "faq": answered}))
    caller.on_event(from_dict({"type": "listening", "asks": "faq"}))
    assert _next_turn(caller) == ("faq", CallerTurn(say=answer))


def test_caller_turns_are_cached_by_voice_and_text(tmp_path):
    from ivr.convtest.voices import CallerVoices
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    voice = VoiceSpec("espeak-ng", "en-gb-scotland+m3", 1.2)
    first = CallerVoices(tmp_path)
    audio = first.speak(voice, "What is my balance?", 8000)
    assert first.synthesized == 1 and audio.size > 4000
    again = CallerVoices(tmp_path)
    assert np.array_equal(again.speak(voice, "What is my balance?", 8000), audio) and again.synthesized == 0
    slower = again.speak(VoiceSpec("espeak-ng", "en-gb-scotland+m3", 0.8), "What is my balance?", 8000)
    assert again.synthesized == 1 and slower.size > audio.size


# ---- whole calls on the real models --------------------------------------------------------------

CONFIRM_FLOW = """
name: confirm-test
start: menu
settings:
  intent_threshold: 1.0          # never sure enough: every understood turn is asked about
  intent_confirm_threshold: 0.05
nodes:
  menu:
    say: What do you need?
    expect:
      - {intent: balance, goto: balance}
      - {intent: hours, goto: hours}
  balance:
    say: Your balance is fine.
    hangup: {reason: completed}
  hours:
    say: We are open.
    hangup: {reason: completed}
"""


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    from ivr.call.services import Services
    from ivr.config import AgentConfig
    return Services.load(AgentConfig(tts_cache_dir=str(tmp_path_factory.mktemp("prompts"))))


@pytest.fixture
def shared_services(services, monkeypatch):
    """`ivr test` in this process uses the module's loaded models."""
    from ivr.call.services import Services
    monkeypatch.setattr(Services, "load", classmethod(lambda cls, config, prewarm=True, presynthesize=False: services))
    return services


@pytest.mark.models
def test_example_calls_by_keypad_and_by_voice_pass(shared_services, tmp_path, capsys):
    out = tmp_path / "calls"
    code = main(["test", str(EXAMPLES), "-k", "keypad", "--tag", "balance", "--cache", str(tmp_path / "c"),
                 "--out", str(out), "--json", str(tmp_path / "r.json")])
    assert code == 0, capsys.readouterr().out
    code = main(["test", str(EXAMPLES / "agent_scottish.yaml"), "--cache", str(tmp_path / "c"),
                 "--json", str(tmp_path / "s.json")])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "calls right: 1/1 (100.0%)" in printed and "espeak-ng en-gb-scotland+m3 x0.9" in printed
    assert (out / "balance_keypad" / "recording.wav").exists() and (out / "balance_keypad" / "events.jsonl").exists()
    spoken = json.loads((tmp_path / "s.json").read_text())["scenarios"][0]
    assert spoken["happened"]["target"] == "sip:queue@agents"
    assert spoken["turns"][0]["heard"] and spoken["turns"][0]["words"] == 9


@pytest.mark.models
def test_a_failing_expectation_exits_1_with_a_junit_failure(shared_services, tmp_path, capsys):
    path = write(tmp_path, "name: agent by key 0\nturns: [{dtmf: '0'}]\nexpect: {outcome: completed}\n")
    junit = tmp_path / "junit.xml"
    assert main(["test", str(path), "--junit", str(junit), "--no-cache"]) == 1
    assert "outcome: expected completed, got transferred" in capsys.readouterr().out
    failure = ET.parse(junit).getroot().find("testsuite/testcase/failure")
    assert failure is not None and "transferred" in failure.get("message", "")


@pytest.mark.models
def test_the_caller_answers_did_you_mean(shared_services, tmp_path, capsys):
    write(tmp_path, CONFIRM_FLOW, "flow.yaml")
    write(tmp_path, """
name: confirm yes
flow: flow.yaml
turns:
  - {say: "What is my balance?", means: balance}
react:
  confirm: {yes: "yes, that's right", no: "no, that's not it"}
expect: {nodes: [menu, balance], outcome: completed}
""")
    assert main(["test", str(tmp_path), "--json", str(tmp_path / "r.json"), "--no-cache"]) == 0, \
        capsys.readouterr().out
    turns = json.loads((tmp_path / "r.json").read_text())["scenarios"][0]["turns"]
    assert [(t["role"], t.get("said")) for t in turns] == [("script", "What is my balance?"),
                                                           ("confirm", "yes, that's right")]
