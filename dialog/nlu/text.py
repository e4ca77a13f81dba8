"""Text as the intent model sees it, the same at training and at run time.

`normalize_text` makes clean text and ASR output look alike: lower case, no punctuation, apostrophes
dropped ("what's" -> "whats"), digits spelled out one by one ("2" -> "two"), a few symbols as words.
`meaning_part` keeps what a caller settled on when they corrected themselves mid-turn ("opening hours,
oh no wait, I meant my balance" -> "my balance").
`ngram_features` turns normalized text into the model's features: words, word stems where they differ
("statements" -> "statement", `dialog.nlu.lemma`), word pairs, and the character 2- to 5-grams of the text
(padded with spaces), which survive ASR misspellings.
"""

from __future__ import annotations

import re
import unicodedata

from dialog.nlu.lemma import stem

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SYMBOL_WORDS = {"$": " dollars ", "£": " pounds ", "€": " euros ", "%": " percent ", "&": " and ",
                "@": " at ", "+": " plus "}
CHAR_NGRAM_RANGE = (2, 5)

_APOSTROPHES = re.compile(r"['\u2018\u2019\u02bc`]")
_SYMBOLS = re.compile("[" + re.escape("".join(SYMBOL_WORDS)) + "]")
_DIGIT = re.compile(r"\d")
_NOT_WORD = re.compile(r"[^a-z\s]+")


def normalize_text(text: str) -> str:
    """'What's my balance?! I paid $20' -> 'whats my balance i paid dollars two zero'."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _APOSTROPHES.sub("", text)
    text = _SYMBOLS.sub(lambda m: SYMBOL_WORDS[m.group(0)], text)
    text = _DIGIT.sub(lambda m: f" {DIGIT_WORDS[int(m.group(0))]} ", text)
    return " ".join(_NOT_WORD.sub(" ", text).split())


SELF_CORRECTIONS = ("i meant", "i mean", "no wait", "wait no", "sorry i meant", "scratch that", "no actually",
                    "actually no", "or rather", "i meant to say")
"""Phrases after which a caller's turn says what they really want."""
_SELF_CORRECTION = re.compile(r"\b(?:" + "|".join(re.escape(c) for c in SELF_CORRECTIONS) + r")\b")


def meaning_part(text: str) -> str:
    """The part of a turn after its last self-correction ("..., no wait, I meant my balance" -> "my
    balance"), when something comes before the correction and at least one word after it; else the text."""
    normalized = normalize_text(text)
    found = list(_SELF_CORRECTION.finditer(normalized))
    last = found[-1] if found else None
    if last is None or last.start() == 0:
        return text
    tail = normalized[last.end():].strip()
    return tail if tail else text


def ngram_features(normalized: str) -> list[str]:
    """Feature names of normalized text: 'w:' words, 's:' stems that differ from their word, 'b:' word
    pairs, 'c:' character n-grams of the whole text padded with spaces (so they also span word boundaries)."""
    words = normalized.split()
    features = [f"w:{word}" for word in words]
    features += [f"s:{key}" for word in words if (key := stem(word)) != word]
    features += [f"b:{a} {b}" for a, b in zip(words, words[1:], strict=False)]
    if not words:
        return features
    padded = f" {' '.join(words)} "
    low, high = CHAR_NGRAM_RANGE
    for n in range(low, high + 1):
        features += [f"c:{padded[i:i + n]}" for i in range(len(padded) - n + 1)]
    return features
