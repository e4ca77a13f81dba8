"""Transcript clean-up and the digit grammar's token set, without a model."""

from __future__ import annotations

from asr.grammar import allowed_tokens, digit_suppression
from asr.whisper import collapse_repeats


def test_a_looping_transcript_is_cut_to_its_first_round():
    assert collapse_repeats("Are you open on Saturday? Are you open on Saturday?") == "Are you open on Saturday?"
    assert collapse_repeats("balance balance balance balance") == "balance"
    assert collapse_repeats("I need a bank statement. I need a") == "I need a bank statement."


def test_ordinary_repetition_is_kept():
    for text in ("no no", "very very good", "I want to I want to speak to an agent", "I lost my card."):
        assert collapse_repeats(text) == text


class _Vocabulary:
    """A toy tokenizer: one token per entry, end-of-text last."""

    def __init__(self, pieces):
        self.pieces = list(pieces)
        self.eot = len(self.pieces)

    def encode(self, text):
        return [self.pieces.index(text)] if text in self.pieces else []

    def decode(self, tokens):
        return "".join(self.pieces[t] for t in tokens)


def test_the_digit_grammar_keeps_digits_digit_words_and_one_word_exits():
    vocab = _Vocabulary([" 4", "7", " 427", " oh", " Double", " agent", " I'm", " done", ",", ".", " balance"])
    kept = {vocab.pieces[t] for t in allowed_tokens(vocab, ["agent", "i'm done"]) if t < vocab.eot}
    assert kept == {" 4", "7", " oh", " Double", " agent", ","}
    assert vocab.eot not in digit_suppression(vocab, ["agent"])
