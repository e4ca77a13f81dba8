"""A FAQ knowledge base: questions (with paraphrases) and spoken answers, found by TF-IDF cosine.

The file (YAML) looks like `dialog/flows/bank_faq.yaml`:

    threshold: 0.3            # optional: the least cosine similarity that counts as an answer
    entries:
      - id: atm_fee
        question: Do you charge for ATM withdrawals?
        paraphrases: [atm fees, cash withdrawal charge]
        answer: Withdrawals at our own ATMs are free.

Each question and paraphrase is a document; an utterance's best document (sublinear TF-IDF over
words, word pairs and character 3-5-grams, cosine) answers when its similarity reaches the threshold.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dialog.nlu.text import normalize_text
from ivr.errors import IvrError
from ivr.yamlfile import read_yaml

DEFAULT_THRESHOLD = 0.3
STOP_WORDS = frozenset({"a", "an", "the", "i", "my", "me", "is", "are", "do", "does", "can", "you", "your",
                        "to", "of", "for", "on", "in", "it", "what", "how", "please", "and", "we", "be", "want",
                        "like", "would", "need", "just", "hi", "hello", "um", "uh", "so", "id", "im"})


@dataclass(frozen=True)
class FaqEntry:
    id: str
    question: str
    answer: str
    paraphrases: tuple[str, ...] = ()


@dataclass(frozen=True)
class FaqHit:
    entry: FaqEntry
    score: float
    """Cosine similarity of the utterance and the best question or paraphrase (0..1)."""


def _features(text: str) -> list[str]:
    words = [w for w in normalize_text(text).split() if w not in STOP_WORDS]
    features = [f"w:{w}" for w in words] + [f"b:{a} {b}" for a, b in zip(words, words[1:], strict=False)]
    for word in words:
        padded = f" {word} "
        features += [f"c:{padded[i:i + n]}" for n in (3, 4, 5) for i in range(len(padded) - n + 1)]
    return features


class FaqIndex:
    """Retrieval over a list of entries; immutable after construction, shared by every call."""

    def __init__(self, entries: list[FaqEntry], threshold: float = DEFAULT_THRESHOLD) -> None:
        if not entries:
            raise IvrError("a FAQ needs at least one entry")
        self.entries = entries
        self.threshold = threshold
        docs: list[Counter[str]] = []
        self._owner: list[int] = []
        for i, entry in enumerate(entries):
            for text in (entry.question, *entry.paraphrases):
                docs.append(Counter(_features(text)))
                self._owner.append(i)
        df: Counter[str] = Counter(f for doc in docs for f in doc)
        self._vocab = {f: j for j, f in enumerate(sorted(df))}
        self._idf = np.array([math.log((1 + len(docs)) / (1 + df[f])) + 1 for f in sorted(df)], np.float32)
        self._matrix = np.stack([self._vector(doc) for doc in docs])

    def _vector(self, counts: Counter[str]) -> np.ndarray:
        vector = np.zeros(len(self._vocab), dtype=np.float32)
        for feature, count in counts.items():
            j = self._vocab.get(feature)
            if j is not None:
                vector[j] = (1 + math.log(count)) * self._idf[j]
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else vector

    def search(self, text: str) -> FaqHit | None:
        """The best entry for `text` when it reaches the threshold, else None."""
        vector = self._vector(Counter(_features(text)))
        if not vector.any():
            return None
        scores = self._matrix @ vector
        best = int(scores.argmax())
        score = float(scores[best])
        return FaqHit(self.entries[self._owner[best]], score) if score >= self.threshold else None


def default_faq_path() -> Path:
    return Path(__file__).resolve().parents[1] / "flows" / "bank_faq.yaml"


def load_faq(path: str | Path | None = None) -> FaqIndex:
    """A FaqIndex from a YAML file (default: the bank flow's FAQ); IvrError naming the problem."""
    p = Path(path) if path else default_faq_path()
    data = read_yaml(p, "FAQ")
    raw = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(raw, list):
        raise IvrError(f"{p}: a FAQ needs 'entries', a list of question/answer mappings")
    entries = []
    for n, item in enumerate(raw, 1):
        if not isinstance(item, dict) or not item.get("question") or not item.get("answer"):
            raise IvrError(f"{p}: entry {n} needs 'question' and 'answer'")
        paraphrases = item.get("paraphrases") or []
        entries.append(FaqEntry(str(item.get("id", n)), str(item["question"]), str(item["answer"]),
                                tuple(str(x) for x in paraphrases)))
    threshold = float(data.get("threshold", DEFAULT_THRESHOLD))
    return FaqIndex(entries, threshold)
