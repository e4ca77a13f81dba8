"""The dialog state machine on the shipped bank flow and on small flows: what a caller would hear and where
the call goes. Hermetic: no models, no audio."""

from __future__ import annotations

import dataclasses

import pytest

from dialog.actions import Hangup, Listen, Say, Transfer
from dialog.errors import FlowError
from dialog.events import (
    CallStarted,
    DigitsEntered,
    MaxDurationReached,
    NoInput,
    RecognitionFailed,
    Utterance,
)
from dialog.flow import load_default_flow, load_flow
from dialog.machine import DialogState, Machine
from tests.dialog_support import at_menu, says


def run(machine: Machine, *events):
    state, actions = machine.start()
    for event in events:
        state, actions = machine.step(state, event)
    return state, actions


# --- the bank flow


def test_start_greets_then_listens_at_the_main_menu(machine):
    state, actions = machine.start()
    assert state.node == "main_menu" and not state.ended
    assert isinstance(actions[0], Say) and "Example Bank" in actions[0].text
    assert isinstance(actions[-1], Listen)
    assert all(isinstance(action, Say) for action in actions[:-1])
    listen = actions[-1]
    assert listen.no_input_timeout_ms == 6000
    assert {"balance", "agent", "representative"} <= set(listen.phrases)


def test_the_greeting_is_long_enough_to_barge_in_on(machine):
    _, actions = machine.start()
    greeting = actions[0]
    assert isinstance(greeting, Say) and greeting.barge_in
    assert len(greeting.text.split()) >= 15  # about five seconds of speech


@pytest.mark.parametrize("text", ["What's my balance?", "balance", "BALANCE.", "How much money do I have",
                                  "one", "Press one.", "option 1", "1"])
def test_balance_by_voice(machine, text):
    state, actions = machine.step(at_menu(machine), Utterance(text, 0.9))
    assert state.node == "balance"  # the call log shows the caller heard the balance
    assert state.last_intent == "balance"
    assert any("balance" in said for said in says(actions))
    assert isinstance(actions[-1], Listen)


def test_balance_by_keypad(machine):
    state, actions = machine.step(at_menu(machine), DigitsEntered("1"))
    assert state.last_choice == "balance"
    assert "balance" in says(actions)[0]


@pytest.mark.parametrize("text", ["I lost my card", "My card was stolen!", "someone stole my card", "two"])
def test_lost_card_goes_to_the_card_team(machine, text):
    state, actions = machine.step(at_menu(machine), Utterance(text))
    assert state.node == "card_lost" and state.ended
    assert actions[-1] == Transfer("sip:cards@agents", "lost-card")


@pytest.mark.parametrize("text", ["When are you open?", "opening hours", "three"])
def test_opening_hours_then_anything_else(machine, text):
    state, actions = machine.step(at_menu(machine), Utterance(text))
    assert state.node == "hours"
    assert "open" in says(actions)[0]
    assert says(actions)[-1] == "Is there anything else I can help you with?"


@pytest.mark.parametrize("event", [Utterance("I want to speak to a representative"), Utterance("Agent."),
                                   Utterance("can I talk to a human please"), Utterance("zero"),
                                   DigitsEntered("0")])
def test_asking_for_a_person_transfers(machine, event):
    state, actions = machine.step(at_menu(machine), event)
    assert state.node == "transfer_agent" and state.ended and state.end_reason == "caller-request"
    assert actions[-1] == Transfer("sip:queue@agents", "caller-request")
    assert isinstance(actions[0], Say)


def test_a_person_can_be_asked_for_in_any_listening_node(machine):
    state, _ = run(machine, Utterance("balance"), Utterance("operator"))
    assert state.node == "transfer_agent"


def test_the_nodes_a_call_log_shows(machine):
    """The session logs state.node after each step: a balance call shows `balance`."""
    state, _ = machine.start()
    logged = [state.node]
    for event in (DigitsEntered("1"), DigitsEntered("0")):
        state, _ = machine.step(state, event)
        logged.append(state.node)
    assert logged == ["main_menu", "balance", "transfer_agent"]


def test_anything_else_yes_returns_to_the_menu_and_no_says_goodbye(machine):
    state, actions = run(machine, Utterance("balance"), Utterance("Yes."))
    assert state.node == "main_menu" and isinstance(actions[-1], Listen)
    state, actions = run(machine, Utterance("balance"), Utterance("No, that's all, thank you."))
    assert state.node == "goodbye" and state.ended
    assert actions[-1] == Hangup("completed")
    assert "Goodbye" in says(actions)[-1]


def test_anything_else_accepts_the_next_question_directly(machine):
    state, _ = run(machine, Utterance("balance"), Utterance("what are your opening hours"))
    assert state.node == "hours" and state.last_intent == "hours"


def test_goodbye_works_everywhere(machine):
    state, actions = machine.step(at_menu(machine), Utterance("That's all, goodbye"))
    assert says(actions) == ["Did you mean that you're all done?"]  # nothing asked yet: confirmed first
    state, actions = machine.step(state, Utterance("yes"))
    assert state.node == "goodbye" and actions[-1] == Hangup("completed")


def test_discard_is_not_card(machine):
    state, actions = machine.step(at_menu(machine), Utterance("I want to discard it"))
    assert state.node == "main_menu" and state.no_match_count == 1
    assert says(actions)[0] == "Sorry, I didn't catch that."


# --- retries and fallbacks


def test_no_input_reprompts_then_hangs_up_in_the_bank_flow(machine):
    state = at_menu(machine)
    state, actions = machine.step(state, NoInput())
    assert state.node == "main_menu" and state.no_input_count == 1 and not state.ended
    assert says(actions)[0] == "Are you still there?"
    assert isinstance(actions[-1], Listen)
    state, actions = machine.step(state, NoInput())
    assert state.no_input_count == 2 and isinstance(actions[-1], Listen)
    state, actions = machine.step(state, NoInput())
    assert state.ended and state.end_reason == "no-input"
    assert actions[-1] == Hangup("no-input")
    assert isinstance(actions[0], Say) and not actions[0].barge_in


def test_no_match_repairs_then_transfers(machine):
    """Three repairs (the options, then keys), then a person on the fourth miss (issue 12: two generic
    re-prompts used to be all a caller got)."""
    state = at_menu(machine)
    for count, prefix in ((1, "Sorry, I didn't catch that."), (2, "Sorry, I still didn't catch that."),
                          (3, "Sorry, I still didn't catch that.")):
        state, actions = machine.step(state, Utterance("blah blah"))
        assert state.no_match_count == count and not state.ended
        assert says(actions)[0] == prefix
        assert isinstance(actions[-1], Listen)
    state, actions = machine.step(state, Utterance("blah"))
    assert state.ended and actions[-1] == Transfer("sip:queue@agents", "no-match")


def test_unknown_keys_count_as_no_match(machine):
    state, actions = machine.step(at_menu(machine), DigitsEntered("7"))
    assert state.no_match_count == 1 and isinstance(actions[-1], Listen)


def test_custom_reprompt_replaces_the_prompt_and_repair_follows_a_miss(machine):
    state, _ = run(machine, Utterance("balance"))
    _, actions = machine.step(state, NoInput())
    assert says(actions) == ["Is there anything else I can help you with? Please say yes or no."]
    _, actions = machine.step(state, Utterance("purple"))
    assert says(actions) == ["Sorry, I didn't catch that.", "Is there anything else I can help you with? Please say "
                             "yes or no, or tell me what you need."]


def test_recognition_failure_counts_as_no_match_with_its_own_reason(machine):
    state = at_menu(machine)
    state, actions = machine.step(state, RecognitionFailed("backend crashed"))
    assert state.no_match_count == 1 and isinstance(actions[-1], Listen)
    state, _ = machine.step(state, Utterance("mumble"))
    state, _ = machine.step(state, Utterance("mumble"))
    state, actions = machine.step(state, RecognitionFailed())
    assert state.ended and actions[-1] == Transfer("sip:queue@agents", "asr-failure")


def test_counters_reset_in_a_new_node(machine):
    state, _ = run(machine, NoInput(), Utterance("nonsense"), Utterance("balance"))
    assert state.node == "balance"
    assert (state.no_input_count, state.no_match_count, state.turn) == (0, 0, 3)


def test_an_empty_utterance_is_no_input(machine):
    state, actions = machine.step(at_menu(machine), Utterance(" ... "))
    assert state.no_input_count == 1 and says(actions)[0] == "Are you still there?"


def test_max_duration_transfers_after_a_closing(machine):
    state, actions = machine.step(at_menu(machine), MaxDurationReached())
    assert state.ended and state.end_reason == "max-duration"
    assert actions[-1] == Transfer("sip:queue@agents", "max-duration")
    assert len(says(actions)) >= 1


# --- small flows for settings the bank flow does not use

SMALL = """
name: small
start: ask
settings:
  max_no_input: 1
  max_no_match: 0
  on_max_no_input: transfer
  on_max_no_match: hangup
  on_max_duration: hangup
  min_confidence: 0.5
  transfer_target: sip:help@example
nodes:
  ask:
    say: [Hello., Say yes.]
    no_input_timeout_ms: 3000
    expect:
      - {keywords: ["yes"], goto: done}
      - {regex: "^account (\\\\d{4})$", goto: done}
      - {digits: "123#", goto: done}
  done:
    say: Bye.
    hangup: {reason: completed}
"""


@pytest.fixture()
def small() -> Machine:
    return Machine(load_flow(SMALL))


def test_say_lists_become_one_say_each_and_node_timeout_is_used(small):
    state, actions = small.start()
    assert says(actions) == ["Hello.", "Say yes."]
    assert actions[-1] == Listen(no_input_timeout_ms=3000, phrases=("yes",), max_digits=3)


def test_no_input_fallback_can_transfer(small):
    state, actions = run(small, NoInput())
    assert says(actions) == ["Are you still there?", "Hello.", "Say yes."]
    state, actions = small.step(state, NoInput())
    assert actions[-1] == Transfer("sip:help@example", "no-input")


def test_no_match_fallback_can_hang_up_at_once(small):
    state, actions = run(small, Utterance("no"))
    assert state.ended and actions[-1] == Hangup("no-match")
    assert says(actions) == ["Thank you for calling. Goodbye."]


def test_low_confidence_is_no_match(small):
    state, _ = run(small, Utterance("yes", confidence=0.2))
    assert state.end_reason == "no-match"
    state, _ = run(small, Utterance("yes", confidence=0.8))
    assert state.end_reason == "completed"


def test_regex_and_multi_digit_choices(small):
    assert run(small, Utterance("Account 1234."))[0].node == "done"
    assert run(small, DigitsEntered("123#"))[0].node == "done"
    assert run(small, DigitsEntered("123"))[0].node == "done"


def test_max_duration_can_hang_up(small):
    state, actions = run(small, MaxDurationReached())
    assert actions[-1] == Hangup("max-duration") and state.end_reason == "max-duration"


# --- purity and contracts


def test_the_machine_is_pure(machine):
    events = [NoInput(), Utterance("What's my balance?"), Utterance("yes"), DigitsEntered("3"),
              Utterance("no")]
    first = run(machine, *events)
    second = run(Machine(load_default_flow()), *events)
    assert first == second
    state = at_menu(machine)
    before = dataclasses.replace(state)
    assert machine.step(state, Utterance("balance")) == machine.step(state, Utterance("balance"))
    assert state == before
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.node = "balance"  # type: ignore[misc]


def test_unknown_state_raises(machine):
    with pytest.raises(FlowError, match="unknown flow state 'nowhere'"):
        machine.step(DialogState(node="nowhere"), Utterance("balance"))


def test_a_state_that_does_not_listen_raises(machine):
    with pytest.raises(FlowError, match="'greeting'.*does not wait"):
        machine.step(DialogState(node="greeting"), Utterance("yes"))


def test_events_after_the_end_do_nothing(machine):
    state, _ = machine.step(at_menu(machine), Utterance("agent"))
    assert state.ended
    assert machine.step(state, MaxDurationReached()) == (state, [])
    assert machine.step(state, Utterance("hello")) == (state, [])


def test_call_started_in_step_does_nothing(machine):
    state = at_menu(machine)
    assert machine.step(state, CallStarted()) == (state, [])
