"""What the recognizer is told about a turn, and which hypothesis of a turn the call goes on with."""

from __future__ import annotations

from asr.base import Alternative, RecognitionOptions, Transcript
from asr.bias import DIGITS_PROMPT, BiasSettings, initial_prompt
from dialog.actions import Listen
from dialog.flow import load_default_flow
from ivr.recognition import TurnContext, expectation, hypothesis_score, listen_options, understand_hypotheses

FLOW = load_default_flow()
MENU_PHRASES = tuple(dict.fromkeys(k for c in FLOW.node("main_menu").expect + FLOW.global_choices for k in c.keywords))


def _transcript(text, *alternatives):
    return Transcript(text, 0.8, alternatives=tuple(Alternative(a, -0.5 - i) for i, a in enumerate(alternatives)),
                      log_prob=-0.3)


def test_a_menu_turn_expects_one_of_the_node_choices():
    options = listen_options(Listen(phrases=MENU_PHRASES), "main_menu", FLOW, "How can I help you today?")
    assert options.expect == "choice" and "balance" in options.phrases
    assert options.prompt == "How can I help you today?"


def test_a_collect_node_expects_its_digits_and_keeps_the_global_choices():
    options = listen_options(Listen(max_digits=6, kind="collect"), "statement_account", FLOW)
    assert options.expect == "digits" and options.digits == 6
    assert "agent" in options.phrases and "balance" not in options.phrases


def test_a_read_back_or_did_you_mean_expects_yes_or_no():
    for listen in (Listen(phrases=("yes", "no"), kind="yes_no"), Listen(kind="confirm"), Listen(kind="faq")):
        assert listen_options(listen, "statement_account", FLOW).expect == "yes_no"


def test_prompts_follow_the_settings():
    digits = RecognitionOptions(expect="digits", digits=6)
    assert initial_prompt(digits, BiasSettings(digits=True)) == DIGITS_PROMPT
    assert initial_prompt(digits, BiasSettings(digits=False)) == ""
    menu = RecognitionOptions(phrases=("balance", "lost card"), expect="choice", prompt="How can I help?")
    assert initial_prompt(menu, BiasSettings(menu="phrases")) == "Balance, lost card."
    assert initial_prompt(menu, BiasSettings(menu="question")) == "How can I help?"
    assert initial_prompt(menu, BiasSettings(menu="off")) == ""


def test_the_first_hypothesis_the_node_can_act_on_is_taken():
    options, context = expectation(Listen(phrases=MENU_PHRASES), "main_menu", FLOW)
    chosen = understand_hypotheses(_transcript("Every man is okay.", "Representative.", "Represent."), context)
    assert chosen.text == "Representative."
    assert chosen.alternatives[0].text == "Every man is okay."  # what was heard best stays on record
    assert understand_hypotheses(_transcript("Balance.", "Balanced."), context).text == "Balance."


def test_a_digit_string_of_the_wrong_length_gives_way_to_one_of_the_right_length():
    _, context = expectation(Listen(max_digits=6, kind="collect"), "statement_account", FLOW)
    heard = _transcript("4 2 7 1 9", "4 2 7 1 9 3", "4 2 7 1 9 3 3")
    assert understand_hypotheses(heard, context).text == "4 2 7 1 9 3"
    assert hypothesis_score("agent please", context) == 1.0  # a global choice still counts


def test_nothing_fits_keeps_the_best_hypothesis():
    _, context = expectation(Listen(phrases=MENU_PHRASES), "main_menu", FLOW)
    heard = _transcript("How do I change my pin?", "How do I change my pen?")
    assert understand_hypotheses(heard, context) == heard


def test_keywords_heard_wrong_come_back_by_sound_when_asked():
    options, _ = expectation(Listen(phrases=MENU_PHRASES), "main_menu", FLOW)
    context = TurnContext.of(options, FLOW, "main_menu", phonetic=True)
    assert "balance" in understand_hypotheses(_transcript("Check the melon."), context).text
