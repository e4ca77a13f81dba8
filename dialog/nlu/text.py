"""Text as the intent model sees it, the same at training and at run time.

`normalize_text` makes clean text and ASR output look alike: lower case, no punctuation, apostrophes
dropped ("what's" -> "whats"), digits spelled out one by one ("2" -> "two"), a few symbols as words.
`ngram_features` turns normalized text into the model's features: words, word pairs, and the
character 2- to 5-grams inside each word (padded with spaces), which survive ASR misspellings.
"""

from __future__ import annotations

import re
import unicodedata

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


def ngram_features(normalized: str) -> list[str]:
    """Feature names of normalized text: 'w:' words, 'b:' word pairs, 'c:' character n-grams of the
    whole text padded with spaces (so they also span word boundaries)."""
    words = normalized.split()
    features = [f"w:{word}" for word in words]
    features += [f"b:{a} {b}" for a, b in zip(words, words[1:], strict=False)]
    if not words:
        return features
    padded = f" {' '.join(words)} "
    low, high = CHAR_NGRAM_RANGE
    for n in range(low, high + 1):
        features += [f"c:{padded[i:i + n]}" for i in range(len(padded) - n + 1)]
    return features
