"""Sentence splitting: where a reply is cut decides when the caller hears the first word."""

from __future__ import annotations

import pytest

from tts.sentences import LONG_CLAUSE_WORDS, split_sentences

CASES = [
    ("", []),
    ("   \n  ", []),
    ("...", []),
    ("Hello.", ["Hello."]),
    ("Hello there", ["Hello there"]),
    ("Hello. How are you? Fine!", ["Hello.", "How are you?", "Fine!"]),
    ("  Hello.   How   are\nyou?  ", ["Hello.", "How are you?"]),
    ("First part; second part.", ["First part;", "second part."]),
    ("Really?! Yes.", ["Really?!", "Yes."]),
    ("Mr. Jones and Dr. Smith are here.", ["Mr. Jones and Dr. Smith are here."]),
    ("Mrs. Brown lives on Elm St. near the park.", ["Mrs. Brown lives on Elm St. near the park."]),
    ("Bring an ID, e.g. a passport, i.e. something official.",
     ["Bring an ID, e.g. a passport, i.e. something official."]),
    ("It costs 3.50 today. Thanks.", ["It costs 3.50 today.", "Thanks."]),
    ("The total is $1,234.56 in all.", ["The total is $1,234.56 in all."]),
    ("We open at 9.30 tomorrow.", ["We open at 9.30 tomorrow."]),
    ("Come at 10 a.m. or 2 p.m. if you can.", ["Come at 10 a.m. or 2 p.m. if you can."]),
    ("We open at 9 a.m. Call us then.", ["We open at 9 a.m.", "Call us then."]),
    ("J. R. R. Tolkien wrote it.", ["J. R. R. Tolkien wrote it."]),
    ("Your agent is John F. Kennedy. Goodbye.", ["Your agent is John F. Kennedy.", "Goodbye."]),
    ("The U.S. office is closed.", ["The U.S. office is closed."]),
    ("Order No. 5 shipped. Thanks.", ["Order No. 5 shipped.", "Thanks."]),
    ('He said "Stop." Then he left.', ['He said "Stop."', "Then he left."]),
    ("(See above.) Next.", ["(See above.)", "Next."]),
    ("Line one\n\nLine two", ["Line one", "Line two"]),
    ("Ends with Dr.", ["Ends with Dr."]),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_long_sentence_is_cut_at_commas_into_short_pieces() -> None:
    clause = "we have checked your account and everything looks fine"  # 9 words
    text = ", ".join([clause] * 5) + "."
    pieces = split_sentences(text)
    assert len(pieces) > 1
    assert " ".join(pieces) == text
    assert all(len(p.split()) <= LONG_CLAUSE_WORDS for p in pieces)


def test_long_sentence_without_commas_stays_whole() -> None:
    text = " ".join(["word"] * (LONG_CLAUSE_WORDS + 10)) + "."
    assert split_sentences(text) == [text]


def test_splitting_is_idempotent() -> None:
    text = "Dr. Smith is in. It costs 3.50 at 9 a.m. Thanks! " + ", ".join(["one two three four"] * 10)
    for sentence in split_sentences(text):
        assert split_sentences(sentence) == [sentence]
