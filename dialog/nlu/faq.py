"""A FAQ knowledge base: questions (with paraphrases) and spoken answers, found by sentence embeddings
and TF-IDF.

The file (YAML) looks like `dialog/flows/bank_faq.yaml`:

    threshold: 0.3            # optional: the least TF-IDF cosine that counts as an answer (no encoder)
    embedding_threshold: 0.5  # optional: the least blended score that counts (with the sentence encoder)
    entries:
      - id: atm_fee
        question: Do you charge for ATM withdrawals?
        paraphrases: [atm fees, cash withdrawal charge]
        answer: Withdrawals at our own ATMs are free.

Each question and paraphrase is a document. Two similarities of an utterance to a document:
- dense: cosine of the all-MiniLM-L6-v2 sentence vectors (`dialog.nlu.embed`), which knows that "my
  replacement card hasn't turned up" and "when will my new card arrive" ask the same thing;
- sparse: cosine of sublinear TF-IDF over word stems (`dialog.nlu.lemma`), stem pairs and character
  3-5-grams, which keeps rare exact words (an "IBAN", a "sort code") decisive.
An entry's score is its best document's DENSE_WEIGHT * dense + (1 - DENSE_WEIGHT) * sparse; the best entry
answers when it reaches `embedding_threshold`. Without the encoder the sparse cosine alone is compared with
`threshold`. Both thresholds (and DENSE_WEIGHT) are calibrated on hand-written questions
(`models/intents/eval/dev.csv`): see models/intents/README.md.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dialog._yaml import read_yaml
from dialog.errors import DialogError
from dialog.nlu.lemma import stem
from dialog.nlu.text import normalize_text
from models.errors import ModelMissingError

log = logging.getLogger(__name__)
DEFAULT_THRESHOLD = 0.3
DEFAULT_EMBEDDING_THRESHOLD = 0.5
DENSE_WEIGHT = 0.7
"""Share of the sentence-vector cosine in an entry's score (the rest: the TF-IDF cosine)."""
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
    """The entry's score (0..1): blended dense and sparse cosine with the encoder, else the sparse one."""
    dense: float = 0.0
    """Sentence-vector cosine of the utterance and the entry's best document (0 without the encoder)."""
    sparse: float = 0.0
    """TF-IDF cosine of the utterance and the entry's best document."""


def _features(text: str) -> list[str]:
    words = [stem(w) for w in normalize_text(text).split() if w not in STOP_WORDS]
    features = [f"w:{w}" for w in words] + [f"b:{a} {b}" for a, b in zip(words, words[1:], strict=False)]
    for word in words:
        padded = f" {word} "
        features += [f"c:{padded[i:i + n]}" for n in (3, 4, 5) for i in range(len(padded) - n + 1)]
    return features


class FaqIndex:
    """Retrieval over a list of entries; immutable after construction, shared by every call."""

    def __init__(self, entries: list[FaqEntry], threshold: float = DEFAULT_THRESHOLD, encoder: Any = None,
                 embedding_threshold: float = DEFAULT_EMBEDDING_THRESHOLD) -> None:
        if not entries:
            raise DialogError("a FAQ needs at least one entry")
        self.entries = entries
        self.encoder = encoder
        """The sentence encoder (`dialog.nlu.embed`), or None for TF-IDF alone."""
        self.threshold = embedding_threshold if encoder is not None else threshold
        """The least score that answers, for the retrieval in use."""
        self.by_id = {entry.id: entry for entry in entries}
        docs: list[Counter[str]] = []
        texts: list[str] = []
        owner: list[int] = []
        for i, entry in enumerate(entries):
            for text in (entry.question, *entry.paraphrases):
                docs.append(Counter(_features(text)))
                texts.append(text)
                owner.append(i)
        self._owner = np.array(owner)
        df: Counter[str] = Counter(f for doc in docs for f in doc)
        self._vocab = {f: j for j, f in enumerate(sorted(df))}
        self._idf = np.array([math.log((1 + len(docs)) / (1 + df[f])) + 1 for f in sorted(df)], np.float32)
        self._matrix = np.stack([self._vector(doc) for doc in docs])
        self._dense = encoder.encode(texts) if encoder is not None else None

    def _vector(self, counts: Counter[str]) -> np.ndarray:
        vector = np.zeros(len(self._vocab), dtype=np.float32)
        for feature, count in counts.items():
            j = self._vocab.get(feature)
            if j is not None:
                vector[j] = (1 + math.log(count)) * self._idf[j]
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else vector

    def rank(self, text: str, top: int = 3, sentence_vector: np.ndarray | None = None) -> list[FaqHit]:
        """The `top` entries for `text`, best first, whatever their score. `sentence_vector`: the
        encoder's vector of `text` when the caller has it already (it is computed otherwise)."""
        sparse = self._matrix @ self._vector(Counter(_features(text)))
        if self._dense is not None and self.encoder is not None and normalize_text(text):
            if sentence_vector is None:
                sentence_vector = self.encoder.encode([text])[0]
            dense = np.clip(self._dense @ sentence_vector, 0.0, 1.0)
            scores = DENSE_WEIGHT * dense + (1.0 - DENSE_WEIGHT) * sparse
        else:
            dense = np.zeros_like(sparse)
            scores = sparse
        best_doc: dict[int, int] = {}
        for doc in np.argsort(-scores):
            best_doc.setdefault(int(self._owner[doc]), int(doc))
            if len(best_doc) >= top:
                break
        return [FaqHit(self.entries[i], float(scores[d]), float(dense[d]), float(sparse[d]))
                for i, d in best_doc.items()]

    def search(self, text: str, sentence_vector: np.ndarray | None = None) -> FaqHit | None:
        """The best entry for `text` when it reaches the threshold, else None."""
        hits = self.rank(text, 1, sentence_vector)
        return hits[0] if hits and hits[0].score >= self.threshold and hits[0].score > 0 else None


def default_faq_path() -> Path:
    return Path(__file__).resolve().parents[1] / "flows" / "bank_faq.yaml"


def load_faq(path: str | Path | None = None, encoder: Any = None) -> FaqIndex:
    """A FaqIndex from a YAML file (default: the bank flow's FAQ); DialogError naming the problem.
    `encoder`: "auto" uses the shared sentence encoder when it is installed, None TF-IDF alone."""
    p = Path(path) if path else default_faq_path()
    data = read_yaml(p, "FAQ")
    raw = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(raw, list):
        raise DialogError(f"{p}: a FAQ needs 'entries', a list of question/answer mappings")
    entries = []
    for n, item in enumerate(raw, 1):
        if not isinstance(item, dict) or not item.get("question") or not item.get("answer"):
            raise DialogError(f"{p}: entry {n} needs 'question' and 'answer'")
        paraphrases = item.get("paraphrases") or []
        entries.append(FaqEntry(str(item.get("id", n)), str(item["question"]), str(item["answer"]),
                                tuple(str(x) for x in paraphrases)))
    threshold = float(data.get("threshold", DEFAULT_THRESHOLD))
    embedding_threshold = float(data.get("embedding_threshold", DEFAULT_EMBEDDING_THRESHOLD))
    if encoder == "auto":
        encoder = _shared_encoder()
    return FaqIndex(entries, threshold, encoder, embedding_threshold)


def _shared_encoder() -> Any:
    from dialog.nlu.embed import shared_encoder
    from models.encoder import INSTALL_HINT

    try:
        return shared_encoder()
    except ModelMissingError:
        log.info("FAQ: the sentence encoder is not installed (%s): TF-IDF retrieval only", INSTALL_HINT)
        return None
