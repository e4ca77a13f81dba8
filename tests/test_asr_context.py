"""What the recognizer is told about a turn, and which hypothesis of a turn the call goes on with."""

from __future__ import annotations

from asr.base import Alternative, RecognitionOptions, Transcript, Word
from asr.bias import DIGITS_PROMPT, BiasSettings, initial_prompt
from dialog.actions import Listen
from dialog.flow import load_default_flow
from ivr.call.recognition import (
    TurnContext,
    expectation,
    hypothesis_score,
    listen_options,
    settled,
    understand_hypotheses,
)

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


def test_the_agent_config_tunes_recognition():
    from ivr.call.recognition import whisper_settings
    from ivr.config import AsrConfig

    settings = whisper_settings(AsrConfig())
    assert settings["window_s"] == 0.0 and settings["bias"].digits
    settings = whisper_settings(AsrConfig(window="full", prompts=False))
    assert settings["window_s"] == 30.0 and not settings["bias"].digits
    options, context = expectation(Listen(phrases=MENU_PHRASES), "main_menu", FLOW, config=AsrConfig(alternatives=3,
                                                                                                       phonetic=True))
    assert options.alternatives == 3 and context.matcher is not None


def test_an_asr_section_in_the_config_file_is_read_and_checked(tmp_path):
    import pytest

    from ivr.config import load_config
    from models.errors import AgentError

    path = tmp_path / "agent.yaml"
    path.write_text("asr_model: base\nasr:\n  window: full\n  alternatives: 2\n")
    config = load_config(path)
    assert config.asr_model == "base" and config.asr.window == "full" and config.asr.alternatives == 2
    path.write_text("asr:\n  windw: full\n")
    with pytest.raises(AgentError, match="windw"):
        load_config(path)


def heard(*pairs):
    """A transcript of (word, probability) pairs."""
    words = tuple(Word(w, i * 0.3, i * 0.3 + 0.2, p) for i, (w, p) in enumerate(pairs))
    return Transcript(" ".join(w for w, _ in pairs), 0.8, words)


def test_only_words_the_recognizer_doubted_are_matched_by_sound():
    options, _ = expectation(Listen(phrases=MENU_PHRASES), "main_menu", FLOW)
    context = TurnContext.of(options, FLOW, "main_menu", phonetic=True)

    sure = heard(("How", 0.9), ("much", 0.95), ("does", 0.9), ("a", 0.9), ("transfer", 0.95), ("cost?", 0.92))
    assert understand_hypotheses(sure, context) == sure  # "cost" is not a misheard "lost"
    unsure = heard(("Check", 0.9), ("the", 0.9), ("melon.", 0.2))
    assert "balance" in understand_hypotheses(unsure, context).text


def test_a_turn_heard_surely_settles_the_node_and_one_doubted_word_does_not():
    _, menu = expectation(Listen(phrases=MENU_PHRASES), "main_menu", FLOW)
    assert settled(heard(("What", 0.9), ("is", 0.9), ("my", 0.9), ("balance?", 0.9)), menu)
    assert not settled(heard(("What", 0.48), ("is", 0.9), ("my", 0.9), ("balance?", 0.9)), menu)
    assert not settled(heard(("What", 0.9), ("is", 0.9), ("my", 0.9)), menu)  # nothing the menu acts on yet


def test_every_node_keywords_are_phonemized_before_the_first_turn():
    """Warming (at a worker's start) phonemizes each node's keywords, so no caller's first turn waits for
    the phonemizer to load: every node's turn context then finds its matcher ready."""
    from ivr.call import recognition

    recognition._matcher.cache_clear()
    assert recognition.warm_matchers(FLOW) >= 1
    ready = recognition._matcher.cache_info().misses
    for name, node in FLOW.nodes.items():
        listen = Listen(phrases=tuple(k for c in node.expect for k in c.keywords))
        options, context = expectation(listen, name, FLOW)
        recognition.TurnContext.of(options, FLOW, name, phonetic=True)
    assert recognition._matcher.cache_info().misses == ready
