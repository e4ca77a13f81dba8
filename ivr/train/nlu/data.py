"""Labelled utterances from CSV files: (text, intent) rows, optional relabelling of another data set."""

from __future__ import annotations

import csv
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dialog.nlu.model import FAQ_PREFIX, OOS_LABEL
from ivr.errors import IvrError

TEXT_COLUMNS = ("text", "utterance", "sentence")
LABEL_COLUMNS = ("intent", "category", "label")


@dataclass(frozen=True)
class Example:
    text: str
    intent: str


def read_examples(path: str | Path) -> list[Example]:
    """Rows of a CSV with a header: a text column (text/utterance/sentence) and a label column
    (intent/category/label). Blank rows are skipped; a file without those columns is an IvrError."""
    p = Path(path)
    try:
        with p.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            fields = [name.strip().lower() for name in reader.fieldnames or []]
            text_col = next((c for c in TEXT_COLUMNS if c in fields), None)
            label_col = next((c for c in LABEL_COLUMNS if c in fields), None)
            if text_col is None or label_col is None:
                raise IvrError(f"{p}: needs a header with a text column ({', '.join(TEXT_COLUMNS)}) and a "
                               f"label column ({', '.join(LABEL_COLUMNS)}); found {fields}")
            rows = []
            for raw in reader:
                row = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k}
                if row.get(text_col) and row.get(label_col):
                    rows.append(Example(row[text_col], row[label_col]))
    except OSError as exc:
        raise IvrError(f"{p}: cannot read training data ({exc.strerror})") from None
    if not rows:
        raise IvrError(f"{p}: no labelled rows")
    return rows


def relabel(examples: list[Example], mapping: Mapping[str, str], oos_per_label: int = 0,
            seed: int = 0, max_per_intent: int = 0) -> list[Example]:
    """Examples of another data set in this flow's intents: mapped labels kept (at most `max_per_intent`
    rows per intent they map to, drawn evenly from its labels; 0 for all), labels mapped to "" left out
    (too close to an intent to be out of scope, too far to be it), the rest become OOS_LABEL (at most
    `oos_per_label` of each unmapped label, 0 for none)."""
    rng = random.Random(seed)
    mapped: dict[str, dict[str, list[Example]]] = {}
    for e in examples:
        if e.intent in mapping and mapping[e.intent]:
            mapped.setdefault(mapping[e.intent], {}).setdefault(e.intent, []).append(Example(e.text,
                                                                                            mapping[e.intent]))
    kept: list[Example] = []
    for intent in sorted(mapped):
        sources = [mapped[intent][label] for label in sorted(mapped[intent])]
        for rows in sources:
            rng.shuffle(rows)
        if max_per_intent:
            share = -(-max_per_intent // len(sources))
            sources = [rows[:share] for rows in sources]
        kept += [row for rows in sources for row in rows][:max_per_intent or None]
    by_label: dict[str, list[Example]] = {}
    for e in examples:
        if e.intent not in mapping:
            by_label.setdefault(e.intent, []).append(e)
    for label in sorted(by_label):
        rows = by_label[label]
        rng.shuffle(rows)
        kept += [Example(e.text, OOS_LABEL) for e in rows[:oos_per_label]]
    return kept


def faq_examples(path: str | Path) -> list[Example]:
    """Each FAQ entry's question and paraphrases as rows labelled FAQ_PREFIX + its id."""
    from dialog.nlu.faq import load_faq

    index = load_faq(path, encoder=None)
    return [Example(text, FAQ_PREFIX + entry.id) for entry in index.entries
            for text in (entry.question, *entry.paraphrases)]
