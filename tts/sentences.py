"""Splitting a reply into sentences, so the first one can be spoken while the rest is synthesized.

A boundary is `.`, `!`, `?` or `;` followed by whitespace (or the end), or a blank line. A period
after a title (Mr. Dr. St.), an initial (J.), an initialism (e.g. i.e. U.S.) is no boundary; after
a.m./p.m./etc./No. it is one only when the next word starts with a capital letter. Periods inside
numbers (3.50, 9.30) are never followed by whitespace, so they never split. A sentence longer than
LONG_CLAUSE_WORDS words is cut at commas into pieces of at most that many words where it can be.
"""

from __future__ import annotations

import re

LONG_CLAUSE_WORDS = 25
"""A sentence with more words than this is cut at commas."""

_BOUNDARY = re.compile(r"[.!?;]+[\"'”’)\]]*(?=\s|$)")
_PARAGRAPH = re.compile(r"\n\s*\n")
_WHITESPACE = re.compile(r"\s+")
_LAST_WORD = re.compile(r"(\S+)$")
_INITIALISM = re.compile(r"^(?:[a-z]\.)+[a-z]$", re.IGNORECASE)
_LEADING_PUNCT = "\"'“‘([{"

_NEVER_BREAK = frozenset({
    "mr", "mrs", "ms", "dr", "st", "prof", "sr", "jr", "mt", "ft", "vs", "cf", "approx", "dept",
    "ave", "blvd", "gen", "col", "lt", "sgt", "capt", "rev", "hon", "fig", "ext", "tel",
})
_BREAK_BEFORE_CAPITAL = frozenset({"a.m", "p.m", "etc", "inc", "ltd", "co", "no"})


def split_sentences(text: str) -> list[str]:
    """The sentences of `text` in order, whitespace-normalised, none empty."""
    sentences: list[str] = []
    for paragraph in _PARAGRAPH.split(text):
        flat = _WHITESPACE.sub(" ", paragraph).strip()
        for sentence in _split_paragraph(flat):
            sentences.extend(_split_long(sentence))
    return sentences


def _split_paragraph(text: str) -> list[str]:
    pieces: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        if _is_boundary(text, match):
            pieces.append(text[start:match.end()].strip())
            start = match.end()
    pieces.append(text[start:].strip())
    return [p for p in pieces if p and not _only_punctuation(p)]


def _is_boundary(text: str, match: re.Match[str]) -> bool:
    punct = match.group(0).rstrip("\"'”’)]")
    if punct != ".":
        return True  # ! ? ; ... and combinations always end a sentence
    before = _LAST_WORD.search(text, 0, match.start())
    if before is None:
        return True
    word = before.group(1).lstrip(_LEADING_PUNCT).lower()
    following = text[match.end():].lstrip()
    next_is_capital = bool(following) and following[0].isupper()
    if word in _BREAK_BEFORE_CAPITAL:
        return next_is_capital or not following
    if word in _NEVER_BREAK:
        return not following
    if len(word) == 1 and word.isalpha() or _INITIALISM.match(word):
        return not following  # an initial (J. R. Smith) or an initialism (e.g., U.S.)
    return True


def _only_punctuation(text: str) -> bool:
    return not any(ch.isalnum() for ch in text)


def _split_long(sentence: str) -> list[str]:
    if len(sentence.split()) <= LONG_CLAUSE_WORDS:
        return [sentence]
    clauses = [c.strip() for c in re.split(r"(?<=,)\s+", sentence) if c.strip()]
    pieces: list[str] = []
    current: list[str] = []
    words = 0
    for clause in clauses:
        n = len(clause.split())
        if current and words + n > LONG_CLAUSE_WORDS:
            pieces.append(" ".join(current))
            current, words = [], 0
        current.append(clause)
        words += n
    if current:
        pieces.append(" ".join(current))
    return pieces
