"""Loading flows: the shipped one loads, and a broken flow file gets one line that names the problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dialog.errors import FlowError
from dialog.flow import Flow, default_flow_path, load_default_flow, load_flow
from dialog.matching import match_choice

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


BROKEN_FLOWS = [(case["old"], case["new"], case["message"]) for case in
                yaml.safe_load((Path(__file__).parent / "cases" / "broken_flows.yaml").read_text(encoding="utf-8"))]
"""Edits that break the tiny flow above, and the one line (a regular expression) each must get."""


def broken(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


@pytest.mark.parametrize(("old", "new", "message"), BROKEN_FLOWS, ids=[m[:40] for _, _, m in BROKEN_FLOWS])
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


def test_silence_can_end_a_call_where_the_flow_says():
    flow = load_flow(GOOD.replace("say: Say balance.", "say: Say balance.\n    on_max_no_input: done"))
    assert flow.node("menu").on_max_no_input == "done"
