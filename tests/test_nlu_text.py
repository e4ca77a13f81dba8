"""Word forms and self-corrections: what keyword matching, the intent model's features and FAQ retrieval
compare (dialog.nlu.lemma, dialog.nlu.text)."""

from __future__ import annotations

import pytest

from dialog.flow import Choice
from dialog.matching import match_choice
from dialog.nlu.lemma import stem, stem_words
from dialog.nlu.text import ngram_features


@pytest.mark.parametrize(("forms", "same"), [
    (("statement", "statements"), True),
    (("card", "cards"), True),
    (("open", "opened", "opening", "opens"), True),
    (("close", "closed", "closing"), True),
    (("steal", "stole", "stolen"), True),
    (("lose", "lost", "losing"), True),
    (("hour", "hours"), True),
    (("charge", "charged", "charges", "charging"), True),
    (("transaction", "transactions"), True),
    (("stop", "stopped", "stopping"), True),
    (("card", "discard"), False),
    (("business", "busines"), False),
])
def test_word_forms_share_a_key(forms, same):
    keys = {stem(word) for word in forms}
    assert (len(keys) == 1) is same, keys


def test_short_and_irregular_words_are_kept_apart():
    assert stem("yes") == "yes" and stem("bus") == "bus" and stem("is") == "be"
    assert stem_words("my cards were stolen") == "my card be steal"


def test_keywords_match_other_word_forms():
    choices = [Choice(goto="statement", keywords=("statement",)), Choice(goto="card", keywords=("lost my card",))]
    assert match_choice("send me my statements", choices).goto == "statement"
    assert match_choice("I have lost my cards", choices).goto == "card"
    assert match_choice("I want to discard it", choices) is None


def test_model_features_include_stems():
    features = ngram_features("my statements")
    assert "s:statement" in features and "w:statements" in features
