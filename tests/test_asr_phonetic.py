"""Phonetic matching of a node's keywords: misheard menu words come back, ordinary speech stays itself."""

from __future__ import annotations

import pytest

from asr.phonetic import PhoneticMatcher, distance, phonemes, phonemizer_available, split_phonemes

pytestmark = pytest.mark.skipif(not phonemizer_available(),
                                reason="needs espeak-ng (piper-tts or the espeak-ng command)")

MENU = ["balance", "my balance", "lost card", "card", "opening hours", "hours", "statement", "agent",
        "representative", "operator"]


def test_sounds_alike_words_are_near_and_others_far():
    near = distance(phonemes("cart"), phonemes("card"))
    far = distance(phonemes("thank you"), phonemes("agent"))
    assert near < 1.0 < far
    assert distance(phonemes("balance"), phonemes("balance")) == 0.0


def test_ipa_marks_do_not_count():
    assert split_phonemes("bˈælən(s)") == split_phonemes("bælən(s)")
    assert split_phonemes("ˈeɪdʒənt") == ("eɪ", "dʒ", "ə", "n", "t")


@pytest.mark.parametrize("heard, meant", [
    ("I lost my cart", "card"),
    ("check my melon", "balance"),
    ("what are your opening ours", "opening hours"),
    ("I need my statements", "statement"),
])
def test_a_misheard_keyword_is_recovered(heard, meant):
    hit = PhoneticMatcher(MENU).best(heard)
    assert hit is not None and meant in hit.keyword


@pytest.mark.parametrize("said", [
    "how do I change my pin number",
    "thank you very much",
    "what is the exchange rate for euros",
    "I want to close my account",
])
def test_ordinary_speech_matches_no_keyword(said):
    assert PhoneticMatcher(MENU).best(said) is None


def test_correct_replaces_the_misheard_words_with_the_keyword():
    assert PhoneticMatcher(MENU).correct("Check the melon, please.") == "check the balance please"
    assert PhoneticMatcher(MENU).correct("thank you") is None


def test_short_keywords_are_left_to_exact_matching():
    matcher = PhoneticMatcher(["no", "yes", "balance"])
    assert matcher.best("know") is None
