"""Matching a caller's turn (ASR text or keypad digits) to a node's choices. Simple and deterministic.

Rules, in order of use:
- Text is normalized first (`normalize`): lower case, apostrophes dropped ("what's" -> "whats"),
  other punctuation -> spaces, spaces collapsed, number words "zero".."nine" -> "0".."9".
  Keywords are normalized the same way, so "What's my balance?" matches the keyword "what's my balance".
- A turn that is only a spoken number, maybe with filler ("one", "press one", "option two",
  "number three please"), selects the choice whose `digits` is that number, before anything else.
- Otherwise every keyword is searched on word boundaries ("card" is not in "discard") and every regex
  in the normalized text; the longest matched text wins, and a tie goes to the earlier choice.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache

from dialog.flow import Choice

NUMBER_WORDS: dict[str, str] = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}
"""Spoken digits that become digits; "oh", "to", "for" stay words (too often they are words)."""

DIGIT_FILLER_WORDS = frozenset({
    "press", "pressing", "pressed", "option", "number", "choice", "key", "digit", "please", "the", "i",
    "ill", "id", "like", "want", "choose", "select", "pick", "dial", "say", "um", "uh", "er", "erm",
    "hmm", "ok", "okay", "so", "and", "its", "is", "thats",
})
"""Words around a spoken digit that do not change which key the caller means."""

_APOSTROPHES = re.compile(r"['\u2018\u2019\u02bc`]")
_NOT_WORD = re.compile(r"[^\w]+|_")
_SPOKEN_DIGIT_SCORE = 1_000_000
"""A turn that is only a spoken number beats every keyword."""


@lru_cache(maxsize=4096)
def normalize(text: str) -> str:
    """ASR text in one comparable form: 'Press ONE, please!' -> 'press 1 please'."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _APOSTROPHES.sub("", text)
    words = _NOT_WORD.sub(" ", text).split()
    return " ".join(NUMBER_WORDS.get(word, word) for word in words)


def spoken_digits(normalized: str) -> str | None:
    """The keys a turn names when it is only digits and filler ('press 1' -> '1'), else None."""
    words = [word for word in normalized.split() if word not in DIGIT_FILLER_WORDS]
    if not words or not all(word.isdigit() for word in words):
        return None
    return "".join(words)


def match_choice(text: str, choices: Sequence[Choice]) -> Choice | None:
    """The choice a caller's utterance selects, or None when nothing matches (see the module rules)."""
    words = normalize(text)
    if not words:
        return None
    digits = spoken_digits(words)
    best: Choice | None = None
    best_score = 0
    for choice in choices:
        score = _score(choice, words, digits)
        if score > best_score:
            best, best_score = choice, score
    return best


def match_digits(digits: str, choices: Iterable[Choice]) -> Choice | None:
    """The choice a keypad entry selects: its `digits`, with or without the '#' terminator on either side."""
    entered = digits.rstrip("#")
    if not entered:
        return None
    for choice in choices:
        if choice.digits is not None and choice.digits.rstrip("#") == entered:
            return choice
    return None


def _score(choice: Choice, words: str, digits: str | None) -> int:
    if digits is not None and choice.digits is not None and digits == choice.digits.rstrip("#"):
        return _SPOKEN_DIGIT_SCORE
    padded = f" {words} "
    score = 0
    for keyword in choice.keywords:
        phrase = normalize(keyword)
        if phrase and f" {phrase} " in padded:
            score = max(score, len(phrase))
    if choice.regex is not None:
        found = re.search(choice.regex, words)
        if found is not None:
            score = max(score, len(found.group(0)), 1)
    return score
