"""Word error rate, on text normalized the same way for reference and hypothesis."""

from __future__ import annotations

import re

_DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def normalize_words(text: str) -> list[str]:
    """Lower case, no punctuation, single digits spelled out ('7' -> 'seven', 'oh' kept)."""
    text = re.sub(r"[^\w\s']", " ", text.lower()).replace("'", "")
    words: list[str] = []
    for word in text.split():
        if word.isdigit():
            words.extend(_DIGITS[int(d)] for d in word)
        else:
            words.append(word)
    return words


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def wer(references: list[str], hypotheses: list[str]) -> float:
    """Corpus WER: total edits over total reference words."""
    edits = words = 0
    for ref, hyp in zip(references, hypotheses, strict=True):
        r, h = normalize_words(ref), normalize_words(hyp)
        edits += edit_distance(r, h)
        words += len(r)
    return edits / max(words, 1)
