"""`ivr train text-emotion`: TF-IDF + one-vs-rest logistic regression on GoEmotions (Ekman labels).

GoEmotions is multi-label (about 6% of comments carry two or more Ekman labels), so the model is one
logistic unit per emotion, trained on the multi-label targets. Each unit gets its own decision
threshold, chosen on the dev split to maximise that emotion's F1; C is chosen on dev too. The figure
reported is the multi-label macro-F1 on the test split (a comment is positive for an emotion when
the unit's probability reaches its threshold), as in the GoEmotions paper (their BERT: 0.64).
Top-1 accuracy (the argmax is one of the gold labels) is reported too.

Needs scikit-learn (training only: `pip install scikit-learn`).
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from dialog.emotion.text import EKMAN_LABELS, TextEmotionModel, default_model_dir, tokens
from ivr.errors import IvrError

MAX_FEATURES = 30000
C_GRID = (1.0, 2.0, 4.0, 8.0)


def read_split(path: Path, labels: tuple[str, ...]) -> tuple[list[str], np.ndarray]:
    """Texts and a (n, labels) 0/1 matrix from a GoEmotions TSV (text, label ids, id)."""
    if not path.is_file():
        raise IvrError(f"{path}: not found; pass --data with the directory holding train.tsv, dev.tsv, "
                       "test.tsv and labels.txt (../shared/data/text/goemotions/ekman in the project)")
    texts: list[str] = []
    rows: list[list[int]] = []
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) < 2:
                continue
            texts.append(row[0])
            rows.append([int(i) for i in row[1].split(",") if i.strip()])
    y = np.zeros((len(texts), len(labels)), dtype=np.int8)
    for i, ids in enumerate(rows):
        y[i, ids] = 1
    return texts, y


def _f1(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    tp = (y & pred).sum(axis=0)
    fp = ((1 - y) & pred).sum(axis=0)
    fn = (y & (1 - pred)).sum(axis=0)
    return np.asarray(2 * tp / np.maximum(2 * tp + fp + fn, 1), dtype=np.float64)


def _best_thresholds(y: np.ndarray, probs: np.ndarray) -> np.ndarray:
    grid = np.arange(0.05, 0.95, 0.01)
    best = np.zeros(y.shape[1])
    for k in range(y.shape[1]):
        scores = [_f1(y[:, [k]], (probs[:, [k]] >= t).astype(np.int8))[0] for t in grid]
        best[k] = grid[int(np.argmax(scores))]
    return best


def train(data_dir: Path, out_dir: Path) -> dict[str, Any]:
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise IvrError("training needs scikit-learn: pip install scikit-learn") from None

    labels_file = data_dir / "labels.txt"
    labels = (tuple(line.strip() for line in labels_file.read_text().splitlines() if line.strip())
              if labels_file.is_file() else EKMAN_LABELS)
    train_x, train_y = read_split(data_dir / "train.tsv", labels)
    dev_x, dev_y = read_split(data_dir / "dev.tsv", labels)
    test_x, test_y = read_split(data_dir / "test.tsv", labels)
    t0 = time.perf_counter()
    vectorizer = TfidfVectorizer(analyzer=tokens, sublinear_tf=True, min_df=2, max_features=MAX_FEATURES,
                                 dtype=np.float32)
    xtr = vectorizer.fit_transform(train_x)
    xdev, xte = vectorizer.transform(dev_x), vectorizer.transform(test_x)

    def fit(c: float) -> tuple[np.ndarray, np.ndarray]:
        weights, bias = [], []
        for k in range(len(labels)):
            unit = LogisticRegression(C=c, max_iter=2000, class_weight="balanced", solver="liblinear")
            unit.fit(xtr, train_y[:, k])
            weights.append(unit.coef_[0])
            bias.append(unit.intercept_[0])
        return np.asarray(weights, dtype=np.float32), np.asarray(bias, dtype=np.float32)

    def probs(x: Any, w: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.asarray(1.0 / (1.0 + np.exp(-(x @ w.T + b))))

    best: tuple[float, float, np.ndarray, np.ndarray, np.ndarray] | None = None
    for c in C_GRID:
        w, b = fit(c)
        p_dev = probs(xdev, w, b)
        thr = _best_thresholds(dev_y, p_dev)
        dev_f1 = float(_f1(dev_y, (p_dev >= thr).astype(np.int8)).mean())
        print(f"  C={c:g}: dev macro-F1 {dev_f1:.3f}", flush=True)
        if best is None or dev_f1 > best[1]:
            best = (c, dev_f1, w, b, thr)
    assert best is not None
    c, dev_f1, w, b, thr = best
    p_test = probs(xte, w, b)
    per_class = _f1(test_y, (p_test >= thr).astype(np.int8))
    top1 = float(test_y[np.arange(len(test_y)), p_test.argmax(axis=1)].mean())
    figures = {"test_macro_f1": round(float(per_class.mean()), 4),
               "test_f1_per_class": {lab: round(float(f), 4) for lab, f in zip(labels, per_class, strict=True)},
               "test_top1_accuracy": round(top1, 4), "dev_macro_f1": round(dev_f1, 4), "C": c,
               "train_s": round(time.perf_counter() - t0, 1), "train_size": len(train_x),
               "test_size": len(test_x)}
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
    meta = {"model": "tfidf-ovr-logistic", "labels": list(labels), "thresholds": [round(float(t), 3) for t in thr],
            "data": "GoEmotions (Demszky et al. 2020), Ekman labels, CC BY 4.0",
            "training_command": "ivr train text-emotion --data ../shared/data/text/goemotions/ekman",
            "figures": figures, "vocabulary": vocab}
    (out_dir / "text-emotion.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    np.savez_compressed(out_dir / "text-emotion.npz", idf=vectorizer.idf_.astype(np.float32),
                        weights=w.astype(np.float16), bias=b)
    _check_export(out_dir, test_x[:200], p_test[:200])
    return figures


def _check_export(out_dir: Path, texts: list[str], expected: np.ndarray) -> None:
    """The numpy inference on the exported files must agree with scikit-learn."""
    model = TextEmotionModel(out_dir)
    got = np.stack([model.probabilities(t) for t in texts])
    if np.max(np.abs(got - expected)) > 0.02:
        raise IvrError("exported text emotion model disagrees with the trained one")


def cmd_train_text(args: Any) -> int:
    out_dir = Path(args.out) if args.out else default_model_dir()
    print(f"training text emotion on {args.data}", flush=True)
    figures = train(Path(args.data), out_dir)
    print(f"GoEmotions Ekman test: macro-F1 {figures['test_macro_f1']:.3f} (multi-label, per-class thresholds "
          f"from dev), top-1 accuracy {figures['test_top1_accuracy']:.3f}")
    for label, f1 in figures["test_f1_per_class"].items():
        print(f"  {label:<9} F1 {f1:.3f}")
    print(f"model written to {out_dir}/text-emotion.json and text-emotion.npz")
    return 0
