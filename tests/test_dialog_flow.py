"""Loading flows: the shipped one loads, and a broken flow file gets one line that names the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialog.errors import FlowError
from dialog.flow import Flow, default_flow_path, load_default_flow, load_flow
from dialog.matching import match_choice, normalize

GOOD = """\
name: tiny
start: menu
global:
  - {keywords: [agent], digits: "0", goto: agent}
nodes:
  menu:
    say: Say balance.
    expect:
      - {keywords: [balance], digits: 1, intent: balance, goto: done}
  done:
    hangup: {reason: completed}
  agent:
    transfer: {reason: caller-request}
"""


def test_the_bank_flow_loads_with_its_stable_node_names():
    flow = load_default_flow()
    assert isinstance(flow, Flow)
    assert flow.start == "greeting"
    for name in ("greeting", "main_menu", "balance", "card_lost", "hours",
                 "transfer_agent", "goodbye"):
        assert name in flow.nodes
    assert any("balance" in text for text in flow.node("balance").say)
    assert flow.node("transfer_agent").transfer is not None
    assert default_flow_path().name == "bank.yaml"


def test_load_from_path_str_and_text(tmp_path: Path):
    path = tmp_path / "tiny.yaml"
    path.write_text(GOOD, encoding="utf-8")
    from_path = load_flow(path)
    assert from_path == load_flow(str(path))
    assert from_path.nodes == load_flow(GOOD).nodes
    menu = from_path.node("menu")
    assert menu.kind == "expect" and menu.expect[0].digits == "1"
    assert from_path.global_choices[0].goto == "agent"


def test_a_missing_file_is_named():
    with pytest.raises(FlowError, match="flow file not found: .*nope.yaml"):
        load_flow("nope.yaml")


AGENT = "    transfer: {reason: caller-request}"


def broken(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


@pytest.mark.parametrize(("old", "new", "message"), [
    ("say: Say balance.", "say: [Say balance.", r"line \d+, column \d+: invalid YAML"),
    ("goto: done}", "goto: dnoe}", r"unknown node 'dnoe' \(did you mean 'done'\?\)"),
    ("start: menu", "start: main", r"'start' goes to unknown node 'main'"),
    ("    expect:", "    expcet:",
     r"line 8: node 'menu' has unknown key 'expcet' \(did you mean 'expect'\?\)"),
    ("say: Say balance.", "say: ''", r"node 'menu' 'say' is empty"),
    ("say: Say balance.", "say: []", r"node 'menu' 'say' is empty"),
    ("say: Say balance.", "say:", r"node 'menu' 'say' is empty"),
    (AGENT, "    say: Hi.", r"node 'agent' needs one of 'expect', 'next'"),
    (AGENT, "    transfer: {}", r"node 'agent' 'transfer' has no 'reason'"),
    ("{keywords: [balance]", "{keywords: [yes]", r"quote words like 'yes'"),
    ("digits: 1,", "digits: one,", r"'digits' of the choice 'done' .* must be keypad keys"),
    ("{keywords: [balance]", "{regex: '(', keywords: [balance]", r"not a valid regular expression"),
    ("nodes:", "setings: {}\nnodes:",
     r"the flow has unknown key 'setings' \(did you mean 'settings'\?\)"),
    ("nodes:", "settings: {on_max_no_match: shrug}\nnodes:", r"must be 'transfer' or 'hangup'"),
    ("nodes:", "settings: {max_no_input: -1}\nnodes:", r"'max_no_input' must be a whole number"),
    ("  agent:\n", "  menu:\n", r"line 12: duplicate key 'menu'"),
    (AGENT, "    say: Hi.\n    next: agent", r"loop through 'next'"),
    (AGENT, "    next: menu\n    hangup: {reason: x}", r"give it only one"),
    (AGENT, "    say_text: Hi.\n" + AGENT, r"node 'agent' has 'say_text' but no 'say'"),
    ("say: Say balance.", "say: Say balance.\n    say_text: {a: b}", r"node 'menu' 'say_text' must be text"),
    ("say: Say balance.", "say: Say balance.\n    say_text: ''", r"node 'menu' 'say_text' is empty"),
    ("say: Say balance.", "say: Say balance.\n    saytext: Type balance.",
     r"unknown key 'saytext' \(did you mean 'say_text'\?\)"),
])
def test_broken_flows_get_one_clear_line(old, new, message):
    with pytest.raises(FlowError, match=message) as caught:
        load_flow(broken(old, new))
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("<flow text>")


def test_a_flow_that_is_no_mapping_gets_one_clear_line():
    with pytest.raises(FlowError, match=r"^<flow text>: a flow must be a mapping with 'start' and 'nodes'$"):
        load_flow("just text\n")


def test_the_file_name_is_in_the_error(tmp_path: Path):
    path = tmp_path / "mine.yaml"
    path.write_text(broken("start: menu", "start: nowhere"), encoding="utf-8")
    with pytest.raises(FlowError, match=r"^mine.yaml, line 2: 'start' goes to unknown node 'nowhere'"):
        load_flow(path)


def test_flows_are_immutable():
    flow = load_flow(GOOD)
    with pytest.raises(TypeError):
        flow.nodes["x"] = flow.node("menu")  # type: ignore[index]


# --- matching


@pytest.mark.parametrize(("text", "expected"), [
    ("What's my BALANCE?", "whats my balance"),
    ("Press one, please!", "press 1 please"),
    ("  option   two. ", "option 2"),
    ("I\u2019m done", "im done"),
    ("", ""),
])
def test_normalize(text, expected):
    assert normalize(text) == expected


def choices():
    return load_flow(GOOD).node("menu").expect + load_flow(GOOD).global_choices


@pytest.mark.parametrize(("text", "goto"), [
    ("balance please", "done"),
    ("one", "done"),
    ("press zero", "agent"),
    ("the number one", "done"),
    ("imbalance", None),
    ("one balance", "done"),
    ("I have one question", None),
])
def test_match_choice(text, goto):
    choice = match_choice(text, choices())
    assert (choice.goto if choice else None) == goto


def test_longest_keyword_wins_and_ties_go_to_the_first():
    flow = load_flow("""\
start: m
nodes:
  m:
    say: Hi.
    expect:
      - {keywords: [card], goto: card}
      - {keywords: [card balance], goto: balance}
      - {keywords: [card], goto: other}
  card: {hangup: {reason: a}}
  balance: {hangup: {reason: b}}
  other: {hangup: {reason: c}}
""")
    expect = flow.node("m").expect
    assert match_choice("my card balance", expect).goto == "balance"  # type: ignore[union-attr]
    assert match_choice("my card", expect).goto == "card"  # type: ignore[union-attr]
    assert match_choice("discard", expect) is None


def test_say_text_is_what_a_text_channel_shows_and_a_call_never_says():
    from dialog.events import NoInput
    from dialog.machine import Machine

    flow = load_flow(broken("say: Say balance.", "say: Say balance, or press one.\n    say_text: Type balance, or 1."))
    assert flow.node("menu").say_text == ("Type balance, or 1.",)
    said = {}
    for channel in ("voice", "text"):
        machine = Machine(flow, channel=channel)
        state, opening = machine.start()
        _, retry = machine.step(state, NoInput())  # no reprompt: the prompt again, on its channel
        said[channel] = [a.text for a in [*opening, *retry] if hasattr(a, "text")]
    assert said["voice"] == ["Say balance, or press one.", "Are you still there?", "Say balance, or press one."]
    assert said["text"] == ["Type balance, or 1.", "Are you still there?", "Type balance, or 1."]
    with pytest.raises(ValueError, match="channel"):
        Machine(flow, channel="fax")
