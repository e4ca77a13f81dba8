"""Retraining the intent model with supervisors' labels, and the check that decides whether it may be used.

1. The labelled turns (`ivr.store.labels.training_rows`) are split by a hash of each turn: `holdout_percent`
   of them are held back, the rest join the base training rows (`label_copies` copies each, so a few dozen
   labels weigh against thousands of base rows). FAQ labels also become paraphrases of their entry in the
   version's own FAQ file (FAQ retrieval learns them too).
2. The candidate and the model in use are both judged by what the flow does with single turns
   (`ivr.train.nlu.turns_eval`: right, confirmed, miss, wrong) on the shipped benchmarks and on the held-back
   labelled turns.
3. The candidate is written as a new version (`ivr.learn.versions`), `candidate` or `refused`: refused when
   its share of right turns on a benchmark is more than `tolerance` below the current model's, or when it
   gets fewer held-back labelled turns right. Only an admin's accept puts a candidate in use.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from dialog.machine import Machine
from dialog.nlu.faq import default_faq_path, load_faq
from dialog.nlu.model import FAQ_PREFIX, IntentModel
from dialog.nlu.understand import Nlu
from ivr.learn.versions import FAQ_FILE, REFUSED, ModelVersion, ModelVersions
from ivr.store.labels import LabelledTurn
from ivr.train.nlu.data import Example
from ivr.train.nlu.train import TrainConfig, VectorCache, train
from ivr.train.nlu.turns_eval import evaluate_turns, summarize


@dataclass(frozen=True)
class RetrainSettings:
    holdout_percent: int = 25
    """Share of labelled turns held back to compare the models on (by a hash of the turn: stable)."""
    label_copies: int = 3
    """Copies of each labelled turn among the training rows."""
    tolerance: float = 0.01
    """How much of its share of right turns a benchmark may lose before the candidate is refused (0.01: about
    2 of the 192 turns of models/intents/eval/test.csv)."""
    train: TrainConfig = field(default_factory=TrainConfig)


def split_labels(rows: Sequence[LabelledTurn], holdout_percent: int) -> tuple[list[LabelledTurn], list[LabelledTurn]]:
    """(for training, held back): a turn is held back when its hash bucket is below `holdout_percent`."""
    held = [r for r in rows if r.bucket() < holdout_percent]
    return [r for r in rows if r.bucket() >= holdout_percent], held


def with_labels(base: Sequence[Example], labelled: Sequence[LabelledTurn], copies: int) -> list[Example]:
    return list(base) + [Example(r.text, r.target) for r in labelled for _ in range(max(1, copies))]


def write_faq(source: Path | None, labelled: Sequence[LabelledTurn], out: Path) -> int:
    """The FAQ `source` (default: the bank flow's) with each FAQ-labelled text added to its entry's
    paraphrases, written to `out`; returns how many were added (0: nothing written)."""
    added: dict[str, list[str]] = {}
    for r in labelled:
        if r.target.startswith(FAQ_PREFIX):
            added.setdefault(r.target[len(FAQ_PREFIX):], []).append(r.text)
    if not added:
        return 0
    data = yaml.safe_load((source or default_faq_path()).read_text(encoding="utf-8"))
    count = 0
    for entry in data.get("entries", []):
        known = {p.lower() for p in entry.get("paraphrases", [])} | {str(entry.get("question", "")).lower()}
        new = [t for t in dict.fromkeys(added.get(entry["id"], [])) if t.lower() not in known]
        entry["paraphrases"] = list(entry.get("paraphrases", [])) + new
        count += len(new)
    out.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return count


def load_nlu(version: ModelVersion, faq: Path | None = None) -> Nlu:
    """A version's NLU: its intent model and its FAQ (else `faq`, else the bank flow's)."""
    model = IntentModel.load(version.path) if version.path is not None else IntentModel.load()
    return Nlu(model, load_faq(version.faq_path or faq, encoder="auto"))


def judge(nlu: Nlu, machine: Machine, rows: Sequence[Example]) -> dict[str, Any]:
    """What the flow does with each turn: shares of right / confirmed / miss / wrong (overall, `n` turns)."""
    if not rows:
        return {"n": 0, "right": 0.0, "confirmed": 0.0, "miss": 0.0, "wrong": 0.0}
    return dict(summarize(evaluate_turns(nlu, machine, rows))["all"])


def compare(current: Nlu, candidate: Nlu, machine: Machine, sets: Mapping[str, Sequence[Example]]) -> dict[str, Any]:
    """{set name: {"current": shares, "candidate": shares}} for each evaluation set."""
    return {name: {"current": judge(current, machine, rows), "candidate": judge(candidate, machine, rows)}
            for name, rows in sets.items()}


def refusals(figures: dict[str, Any], benchmarks: Sequence[str], tolerance: float) -> list[str]:
    """Why the candidate is worse than the current model (empty: it is not)."""
    reasons = []
    for name in benchmarks:
        now, new = figures[name]["current"]["right"], figures[name]["candidate"]["right"]
        if new < now - tolerance:
            reasons.append(f"{name}: right {new:.3f} < {now:.3f} - {tolerance}")
    held = figures.get("held-back labels")
    if held and held["current"]["n"] and held["candidate"]["right"] < held["current"]["right"]:
        reasons.append(f"held-back labels: right {held['candidate']['right']:.3f} < {held['current']['right']:.3f}")
    return reasons


@dataclass(frozen=True)
class RetrainInput:
    base: list[Example]
    """The base training rows (the recipe of the model in use)."""
    labelled: list[LabelledTurn]
    benchmarks: dict[str, list[Example]]
    """The shipped evaluation sets by name (models/intents/eval/test.csv, ...)."""
    machine: Machine
    faq: Path | None = None
    """The flow's FAQ file (default: the bank flow's)."""


def retrain(data: RetrainInput, versions: ModelVersions, settings: RetrainSettings, by: str,
            vectors: VectorCache | None = None) -> ModelVersion:
    """Train, compare with the version in use, and publish the candidate (or refused) version."""
    started = time.perf_counter()
    fit_rows, held = split_labels(data.labelled, settings.holdout_percent)
    rows = with_labels(data.base, fit_rows, settings.label_copies)
    if settings.train.backend != "tfidf" and vectors is None:
        vectors = VectorCache()
    model = train(rows, settings.train, vectors)
    build = versions.workdir()
    try:
        model.save(build)
        faq_added = write_faq(data.faq, fit_rows, build / FAQ_FILE)
        current = versions.current()
        candidate = Nlu(IntentModel.load(build), load_faq(build / FAQ_FILE if faq_added else data.faq,
                                                          encoder="auto"))
        sets: dict[str, Sequence[Example]] = {**data.benchmarks,
                                              "held-back labels": [Example(r.text, r.target) for r in held]}
        figures = compare(load_nlu(current, data.faq), candidate, data.machine, sets)
        reasons = refusals(figures, list(data.benchmarks), settings.tolerance)
        info = {"created_at": datetime.now(UTC).isoformat(timespec="seconds"), "created_by": by,
                "status": REFUSED if reasons else "candidate", "reasons": reasons, "parent": current.name,
                "figures": figures, "rows": len(rows), "base_rows": len(data.base),
                "labels": {"used": len(fit_rows), "held_back": len(held), "faq_paraphrases_added": faq_added},
                "settings": {**asdict(settings), "train": asdict(settings.train)},
                "train_s": round(time.perf_counter() - started, 1)}
        return versions.publish(build, info)
    except BaseException:
        versions.discard(build)
        raise


def figures_table(version: ModelVersion) -> list[str]:
    """Lines of text: each evaluation set's right / confirmed / miss / wrong, current model against candidate."""
    info = version.info
    labels = info.get("labels", {})
    lines = [f"{version.name}: {info.get('status')} (trained on {info.get('rows')} rows, {labels.get('used')} "
             f"labelled turns, {labels.get('held_back')} held back; compared with {info.get('parent')})",
             f"{'':28}{'n':>5}  {'current: right / conf / miss / wrong':>38}"
             f"  {'candidate: right / conf / miss / wrong':>40}"]
    for name, pair in info.get("figures", {}).items():
        cur, new = pair["current"], pair["candidate"]
        lines.append(f"{name:28}{cur['n']:>5}  {_shares(cur):>38}  {_shares(new):>40}")
    lines += [f"refused: {reason}" for reason in info.get("reasons", [])]
    return lines


def _shares(s: dict[str, Any]) -> str:
    return " / ".join(f"{s[k]:.3f}" for k in ("right", "confirmed", "miss", "wrong"))
