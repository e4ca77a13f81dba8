"""A digit-string grammar for Whisper: when the dialog collects digits, every token that cannot be part
of a spoken digit string is suppressed, so that a weakly heard "five one five one" comes out as digits
("5 1 5 1") and not as "side one side one", and "oh" is written as a zero or "oh" instead of words.

What stays allowed: single digits (" 4", "4"; not "427" nor "3.09", which let Whisper swallow an "oh"
into a number), the digit words and "oh", "o", "zero", "double", "triple" in any case with or without a
leading space, commas and dashes between digits, a few hesitations ("um", "uh"), and every token of the
one-word `keep` phrases (the flow's global choices, so that "agent" or "operator" still leaves a collect
node; longer ones would let their words, "I'm", "a", into every digit string).
The end-of-text token is never suppressed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol

DIGIT_WORDS = ("zero", "oh", "o", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
               "double", "triple")
HESITATIONS = ("um", "uh", "er", "erm", "hmm")
_DIGITS = re.compile(r"\s?\d")
_PUNCTUATION = re.compile(r"\s?[,\-]")


class TokenizerLike(Protocol):
    """What the grammar needs of a tokenizer (faster_whisper.tokenizer.Tokenizer has it)."""

    @property
    def eot(self) -> int: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, tokens: list[int]) -> str: ...


def _variants(phrase: str) -> list[str]:
    phrase = phrase.strip()
    forms = {phrase.lower(), phrase.lower().capitalize(), phrase.upper() if len(phrase) <= 2 else phrase.lower()}
    return [prefix + form for form in sorted(forms) for prefix in ("", " ")]


def allowed_tokens(tokenizer: TokenizerLike, keep: Iterable[str] = ()) -> set[int]:
    """Token ids a digit string (and the `keep` phrases) may be written with."""
    keep = [k for k in keep if len(k.split()) == 1]  # "agent", "operator"; not "i'm done", "a person"
    allowed: set[int] = {tokenizer.eot}
    for token in range(tokenizer.eot):
        text = tokenizer.decode([token])
        if _DIGITS.fullmatch(text) or _PUNCTUATION.fullmatch(text):
            allowed.add(token)
    for phrase in (*DIGIT_WORDS, *HESITATIONS, *keep):
        for form in _variants(phrase):
            allowed.update(tokenizer.encode(form))
    return allowed


def digit_suppression(tokenizer: TokenizerLike, keep: Iterable[str] = ()) -> list[int]:
    """The ids below end-of-text to suppress for a digit string (sorted): all but `allowed_tokens`."""
    allowed = allowed_tokens(tokenizer, keep)
    return [token for token in range(tokenizer.eot) if token not in allowed]
