"""Training and evaluation of the intent model (scikit-learn, at training time only).

Recipe: text normalized as at run time (`dialog.nlu.text`), each training row plus `augment` copies
with simulated ASR noise (dropped words, fillers, homophones); sublinear TF-IDF over words, word
pairs and character 2-5-grams; a linear SVM (one-vs-rest) plus, optionally, a little of a multinomial
logistic regression's scores (one linear model in the end). A held-out split calibrates a softmax
temperature (least log-loss) and the out-of-scope threshold on the best probability; then the model
is refitted on all rows.

Backends `embed` and `ensemble` add a multinomial logistic regression over all-MiniLM-L6-v2 sentence
vectors (`dialog.nlu.embed`) of each row as given and normalized as ASR output. On the same held-out
split: the head's temperature, the blend of the two models' probabilities (ensemble: the best
held-out accuracy, ties to the lower log-loss; embed: the head alone) and the out-of-scope threshold
of the blend. The TF-IDF model is always trained too: it runs where the encoder is not installed.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from dialog.nlu.model import BACKENDS, OOS_LABEL, OUT_OF_SCOPE, EmbeddingHead, IntentModel, softmax
from dialog.nlu.text import ngram_features, normalize_text
from ivr.errors import IvrError
from ivr.train.nlu.data import Example
from models.errors import ModelMissingError

HOMOPHONES: dict[str, tuple[str, ...]] = {
    "to": ("two",), "two": ("to",), "for": ("four",), "four": ("for",), "card": ("cart", "car", "cards"),
    "pin": ("pen",), "account": ("count", "accounts"), "balance": ("balanced", "melon", "marlon", "balance is"),
    "hours": ("ours", "hour"), "lost": ("last", "lust"), "bye": ("by",), "transfer": ("transfers",),
    "top": ("stop",), "a": ("the",), "my": ("by", "me"), "i": ("a",), "cant": ("can",),
    "representative": ("repremand", "represent"), "branch": ("rent", "brunch"), "statement": ("statements",),
    "stolen": ("stolon", "stole"), "agent": ("asian", "aging"), "open": ("hope in",)}
"""Words and what a telephone-band recognizer (whisper tiny.en) has been heard to write for them (issue 12:
"balance" as "melon"/"Marlon", "representative" as "repremand", "branch" as "rent")."""
MIN_IN_SCOPE_KEPT = 0.92
"""A rejected in-scope request costs a caller a retry: the threshold keeps at least this share."""
FILLERS = ("um", "uh", "so", "yeah", "hi", "hello", "okay", "well", "hi there", "good morning", "yes hello",
           "right", "oh")


@dataclass(frozen=True)
class TrainConfig:
    svm_c: float = 1.0
    """Inverse regularization of the linear SVM."""
    lr_c: float = 0.0
    """Inverse regularization of the logistic regression blended in; 0 leaves it out (faster)."""
    lr_weight: float = 0.1
    """How much of the logistic regression's scores is added to the SVM's."""
    augment: int = 1
    """Noisy copies of each training row (0: none)."""
    min_df: int = 1
    """Features seen in fewer training rows are dropped."""
    max_features: int = 0
    """Keep only the features with the largest weights (0: all), to bound the model's size."""
    val_fraction: float = 0.15
    """Held out for calibration before the final refit on everything."""
    seed: int = 0
    backend: str = "tfidf"
    """`tfidf`, `embed` (sentence-vector head alone) or `ensemble` (both, blended)."""
    embed_c: float = 10.0
    """Inverse regularization of the sentence-vector head (logistic regression)."""
    embed_normalized_copies: bool = True
    """Also train the head on each row normalized as ASR output (robust to either at run time)."""


def _sklearn() -> Any:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise IvrError("training intent models needs scikit-learn: pip install scikit-learn") from None
    return sklearn


def asr_noise(text: str, rng: random.Random) -> str:
    """A copy of `text` as a recognizer might return it: normalized, maybe a word dropped or swapped
    for a homophone, maybe a filler in front."""
    words = normalize_text(text).split()
    if len(words) > 3 and rng.random() < 0.5:
        del words[rng.randrange(len(words))]
    words = [rng.choice(HOMOPHONES[w]) if w in HOMOPHONES and rng.random() < 0.3 else w for w in words]
    if rng.random() < 0.3:
        words.insert(0, rng.choice(FILLERS))
    return " ".join(words)


def _analyzer(text: str) -> list[str]:
    return ngram_features(normalize_text(text))


def fit(examples: Sequence[Example], config: TrainConfig = TrainConfig()) -> IntentModel:
    """An uncalibrated model (temperature 1, no out-of-scope threshold) fitted on `examples`."""
    _sklearn()
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    rng = random.Random(config.seed)
    texts = [e.text for e in examples]
    labels = [e.intent for e in examples]
    for _ in range(config.augment):
        texts += [asr_noise(e.text, rng) for e in examples]
        labels += [e.intent for e in examples]
    if len(set(labels)) < 2:
        raise IvrError("training needs at least two different intents")
    vectorizer = TfidfVectorizer(analyzer=_analyzer, sublinear_tf=True, min_df=config.min_df)
    matrix = vectorizer.fit_transform(texts)
    svm = LinearSVC(C=config.svm_c, random_state=config.seed).fit(matrix, labels)
    classes = [str(c) for c in svm.classes_]
    weights, bias = _ovr_scores(svm.coef_, svm.intercept_, len(classes))
    if config.lr_c > 0:
        lr = LogisticRegression(C=config.lr_c, max_iter=3000).fit(matrix, labels)
        weights = weights + config.lr_weight * lr.coef_
        bias = bias + config.lr_weight * lr.intercept_
    vocab = vectorizer.get_feature_names_out().tolist()
    idf = vectorizer.idf_
    if config.max_features and len(vocab) > config.max_features:
        keep = np.sort(np.argsort(-np.abs(weights).max(axis=0))[:config.max_features])
        vocab, idf, weights = [vocab[i] for i in keep], idf[keep], weights[:, keep]
    return IntentModel(classes, vocab, weights.T.astype(np.float16), bias, idf)


def _ovr_scores(coef: np.ndarray, intercept: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    if n_classes == 2:  # scikit-learn keeps one row for two classes: score of the second
        return np.vstack([-coef[0], coef[0]]), np.array([-intercept[0], intercept[0]])
    return np.asarray(coef, dtype=np.float64), np.asarray(intercept, dtype=np.float64)


def calibrate(model: IntentModel, held_out: Sequence[Example]) -> tuple[float, float]:
    """(temperature, out-of-scope threshold) from held-out rows; OOS_LABEL rows are out of scope.

    The temperature minimizes the log-loss of in-scope rows. The threshold maximizes
    (in-scope rows accepted with the right intent) + (out-of-scope rows rejected) when there are
    out-of-scope rows, among thresholds that keep MIN_IN_SCOPE_KEPT of the correctly classified
    in-scope rows; else it keeps 97% of them."""
    scores = np.stack([model.scores(e.text) for e in held_out])
    truth, in_scope = _truth(model.labels, held_out)
    temperature = fit_temperature(scores, truth, in_scope)
    return temperature, fit_threshold(softmax(scores / temperature), truth, in_scope, model.labels)


def _truth(labels: Sequence[str], rows: Sequence[Example]) -> tuple[np.ndarray, np.ndarray]:
    """(class index or -1, whether in scope) of each row."""
    index = {label: i for i, label in enumerate(labels)}
    in_scope = np.array([e.intent != OOS_LABEL and e.intent in index for e in rows])
    return np.array([index.get(e.intent, -1) for e in rows]), in_scope


def fit_temperature(scores: np.ndarray, truth: np.ndarray, in_scope: np.ndarray) -> float:
    """The softmax temperature of least log-loss on the in-scope rows."""
    best_t, best_loss = 1.0, float("inf")
    for temperature in np.geomspace(0.01, 10.0, 61):
        z = scores[in_scope] / temperature
        z -= z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        loss = -float(log_p[np.arange(len(z)), truth[in_scope]].mean()) if len(z) else 0.0
        if loss < best_loss:
            best_t, best_loss = float(temperature), loss
    return best_t


def fit_threshold(probs: np.ndarray, truth: np.ndarray, in_scope: np.ndarray, labels: Sequence[str]) -> float:
    """The out-of-scope threshold on the best probability (see `calibrate`)."""
    pred, top = probs.argmax(axis=1), probs.max(axis=1)
    oos_class = list(labels).index(OOS_LABEL) if OOS_LABEL in labels else -2
    correct = in_scope & (pred == truth)
    out = ~in_scope
    if not out.any():
        return float(np.quantile(top[correct], 0.03)) if correct.any() else 0.0
    best_thr, best_gain = 0.0, -1.0
    for threshold in np.unique(np.round(top, 3)):
        accepted = (top >= threshold) & (pred != oos_class)
        if (correct & accepted).sum() < MIN_IN_SCOPE_KEPT * correct.sum():
            break
        gain = (correct & accepted).sum() / max(in_scope.sum(), 1) + (out & ~accepted).sum() / out.sum()
        if gain > best_gain:
            best_thr, best_gain = float(threshold), float(gain)
    return best_thr


class VectorCache:
    """Sentence vectors of texts, each encoded once (training encodes the same rows several times)."""

    def __init__(self) -> None:
        from dialog.nlu.embed import shared_encoder

        try:
            self.encoder = shared_encoder()
        except ModelMissingError as exc:
            raise IvrError(f"the embed and ensemble backends need the sentence encoder: {exc}") from None
        self._vectors: dict[str, np.ndarray] = {}

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        missing = sorted({t for t in texts if t not in self._vectors})
        if missing:
            for text, vector in zip(missing, self.encoder.encode(missing), strict=True):
                self._vectors[text] = vector
        return np.stack([self._vectors[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)


def fit_head(examples: Sequence[Example], labels: Sequence[str], vectors: VectorCache,
             config: TrainConfig) -> EmbeddingHead:
    """An uncalibrated head (temperature 1, blend 1) over the sentence vectors of `examples` (and of
    their normalized copies)."""
    _sklearn()
    from sklearn.linear_model import LogisticRegression

    texts = [e.text for e in examples]
    targets = [e.intent for e in examples]
    if config.embed_normalized_copies:
        texts += [normalize_text(e.text) for e in examples]
        targets += targets
    lr = LogisticRegression(C=config.embed_c, max_iter=3000).fit(vectors(texts), targets)
    order = [list(lr.classes_).index(label) for label in labels]
    weights, bias = _ovr_scores(lr.coef_, lr.intercept_, len(labels))
    return EmbeddingHead(weights[order].T.astype(np.float32), bias[order].astype(np.float32))


def calibrate_head(model: IntentModel, head: EmbeddingHead, held_out: Sequence[Example],
                   vectors: VectorCache, backend: str) -> None:
    """Sets the head's temperature, blend and out-of-scope threshold from held-out rows."""
    truth, in_scope = _truth(model.labels, held_out)
    raw = vectors([e.text for e in held_out]) @ head.weights + head.bias
    head.temperature = fit_temperature(raw, truth, in_scope)
    p_head = softmax(raw / head.temperature)
    p_tfidf = np.stack([model.tfidf_probabilities(e.text) for e in held_out])
    head.blend = 1.0
    if backend == "ensemble":
        rows = np.flatnonzero(in_scope)
        best = (-1.0, 0.0)
        for blend in np.round(np.linspace(0.0, 1.0, 21), 2):
            p = (1 - blend) * p_tfidf[rows] + blend * p_head[rows]
            accuracy = float((p.argmax(axis=1) == truth[rows]).mean())
            loss = -float(np.log(p[np.arange(len(rows)), truth[rows]] + 1e-12).mean())
            if (accuracy, -loss) > best:
                best, head.blend = (accuracy, -loss), float(blend)
    blended = (1 - head.blend) * p_tfidf + head.blend * p_head
    head.oos_threshold = fit_threshold(blended, truth, in_scope, model.labels)


def stratified_split(examples: Sequence[Example], fraction: float,
                     seed: int = 0) -> tuple[list[Example], list[Example]]:
    """(kept, held out): about `fraction` of each intent held out (at least one when it has 2+ rows)."""
    rng = random.Random(seed)
    by_label: dict[str, list[Example]] = {}
    for e in examples:
        by_label.setdefault(e.intent, []).append(e)
    kept: list[Example] = []
    held: list[Example] = []
    for label in sorted(by_label):
        rows = list(by_label[label])
        rng.shuffle(rows)
        n = min(len(rows) - 1, max(1, round(len(rows) * fraction))) if len(rows) > 1 else 0
        held += rows[:n]
        kept += rows[n:]
    return kept, held


def train(examples: Sequence[Example], config: TrainConfig = TrainConfig(),
          vectors: VectorCache | None = None) -> IntentModel:
    """A calibrated model: fit on most rows, calibrate on the rest, refit on all with that calibration
    (the sentence-vector head too, for the embed and ensemble backends)."""
    if config.backend not in BACKENDS:
        raise IvrError(f"unknown intent backend {config.backend!r}: one of {', '.join(BACKENDS)}")
    started = time.perf_counter()
    kept, held = stratified_split(examples, config.val_fraction, config.seed)
    probe = fit(kept, config)
    temperature, threshold = calibrate(probe, held)
    head = None
    if config.backend != "tfidf":
        vectors = vectors or VectorCache()
        probe.temperature = temperature
        probe_head = fit_head(kept, probe.labels, vectors, config)
        calibrate_head(probe, probe_head, held, vectors, config.backend)
    model = fit(examples, config)
    model.temperature, model.oos_threshold = temperature, threshold
    if config.backend != "tfidf" and vectors is not None:
        head = fit_head(examples, model.labels, vectors, config)
        head.temperature, head.blend = probe_head.temperature, probe_head.blend
        head.oos_threshold = probe_head.oos_threshold
        model.embed, model.encoder = head, vectors.encoder
    model.info.update(config=asdict(config), rows=len(examples),
                      train_s=round(time.perf_counter() - started, 1))
    return model


def predict_labels(model: IntentModel, texts: Sequence[str]) -> tuple[list[str], list[float]]:
    """Intents (OUT_OF_SCOPE for the OOS class or below the threshold) and per-utterance seconds."""
    labels, seconds = [], []
    for text in texts:
        t0 = time.perf_counter()
        result = model.predict(text)
        seconds.append(time.perf_counter() - t0)
        labels.append(result.intent)
    return labels, seconds


def evaluate(model: IntentModel, examples: Sequence[Example], normalize: bool = False) -> dict[str, Any]:
    """Accuracy and macro-F1 of the best intent (no rejection); latency of `predict`, one utterance
    at a time on one thread: wall and thread CPU time (p50, mean, p95), with the 1-minute load
    average before and after (wall time on a loaded machine includes waiting for a core)."""
    _sklearn()
    from sklearn.metrics import f1_score
    from threadpoolctl import threadpool_limits

    texts = [normalize_text(e.text) if normalize else e.text for e in examples]
    truth = [e.intent for e in examples]
    load_before = _load_average()
    with threadpool_limits(1):
        for text in texts[:10]:
            model.predict(text)  # warm-up
        best, seconds, cpu = [], [], []
        for text in texts:
            t0, c0 = time.perf_counter(), time.thread_time()
            best.append(model.predict(text).best)
            cpu.append(time.thread_time() - c0)
            seconds.append(time.perf_counter() - t0)
    ms, cpu_ms = np.array(seconds) * 1000, np.array(cpu) * 1000
    return {"n": len(texts), "accuracy": float(np.mean([b == t for b, t in zip(best, truth, strict=True)])),
            "macro_f1": float(f1_score(truth, best, average="macro")),
            "latency_ms_p50": float(np.percentile(ms, 50)), "latency_ms_mean": float(ms.mean()),
            "latency_ms_p95": float(np.percentile(ms, 95)),
            "cpu_ms_p50": float(np.percentile(cpu_ms, 50)), "cpu_ms_mean": float(cpu_ms.mean()),
            "cpu_ms_p95": float(np.percentile(cpu_ms, 95)),
            "load_avg_1min": [load_before, _load_average()], "cpus": _cpus(),
            "backend": model.backend, "encoder": getattr(model.encoder, "runtime", None)}


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _cpus() -> str:
    """The CPUs this process may run on (`taskset -c 1` shows as "1")."""
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return str(os.cpu_count())
    return ",".join(map(str, allowed))


def oos_study(train_rows: Sequence[Example], test_rows: Sequence[Example], holdout: int,
              config: TrainConfig = TrainConfig(), vectors: VectorCache | None = None) -> dict[str, float]:
    """Out-of-scope figures when `holdout` intents are unseen: the model is trained and calibrated
    without them (half of their training rows serve as out-of-scope calibration rows, never as a
    class), then tested with their test rows as out-of-scope."""
    rng = random.Random(config.seed)
    intents = sorted({e.intent for e in train_rows})
    unseen = set(rng.sample(intents, holdout))
    seen_rows = [e for e in train_rows if e.intent not in unseen]
    calib_oos = [Example(e.text, OOS_LABEL) for e in train_rows if e.intent in unseen][::2]
    kept, held = stratified_split(seen_rows, config.val_fraction, config.seed)
    probe = fit(kept, config)
    temperature, threshold = calibrate(probe, held + calib_oos)
    probe.temperature, probe.oos_threshold = temperature, threshold
    if config.backend != "tfidf":
        vectors = vectors or VectorCache()
        head = fit_head(kept, probe.labels, vectors, config)
        calibrate_head(probe, head, held + calib_oos, vectors, config.backend)
        probe.embed, probe.encoder = head, vectors.encoder
        threshold = head.oos_threshold
    predicted, _ = predict_labels(probe, [e.text for e in test_rows])
    is_oos = np.array([e.intent in unseen for e in test_rows])
    said_oos = np.array([p == OUT_OF_SCOPE for p in predicted])
    right = np.array([p == e.intent for p, e in zip(predicted, test_rows, strict=True)])
    return {"unseen_intents": holdout, "threshold": threshold, "temperature": temperature,
            "oos_recall": float((is_oos & said_oos).sum() / max(is_oos.sum(), 1)),
            "oos_precision": float((is_oos & said_oos).sum() / max(said_oos.sum(), 1)),
            "in_scope_accuracy_with_rejection": float(right[~is_oos].mean()),
            "in_scope_rejected": float(said_oos[~is_oos].mean())}
