"""Matching a caller's turn (ASR text or keypad digits) to a node's choices. Simple and deterministic.

Rules, in order of use:
- Text is normalized first (`normalize`): lower case, apostrophes dropped ("what's" -> "whats"),
  other punctuation -> spaces, spaces collapsed, number words "zero".."nine" -> "0".."9".
  Keywords are normalized the same way, so "What's my balance?" matches the keyword "what's my balance".
- A turn that is only a spoken number, maybe with filler ("one", "press one", "option two",
  "number three please"), selects the choice whose `digits` is that number, before anything else.
- Otherwise every keyword is searched on word boundaries ("card" is not in "discard") and every regex
  in the normalized text; the longest matched text wins, and a tie goes to the earlier choice.
- Keywords match other forms of their words: both sides are compared word by word through
  `dialog.nlu.lemma.stem`, so "statements" matches "statement", "my cards" matches "my card" and
  "opened" matches "open".
- `keyword_evidence` gives, for every choice, how strongly its keywords, regex or spoken digits are in a
  turn; `dialog.decide` weighs that against the NLU's probabilities instead of letting it decide alone.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache

from dialog.flow import Choice
from dialog.nlu.lemma import stem_words

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
    scores = keyword_evidence(text, choices)
    best: Choice | None = None
    best_score = 0
    for choice, score in zip(choices, scores, strict=True):
        if score > best_score:
            best, best_score = choice, score
    return best


def keyword_evidence(text: str, choices: Sequence[Choice]) -> list[int]:
    """How strongly each choice is named in `text`: 0 for not at all, else the length in characters of
    its longest matched keyword (or regex match); a score `is_spoken_key` accepts when the turn is only its key."""
    words = normalize(text)
    if not words:
        return [0] * len(choices)
    digits = spoken_digits(words)
    stems = stem_words(words)
    return [_score(choice, words, stems, digits) for choice in choices]


def is_spoken_key(score: int) -> bool:
    """Whether a `keyword_evidence` score is a turn that only names the choice's key ("press one")."""
    return score >= _SPOKEN_DIGIT_SCORE


def match_digits(digits: str, choices: Iterable[Choice]) -> Choice | None:
    """The choice a keypad entry selects: its `digits`, with or without the '#' terminator on either side."""
    entered = digits.rstrip("#")
    if not entered:
        return None
    for choice in choices:
        if choice.digits is not None and choice.digits.rstrip("#") == entered:
            return choice
    return None


@lru_cache(maxsize=4096)
def _keyword_stems(keyword: str) -> str:
    return stem_words(normalize(keyword))


def _score(choice: Choice, words: str, stems: str, digits: str | None) -> int:
    if digits is not None and choice.digits is not None and digits == choice.digits.rstrip("#"):
        return _SPOKEN_DIGIT_SCORE
    padded = f" {stems} "
    score = 0
    for keyword in choice.keywords:
        phrase = _keyword_stems(keyword)
        if phrase and f" {phrase} " in padded:
            score = max(score, len(normalize(keyword)))
    if choice.regex is not None:
        found = re.search(choice.regex, words)
        if found is not None:
            score = max(score, len(found.group(0)), 1)
    return score
