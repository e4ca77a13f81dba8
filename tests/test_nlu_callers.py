"""The shipped NLU (intent model with its sentence-vector head, FAQ retrieval) and the bank flow on caller
turns of the kinds issue 12 found misunderstood, in this file's own phrasings; and the figures of the
hand-written test turns (models/intents/eval/test.csv), which are never tuned on."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dialog import Machine
from dialog.actions import Transfer
from dialog.events import Utterance
from dialog.machine import DialogState
from dialog.nlu.faq import load_faq
from dialog.nlu.model import default_model_dir
from dialog.nlu.understand import Nlu
from ivr.train.nlu.data import read_examples
from ivr.train.nlu.turns_eval import evaluate_turns, summarize
from tests.dialog_support import says

PHRASINGS = yaml.safe_load((Path(__file__).parent / "cases" / "caller_phrasings.yaml").read_text(encoding="utf-8"))

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def nlu() -> Nlu:
    return Nlu.load()


def step(machine: Machine, nlu: Nlu, text: str, node: str = "main_menu") -> tuple[DialogState, list]:
    # elsewhere than the menu the caller has asked for something already (as in a call)
    state = machine.start()[0] if node == "main_menu" else DialogState(node=node, last_choice="balance")
    return machine.step(state, nlu.understand(text).utterance(text, 0.9))


@pytest.mark.parametrize(("text", "node"), PHRASINGS["reach_node"].items())
def test_everyday_requests_reach_their_node(machine, nlu, text, node):
    """Directly, or after "Did you mean ...?" and a yes."""
    state, _ = step(machine, nlu, text)
    if state.pending.startswith("choice:"):
        state, _ = machine.step(state, Utterance("yes"))
    assert state.node == node, nlu.understand(text)


@pytest.mark.parametrize(("text", "entry"), PHRASINGS["faq_entry"].items())
def test_faq_questions_get_the_right_answer_not_a_neighbour_or_a_choice(machine, nlu, text, entry):
    state, actions = step(machine, nlu, text)
    assert not state.ended and state.last_faq == entry, nlu.understand(text)
    answer = next(e.answer for e in load_faq().entries if e.id == entry)
    assert says(actions) == [answer, "Did that answer your question?"]


def test_a_card_that_has_not_arrived_is_not_sent_to_the_card_team(machine, nlu):
    state, actions = step(machine, nlu, "my new card still hasn't come in the post")
    assert not any(isinstance(a, Transfer) for a in actions) and state.last_faq == "new_card_delivery"


@pytest.mark.parametrize("text", ["no, I'm all set", "nothing else, thank you", "that's everything, bye"])
@pytest.mark.parametrize("node", ["main_menu", "anything_else", "balance", "statement_sent"])
def test_all_set_ends_the_call_everywhere(machine, nlu, text, node):
    """After a first request (at the menu before any, "Did you mean that you're all done?" comes first)."""
    served = DialogState(node=node, last_choice="balance")
    state, _ = machine.step(served, nlu.understand(text).utterance(text, 0.9))
    assert state.node == "goodbye"


def test_out_of_scope_is_not_answered(machine, nlu):
    for text in ("I'd like to apply for a mortgage", "what's the weather doing tomorrow"):
        state, actions = step(machine, nlu, text)
        assert state.node == "main_menu" and state.no_match_count == 1 and not state.last_faq, text


def test_a_faq_edited_after_training_is_still_found_by_retrieval(tmp_path):
    faq = tmp_path / "faq.yaml"
    faq.write_text("entries:\n  - id: parking\n    question: Is there parking at the branch?\n"
                   "    paraphrases: [where can i park, do you have a car park]\n"
                   "    answer: Yes, behind the branch.\n")
    found = Nlu.load(faq_path=faq).understand("can I park my car at your branch")
    assert found.faqs and found.faqs[0].id == "parking"


def test_hand_written_test_turns(nlu, machine):
    """The test part of the hand-written turns (models/intents/eval/test.csv): most are right at once,
    few go wrong (a wrong answer or transfer costs the call). Figures: models/intents/README.md."""
    results = evaluate_turns(nlu, machine, read_examples(default_model_dir() / "eval" / "test.csv"))
    figures = summarize(results)["all"]
    assert figures["right"] >= 0.85 and figures["wrong"] <= 0.06, figures


def test_utterance_carries_the_nlu_findings(nlu):
    utterance = nlu.understand("what's my balance").utterance("what's my balance", 0.8)
    assert isinstance(utterance, Utterance) and utterance.intent == "balance" and utterance.confidence == 0.8
    assert utterance.ranking[0][0] == "balance" and all(not label.startswith("faq:") for label, _ in utterance.ranking)


def test_a_next_best_hypothesis_is_understood_when_the_best_means_nothing(machine, nlu):
    from ivr.call import events as ev
    from ivr.call.dialogturn import dispatch_utterance
    from ivr.call.eventlog import EventLog
    from telephony.clock import VirtualClock

    def run(best: str, alternatives: tuple[str, ...], state: DialogState) -> tuple[list[Utterance], EventLog]:
        got: list[Utterance] = []
        log = EventLog(VirtualClock())
        dispatch_utterance(nlu, log, best, 0.8, got.append, lambda: state, alternatives=alternatives,
                           judge=lambda u: machine.judge(state, u))
        return got, log

    menu = machine.start()[0]
    got, log = run("grumble the fox of Tuesday", ("purple wombat sandwich", "what is my balance"), menu)
    assert got[0].text == "what is my balance" and got[0].intent == "balance"
    assert log.of_type(ev.NluResult)[0].hypothesis == 2
    got, log = run("I lost my card", ("what is my balance",), menu)  # the best means something: kept
    assert got[0].text == "I lost my card" and log.of_type(ev.NluResult)[0].hypothesis == 0
    asked, _ = machine.step(menu, Utterance("umm maybe", 0.9, "balance", 0.42))  # "Did you mean ...?"
    assert asked.pending  # an answer to a question is not re-read from the alternatives
    got, _ = run("grumble the fox of Tuesday", ("what is my balance",), asked)
    assert got[0].text == "grumble the fox of Tuesday"


def test_a_number_said_no_to_is_not_read_back_again_when_another_hypothesis_has_one(machine, nlu):
    from ivr.call.dialogturn import dispatch_utterance
    from ivr.call.eventlog import EventLog
    from telephony.clock import VirtualClock

    state, _ = machine.step(machine.start()[0], Utterance("statement", 0.9, "statement", 0.9))
    state, actions = machine.step(state, Utterance("4 0 7 1 9 3", 0.9))
    assert says(actions) == ["I heard 4 0 7 1 9 3. Is that right?"]
    state, _ = machine.step(state, Utterance("no", 0.9))
    assert state.node == "statement_account" and state.rejected == ("407193",)
    got: list[Utterance] = []
    dispatch_utterance(nlu, EventLog(VirtualClock()), "4 0 7 1 9 3", 0.8, got.append, lambda: state,
                       alternatives=("4 0 7 1 9 3.", "Four two seven one nine three."),
                       judge=lambda u: machine.judge(state, u))
    assert got[0].text == "Four two seven one nine three."
    state, actions = machine.step(state, got[0])
    assert says(actions) == ["I heard 4 2 7 1 9 3. Is that right?"]
