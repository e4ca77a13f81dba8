"""Similar utterances grouped: TF-IDF word vectors, cosine similarity, average-linkage merging."""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np

_WORD_RE = re.compile(r"[a-z0-9']+")


_STOPWORDS = frozenset("""a an the i me my we our you your it its is am are was be been do does did to of
in on at for from with and or but so please can could would will just that this what how want like
need um uh oh hi hello""".split())  # noqa: SIM905 - a readable word list


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _terms(text: str) -> list[str]:
    """Content words, crudely stemmed (caller requests are short: word pairs would rarely repeat)."""
    return [_stem(w) for w in _WORD_RE.findall(text.lower()) if w not in _STOPWORDS]


def tfidf(texts: list[str]) -> np.ndarray:
    """Rows of l2-normalised TF-IDF (sublinear tf, smoothed idf) over the texts' own vocabulary."""
    docs = [Counter(_terms(t)) for t in texts]
    vocab = {term: i for i, term in enumerate(sorted({term for doc in docs for term in doc}))}
    df = Counter(term for doc in docs for term in doc)
    idf = {term: math.log((1 + len(docs)) / (1 + df[term])) + 1.0 for term in vocab}
    matrix = np.zeros((len(texts), len(vocab)), dtype=np.float64)
    for row, doc in enumerate(docs):
        for term, count in doc.items():
            matrix[row, vocab[term]] = (1.0 + math.log(count)) * idf[term]
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)


def group(texts: list[str], threshold: float = 0.35) -> list[list[int]]:
    """Indices of `texts` in groups, largest first: two groups merge while their average pairwise
    cosine similarity is at least `threshold`."""
    n = len(texts)
    if n == 0:
        return []
    vectors = tfidf(texts)
    sim = vectors @ vectors.T
    np.fill_diagonal(sim, -np.inf)
    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    alive = np.ones(n, dtype=bool)
    while alive.sum() > 1:
        masked = np.where(alive[:, None] & alive[None, :], sim, -np.inf)
        a, b = (int(i) for i in np.unravel_index(int(np.argmax(masked)), masked.shape))
        if masked[a, b] < threshold:
            break
        na, nb = len(members[a]), len(members[b])
        merged = (na * sim[a] + nb * sim[b]) / (na + nb)  # average linkage (Lance-Williams)
        sim[a, :], sim[:, a] = merged, merged
        sim[a, a] = -np.inf
        members[a] += members.pop(b)
        alive[b] = False
    return sorted(members.values(), key=lambda g: (-len(g), g[0]))
