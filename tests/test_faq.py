"""The FAQ knowledge base: retrieval with a threshold, and how the flow speaks an answer."""

from __future__ import annotations

import pytest

from dialog import Machine, load_default_flow
from dialog.actions import Listen, Say
from dialog.events import Utterance
from dialog.nlu.faq import load_faq
from dialog.nlu.understand import Nlu
from models.errors import AgentError
from tests.dialog_support import at_menu


@pytest.fixture(scope="module")
def faq():
    return load_faq()


@pytest.mark.parametrize(("question", "entry"), [
    ("What is the exchange rate?", "exchange_rate"),
    ("I forgot my PIN", "pin_change"),
    ("how long until my new card comes", "new_card_delivery"),
    ("How much interest do I get on my savings?", "interest_rate"),
    ("I was charged twice for something", "dispute_charge"),
    ("do you charge for using an atm", "atm_fee"),
])
def test_faq_hits(faq, question, entry):
    hit = faq.search(question)
    assert hit is not None and hit.entry.id == entry


@pytest.mark.parametrize("question", ["What is the meaning of life?", "tell me a joke", "what is my balance"])
def test_faq_misses(faq, question):
    assert faq.search(question) is None


def test_bank_faq_has_enough_entries(faq):
    assert len(faq.entries) >= 15


def test_bad_faq_file_names_the_problem(tmp_path):
    bad = tmp_path / "faq.yaml"
    bad.write_text("entries:\n  - question: only a question\n")
    with pytest.raises(AgentError, match="entry 1 needs"):
        load_faq(bad)


def test_flow_speaks_the_answer_then_asks_if_it_helped():
    machine = Machine(load_default_flow())
    found = Nlu.load().understand("What is the exchange rate for euros?")
    assert found.intent == "" and found.faq_id == "exchange_rate"
    state, actions = machine.step(at_menu(machine), Utterance("What is the exchange rate for euros?",
                                                              faq_answer=found.faq_answer))
    says = [a.text for a in actions if isinstance(a, Say)]
    assert says == [found.faq_answer, "Did that answer your question?"]
    assert isinstance(actions[-1], Listen) and state.pending.startswith("faq")
    state, actions = machine.step(state, Utterance("yes thanks"))
    assert state.node == "anything_else" and state.no_match_count == 0
    assert "anything else" in " ".join(a.text for a in actions if isinstance(a, Say))


def test_an_answer_that_did_not_help_counts_as_a_miss():
    machine = Machine(load_default_flow())
    state, _ = machine.step(at_menu(machine), Utterance("fees?", faq_answer="Transfers are free."))
    state, actions = machine.step(state, Utterance("no"))
    assert state.no_match_count == 1 and not state.pending
    assert "Sorry about that." in [a.text for a in actions if isinstance(a, Say)]
