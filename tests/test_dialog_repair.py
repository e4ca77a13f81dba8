"""Understanding that does not hang on exact words, and a dialog that repairs instead of giving up: the bank
flow's machine with NLU results written by hand (hermetic: no models). Each test names the failure of
issue 12 it guards against, in its own phrasing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dialog import Machine, load_default_flow
from dialog.actions import Hangup, Listen, Transfer
from dialog.events import DigitsEntered, FaqCandidate, NoInput, Utterance
from dialog.machine import DialogState
from tests.dialog_support import at_menu, says

INTENTS = ("balance", "lost_card", "hours", "statement", "agent", "goodbye", "yes", "no")
"""What the bank flow's intent model knows (besides out of scope and its FAQ labels)."""
NEW_CARD = "New cards arrive by post within five to seven business days."
OPEN_ACCOUNT = "You can open an account in the app in about ten minutes, with a photo ID and proof of address."


def heard(text: str, confidence: float = 0.9, faqs: tuple[FaqCandidate, ...] = (), **ranking: float) -> Utterance:
    """An utterance as the NLU leaves it: `ranking` the intent probabilities (the rest out of scope)."""
    probabilities = dict(ranking)
    for intent in INTENTS:
        probabilities.setdefault(intent, 0.005)
    probabilities.setdefault("oos", max(0.0, 1.0 - sum(ranking.values()) - sum(f.score for f in faqs)))
    ordered = tuple(sorted(probabilities.items(), key=lambda item: -item[1]))
    best = max(ranking.items(), key=lambda item: item[1], default=("", 0.0))
    return Utterance(text, confidence, best[0], best[1], ranking=ordered, faqs=faqs)


# --- keywords are evidence, not a verdict


def test_a_card_that_has_not_come_is_a_faq_not_a_lost_card(machine):
    turn = heard("the replacement card you posted still isn't here", lost_card=0.06,
                 faqs=(FaqCandidate("new_card_delivery", 0.88, NEW_CARD),))
    state, actions = machine.step(at_menu(machine), turn)
    assert not state.ended and state.node == "main_menu"
    assert says(actions) == [NEW_CARD, "Did that answer your question?"]
    assert state.last_faq == "new_card_delivery"


def test_opening_an_account_is_not_the_opening_hours(machine):
    turn = heard("what do I need for opening a joint account", hours=0.03,
                 faqs=(FaqCandidate("open_account", 0.9, OPEN_ACCOUNT),))
    state, actions = machine.step(at_menu(machine), turn)
    assert says(actions)[0] == OPEN_ACCOUNT and state.last_faq == "open_account"


def test_a_keyword_tips_an_undecided_model(machine):
    state, actions = machine.step(at_menu(machine), heard("I've lost my Visa", lost_card=0.45))
    assert state.node == "card_lost" and actions[-1] == Transfer("sip:cards@agents", "lost-card")


def test_a_confident_model_takes_a_request_without_keywords(machine):
    state, _ = machine.step(at_menu(machine), heard("what have I got in my current account", balance=0.9))
    assert state.node == "balance"


def test_a_doubtful_request_is_confirmed_with_its_spoken_name(machine):
    state, actions = machine.step(at_menu(machine), heard("the money thing", balance=0.4))
    assert says(actions) == ["Did you mean your balance?"] and actions[-1].kind == "confirm"


def test_a_spoken_key_alone_still_selects(machine):
    state, _ = machine.step(at_menu(machine), heard("two", hours=0.7))
    assert state.node == "card_lost"


# --- word forms


@pytest.mark.parametrize(("text", "node"), [
    ("statements", "statement_account"),
    ("can you post me my statements", "statement_account"),
    ("both my cards were stolen", "card_lost"),
    ("what time has the branch opened since", "hours"),
])
def test_other_word_forms_match_the_keywords(machine, text, node):
    state, _ = machine.step(at_menu(machine), Utterance(text))
    assert state.node == node


# --- done and agent everywhere


def listening_nodes(machine: Machine) -> list[str]:
    return [name for name, node in machine.flow.nodes.items() if node.kind in ("expect", "collect")]


@pytest.mark.parametrize("text", ["no, I'm all set", "that's all, thanks", "nothing else", "never mind"])
def test_every_listening_node_lets_the_caller_finish(machine, text):
    for name in listening_nodes(machine):
        served = DialogState(node=name, last_choice="balance")  # asked for something earlier in the call
        state, actions = machine.step(served, Utterance(text))
        assert state.node == "goodbye" and actions[-1] == Hangup("completed"), name


def test_a_goodbye_before_anything_was_asked_is_confirmed_first(machine):
    # Whisper writes "Thank you." for a request it cannot make out: the call must not just end
    state, actions = machine.step(at_menu(machine), heard("Thank you.", goodbye=0.9))
    assert not state.ended and says(actions) == ["Did you mean that you're all done?"]
    ended, actions = machine.step(state, Utterance("yes"))
    assert ended.ended and actions[-1] == Hangup("completed")
    state, actions = machine.step(state, Utterance("no"))
    assert not state.ended and state.node == "main_menu"
    state, _ = machine.step(state, DigitsEntered("1"))
    assert state.node == "balance"


@pytest.mark.parametrize("text", ["agent please", "can I talk to a person", "get me a manager"])
def test_every_listening_node_hands_over_on_request(machine, text):
    for name in listening_nodes(machine):
        state, _ = machine.step(DialogState(node=name), Utterance(text))
        assert state.node == "transfer_agent", name


def test_after_a_faq_answer_all_set_ends_the_call_well(machine):
    state, _ = machine.step(at_menu(machine), heard("how long for a new card", faqs=(
        FaqCandidate("new_card_delivery", 0.9, NEW_CARD),)))
    state, actions = machine.step(state, Utterance("yes that's great"))
    assert state.node == "anything_else"
    assert says(actions) == ["Good.", "Is there anything else I can help you with?"]
    state, actions = machine.step(state, Utterance("no, I'm all set"))
    assert state.node == "goodbye" and actions[-1] == Hangup("completed")


def test_a_faq_answer_confirmed_and_finished_in_one_breath(machine):
    state, _ = machine.step(at_menu(machine), heard("how long for a new card", faqs=(
        FaqCandidate("new_card_delivery", 0.9, NEW_CARD),)))
    state, actions = machine.step(state, Utterance("yes thanks, that's all"))
    assert state.node == "goodbye" and actions[-1] == Hangup("completed")


def test_no_at_the_menu_ends_the_call(machine):
    state, actions = machine.step(at_menu(machine), Utterance("no thanks"))
    assert says(actions) == ["Did you mean that you don't need anything?"]  # nothing asked yet: confirmed
    state, _ = machine.step(state, Utterance("yes"))
    assert state.node == "goodbye"
    served, _ = machine.step(at_menu(machine), DigitsEntered("3"))
    state, _ = machine.step(replace(served, node="main_menu"), Utterance("no thanks"))
    assert state.node == "goodbye"


# --- confirmations


def asked_about_balance(machine: Machine) -> DialogState:
    state, _ = machine.step(at_menu(machine), heard("the money thing", balance=0.4))
    assert state.pending.startswith("choice:")
    return state


@pytest.mark.parametrize("text", ["yeah", "yep", "correct", "that's right", "yes please", "uh huh"])
def test_spoken_yes_takes_the_choice(machine, text):
    state, _ = machine.step(asked_about_balance(machine), Utterance(text))
    assert state.node == "balance"


@pytest.mark.parametrize("text", ["nope", "not really", "no", "no that's wrong"])
def test_spoken_no_repairs(machine, text):
    state, actions = machine.step(asked_about_balance(machine), Utterance(text))
    assert state.node == "main_menu" and state.no_match_count == 1 and not state.pending
    assert "Sorry about that." in says(actions) and "statement" in " ".join(says(actions))


def test_a_correction_takes_what_the_caller_said_instead(machine):
    state, _ = machine.step(asked_about_balance(machine), Utterance("no, I said statement"))
    assert state.node == "statement_account"


def test_a_low_confidence_recognition_is_confirmed_first(machine):
    flow = load_default_flow()
    from dataclasses import replace
    careful = Machine(replace(flow, settings=replace(flow.settings, confirm_below_asr_confidence=0.5)))
    state, actions = careful.step(at_menu(careful), heard("balance", confidence=0.3, balance=0.9))
    assert state.node == "main_menu" and says(actions) == ["Did you mean your balance?"]
    state, _ = careful.step(at_menu(careful), heard("balance", confidence=0.8, balance=0.9))
    assert state.node == "balance"


# --- repair instead of giving up


def test_misses_are_repaired_narrower_each_time_before_a_person(machine):
    state = at_menu(machine)
    prompts = []
    for count in (1, 2, 3):
        state, actions = machine.step(state, heard("hmm the purple thing", oos=0.9))
        assert state.no_match_count == count and not state.ended
        assert isinstance(actions[-1], Listen) and actions[-1].kind == "reprompt"
        prompts.append(" ".join(says(actions)))
    assert len(set(prompts)) == 3
    assert "balance" in prompts[0] and "lost or stolen card" in prompts[0] and "press" not in prompts[0].lower()
    assert "Press one for your balance" in prompts[1]
    state, actions = machine.step(state, heard("purple", oos=0.9))
    assert state.ended and actions[-1] == Transfer("sip:queue@agents", "no-match")


def test_keys_offered_in_a_repair_work(machine):
    state, _ = machine.step(at_menu(machine), heard("erm the thing", oos=0.9))
    state, _ = machine.step(state, heard("the other thing", oos=0.9))
    state, _ = machine.step(state, DigitsEntered("1"))
    assert state.node == "balance"


def test_silence_still_hangs_up_after_the_no_input_reprompts(machine):
    state = at_menu(machine)
    for _ in range(2):
        state, _ = machine.step(state, NoInput())
    state, actions = machine.step(state, NoInput())
    assert state.ended and actions[-1] == Hangup("no-input")


def test_a_no_said_first_answers_anything_else_even_when_the_model_hears_a_yes(machine):
    state, _ = machine.step(at_menu(machine), DigitsEntered("3"))  # the hours, then "Anything else?"
    contactless = FaqCandidate("contactless", 0.34, "Tap your card on the reader.")
    state, actions = machine.step(state, heard("Nope, absolutely fine as it is.", yes=0.5, no=0.06,
                                               faqs=(contactless,)))
    assert state.ended and state.end_reason == "completed"
    state, _ = machine.step(machine.step(at_menu(machine), DigitsEntered("3"))[0],
                            heard("no, actually my balance", balance=0.9, no=0.05))
    assert state.node == "balance"


def test_a_served_caller_who_falls_silent_after_anything_else_is_done_not_dropped(machine):
    state, _ = machine.step(at_menu(machine), DigitsEntered("1"))  # the balance, then "Anything else?"
    assert state.node == "balance"
    for _ in range(2):
        state, actions = machine.step(state, NoInput())
        assert not state.ended and "anything else" in " ".join(says(actions)).lower()
    state, actions = machine.step(state, NoInput())
    assert state.ended and state.end_reason == "completed" and actions[-1] == Hangup("completed")
    assert says(actions) == ["Thank you for calling Example Bank. Goodbye."]


# --- account numbers


def at_account_number(machine: Machine) -> DialogState:
    state, _ = machine.step(at_menu(machine), Utterance("statement"))
    assert state.node == "statement_account"
    return state


@pytest.mark.parametrize("text", ["four two seven, one nine three", "four two seven... um... one nine three",
                                  "forty two seventy one ninety three", "4 2 7 1 9 3, 4 2 7 1 9 3",
                                  "for two seven one nine three"])
def test_an_account_number_in_many_spoken_forms(machine, text):
    state, actions = machine.step(at_account_number(machine), Utterance(text))
    assert says(actions) == ["I heard 4 2 7 1 9 3. Is that right?"]
    state, _ = machine.step(state, Utterance("yep"))
    assert state.slot("account_number") == "427193" and state.node == "statement_sent"


def test_oh_double_and_triple_in_an_account_number(machine):
    state, actions = machine.step(at_account_number(machine), Utterance("oh double five triple two one"))
    assert says(actions) == ["I heard 0 5 5 2 2 2 1. Is that right?"] or state.no_match_count == 1
    state, actions = machine.step(at_account_number(machine), Utterance("oh double five triple two"))
    assert says(actions) == ["I heard 0 5 5 2 2 2. Is that right?"]


def test_a_read_back_correction_is_read_back_again(machine):
    state, _ = machine.step(at_account_number(machine), Utterance("four two seven one nine three"))
    state, actions = machine.step(state, Utterance("no, it's 427 198"))
    assert says(actions) == ["I heard 4 2 7 1 9 8. Is that right?"] and state.pending == "slot:427198"
    state, _ = machine.step(state, Utterance("correct"))
    assert state.slot("account_number") == "427198"


def test_a_read_back_answered_with_the_same_number_is_a_yes(machine):
    state, _ = machine.step(at_account_number(machine), Utterance("four two seven one nine three"))
    state, _ = machine.step(state, Utterance("four two seven one nine three"))
    assert state.slot("account_number") == "427193"
