"""`ivr train acoustic-emotion`: the voice emotion model, evaluated speaker-independently.

Data: RAVDESS (24 actors) + TESS (2 speakers) from --data, and/or the user's own labelled calls from
--csv (path, emotion, speaker). Every clip goes through the telephone band (8 kHz, G.711) before its
features are taken; training also sees A-law and gain/noise-perturbed copies (featcache.VARIANTS);
features are cached under --work.

Evaluation is nested, so no figure is tuned on the speakers it is measured on: outer folds hold whole
speakers out (5 speaker-grouped folds, the two TESS speakers in different folds; --outer-folds 0 for
leave-one-speaker-out); inside each outer fold the hyperparameters (feature set, L2 penalty) are
chosen on 3 speaker-grouped folds of its training speakers only, then a model is trained on all of
them and predicts the held-out speakers' plain mu-law clips. Figures over the pooled predictions:
4-class unweighted accuracy (mean per-class recall), per-class recall and anger-vs-rest balanced
accuracy, pooled and per corpus, plus the cost in ms per second of audio. The shipped model's
hyperparameters are chosen the same way on all speakers, and it is trained on all clips.

Synthetic voices (ivr.train.emotion.synthetic, on by default; --no-synthetic leaves them out): neutral
call-center sentences spoken by Piper and espeak-ng are added to the training clips of every fold,
outer and inner, and are never among the clips a figure is measured on: the folds are made of human
speakers only, and every figure is over human clips.

Out-of-distribution calibration: the model stores its human training clips' feature statistics
(mean, scale, inverse Ledoit-Wolf covariance); the thresholds of the voice's weight are the 95th and
99.5th percentiles of the Mahalanobis distances of clips of speakers held out of those statistics
(speaker-grouped folds). The nested evaluation calibrates them inside each outer fold on its
training speakers alone and reports how often the held-out speakers' clips are down-weighted or
abstained on. Needs scikit-learn (training only).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dialog.emotion.acoustic import AcousticEmotionModel, ood_distance, voice_weight
from dialog.emotion.features import BASE_FEATURES, FEATURE_VERSION
from dialog.emotion.fusion import CLASSES
from dialog.emotion.text import default_model_dir
from ivr.errors import IvrError
from ivr.train.emotion.corpus import Clip, load_csv, load_shared
from ivr.train.emotion.featcache import TELEPHONE_RATE_HZ, featurize, telephone_band
from ivr.train.emotion.synthetic import SENTENCES, is_synthetic, synthetic_clips, synthetic_mask

HIDDEN_UNITS = 64
MEMBERS = 5
"""MLPs with different seeds whose probabilities are averaged."""
INNER_MEMBERS = 1
"""MLPs per candidate when scoring candidates on inner folds (cheaper; the ranking is what counts)."""
INNER_FOLDS = 3
"""Speaker-grouped folds inside each outer fold on which the hyperparameters are chosen."""
AUGMENT_VARIANTS = ("mulaw", "alaw", "mulaw-noisy", "alaw-noisy")
"""Training copies of each clip (ivr.train.emotion.featcache.VARIANTS); evaluation uses plain mu-law."""


@dataclass(frozen=True)
class Candidate:
    """One point of the hyperparameter grid."""

    features: str
    """"v1": the first BASE_FEATURES features; "v2": all of them."""
    alpha: float
    """L2 penalty of the MLPs."""
    augment: bool = True
    """Train on every AUGMENT_VARIANTS copy (A-law, gain and noise) instead of mu-law alone."""

    def columns(self, n_features: int) -> np.ndarray:
        return np.arange(BASE_FEATURES if self.features == "v1" else n_features)

    def name(self) -> str:
        return f"{self.features}-alpha{self.alpha:g}{'-aug' if self.augment else ''}"


GRID: tuple[Candidate, ...] = tuple(Candidate(f, a) for f in ("v1", "v2") for a in (1.0, 3.0, 10.0))
"""Chosen among on inner speaker folds, never on the speakers a figure is measured on."""
OLD_GRID: tuple[Candidate, ...] = tuple(Candidate("v1", a, augment=False) for a in (1.0, 3.0, 10.0))
"""The first model's recipe (version-1 features, mu-law only), for an honest comparison (--grid old)."""
SYNTHETIC_WEIGHT = 0.5
"""A synthetic-voice clip's training weight against a human neutral clip's (classes are balanced over the
human clips, so the synthetic ones do not dilute the human neutral examples)."""
OOD_QUANTILES = (0.95, 0.995)
"""Held-out speakers' distance percentiles: full voice weight below the first, none beyond the second."""
OOD_FOLDS = 5
"""Speaker-grouped folds of the shipped model's OOD calibration."""


def _sklearn() -> Any:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise IvrError("training needs scikit-learn: pip install scikit-learn") from None


def _training_rows(feats: dict[str, np.ndarray], y: np.ndarray, rows: np.ndarray, augment: bool,
                   groups: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, labels and the synthetic-voice mask of the training copies of `rows`."""
    variants = AUGMENT_VARIANTS if augment else ("mulaw",)
    synthetic = synthetic_mask(groups[rows])
    return (np.vstack([feats[v][rows] for v in variants]), np.concatenate([y[rows]] * len(variants)),
            np.concatenate([synthetic] * len(variants)))


def _standardisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and standard deviation (1 where a column is constant)."""
    scale = x.std(axis=0)
    scale[scale < 1e-6] = 1.0
    return x.mean(axis=0), scale


def fit(x: np.ndarray, y: np.ndarray, candidate: Candidate, members: int = MEMBERS,
        synthetic: np.ndarray | None = None) -> dict[str, Any]:
    """Column choice + standardisation + `members` class-balanced MLPs, as plain arrays. Classes are
    balanced over the human clips; a synthetic-voice clip weighs SYNTHETIC_WEIGHT of a human neutral one."""
    from sklearn.neural_network import MLPClassifier

    columns = candidate.columns(x.shape[1])
    x = x[:, columns]
    mean, scale = _standardisation(x)
    z = (x - mean) / scale
    synthetic = np.zeros(y.size, dtype=bool) if synthetic is None else synthetic
    counts = np.bincount(y[~synthetic], minlength=len(CLASSES))
    if (counts == 0).any():
        raise IvrError("every class needs training clips: " + ", ".join(CLASSES))
    weight = (int((~synthetic).sum()) / (len(CLASSES) * counts))[y]
    weight[synthetic] *= SYNTHETIC_WEIGHT
    arrays: dict[str, Any] = {"columns": columns.astype(np.int32), "mean": mean.astype(np.float32),
                              "scale": scale.astype(np.float32)}
    for m in range(members):
        mlp = MLPClassifier((HIDDEN_UNITS,), alpha=candidate.alpha, max_iter=800, random_state=m)
        mlp.fit(z, y, sample_weight=weight)
        for i, (w, b) in enumerate(zip(mlp.coefs_, mlp.intercepts_, strict=True)):
            arrays[f"m{m}_w{i}"], arrays[f"m{m}_b{i}"] = w.astype(np.float32), b.astype(np.float32)
    return arrays


def fit_ood(feats: dict[str, np.ndarray], rows: np.ndarray, columns: np.ndarray) -> dict[str, np.ndarray]:
    """Feature statistics of the (human) training clips `rows`, all training variants: mean, scale and
    the inverse of a Ledoit-Wolf shrunk covariance of the standardised features."""
    from sklearn.covariance import LedoitWolf

    x = np.vstack([feats[v][rows] for v in AUGMENT_VARIANTS if v in feats])[:, columns].astype(np.float64)
    mean, scale = _standardisation(x)
    lw = LedoitWolf().fit((x - mean) / scale)
    centre = lw.location_
    return {"ood_mean": (mean + centre * scale).astype(np.float32), "ood_scale": scale.astype(np.float32),
            "ood_precision": lw.precision_.astype(np.float32)}


def ood_distances(arrays: dict[str, np.ndarray], x: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """The model's OOD distance (dialog.emotion.acoustic.ood_distance) from fitted arrays."""
    return ood_distance(x[:, columns], arrays["ood_mean"], arrays["ood_scale"], arrays["ood_precision"])


def calibrate_ood(feats: dict[str, np.ndarray], groups: np.ndarray, rows: np.ndarray, columns: np.ndarray,
                  folds: int) -> dict[str, Any]:
    """Thresholds from the distances of speakers held out of the statistics (speaker-grouped folds of
    the human clips among `rows`; plain mu-law clips, as evaluated)."""
    human = rows[~synthetic_mask(groups[rows])]
    distances = np.zeros(human.size)
    for test in speaker_folds(groups[human], folds):
        arrays = fit_ood(feats, human[~test], columns)
        distances[test] = ood_distances(arrays, feats["mulaw"][human[test]], columns)
    low, high = (float(q) for q in np.quantile(distances, OOD_QUANTILES))
    return {"low": round(low, 4), "high": round(high, 4), "method": "Mahalanobis distance (RMS per feature) "
            "from the human training clips' statistics, Ledoit-Wolf shrunk covariance; thresholds: "
            f"{OOD_QUANTILES[0]:.1%} and {OOD_QUANTILES[1]:.1%} percentiles of held-out speakers' distances "
            f"({folds} speaker-grouped folds)",
            "calibration_clips": int(human.size)}


def predict_arrays(arrays: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """Class probabilities from fitted arrays (the same computation as AcousticEmotionModel)."""
    return AcousticEmotionModel.from_arrays(arrays, {"labels": list(CLASSES), "layers": 2,
                                                     "members": _member_count(arrays)}
                                            ).probabilities_from_features(x)


def _member_count(arrays: dict[str, Any]) -> int:
    return sum(1 for k in arrays if k.endswith("_w0"))


def _write(out_dir: Path, arrays: dict[str, Any], meta: dict[str, Any]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_dir / "acoustic-emotion.npz", **arrays)
    (out_dir / "acoustic-emotion.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")


def _meta(members: int, candidate: Candidate, figures: dict[str, Any], sources: list[str],
          ood: dict[str, Any]) -> dict[str, Any]:
    return {"model": "telephone-band features + MLP ensemble", "labels": list(CLASSES), "members": members,
            "layers": 2, "hidden_units": HIDDEN_UNITS, "alpha": candidate.alpha,
            "features": candidate.features, "augment": list(AUGMENT_VARIANTS) if candidate.augment else ["mulaw"],
            "class_balanced": True, "synthetic_weight": SYNTHETIC_WEIGHT, "feature_version": FEATURE_VERSION,
            "sample_rate_hz": TELEPHONE_RATE_HZ, "data": sources, "ood": ood,
            "license": "trained on non-commercial data (RAVDESS CC BY-NC-SA 4.0, TESS CC BY-NC-ND 4.0): "
                       "non-commercial use only; retrain on your own calls for anything else",
            "training_command": "ivr train acoustic-emotion --data ../shared/data/emotion",
            "figures": figures}


def unweighted_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    present = [k for k in range(len(CLASSES)) if (y == k).any()]
    return float(np.mean([(pred[y == k] == k).mean() for k in present]))


def anger_balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    angry = CLASSES.index("angry")
    truth, guess = y == angry, pred == angry
    return float(((guess[truth]).mean() + (~guess[~truth]).mean()) / 2)


def speaker_folds(groups: np.ndarray, k: int) -> list[np.ndarray]:
    """k folds of whole human speakers (round-robin over the sorted speakers; TESS speakers spread out).
    Synthetic voices are in no fold: they are always training clips."""
    speakers = sorted((g for g in np.unique(groups) if not is_synthetic(g)),
                      key=lambda g: (not g.startswith("tess"), g))
    k = min(k, len(speakers))
    return [np.isin(groups, speakers[i::k]) for i in range(k)]


def select(feats: dict[str, np.ndarray], y: np.ndarray, groups: np.ndarray, rows: np.ndarray,
           grid: tuple[Candidate, ...], folds: int = INNER_FOLDS) -> tuple[Candidate, dict[str, float]]:
    """The candidate with the best pooled UA over speaker-grouped folds of `rows` (only those clips; the
    synthetic ones among them are always trained on, never scored)."""
    scores: dict[str, float] = {}
    inner_groups = groups[rows]
    scored = np.zeros(rows.size, dtype=bool)
    best: tuple[float, Candidate] | None = None
    for candidate in grid:
        pred = np.zeros(rows.size, dtype=np.int64)
        for test in speaker_folds(inner_groups, folds):
            x, yy, syn = _training_rows(feats, y, rows[~test], candidate.augment, groups)
            arrays = fit(x, yy, candidate, INNER_MEMBERS, syn)
            pred[test] = predict_arrays(arrays, feats["mulaw"][rows[test]]).argmax(axis=1)
            scored |= test
        score = unweighted_accuracy(y[rows][scored], pred[scored])
        scores[candidate.name()] = round(score, 4)
        if best is None or score > best[0]:
            best = (score, candidate)
    assert best is not None
    return best[1], scores


OUTER_FOLDS = 5
"""Speaker-grouped outer folds of the evaluation (0: leave one speaker out)."""


def _outer_fold(args: tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, tuple[Candidate, ...],
                            int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, str, dict[str, float]]:
    feats, y, groups, test, grid, members = args
    train_rows, test_rows = np.flatnonzero(~test), np.flatnonzero(test)
    candidate, scores = select(feats, y, groups, train_rows, grid) if len(grid) > 1 else (grid[0], {})
    x, yy, syn = _training_rows(feats, y, train_rows, candidate.augment, groups)
    pred = predict_arrays(fit(x, yy, candidate, members, syn), feats["mulaw"][test_rows]).argmax(axis=1)
    # OOD: statistics of this fold's human training clips, thresholds calibrated on its inner folds
    columns = candidate.columns(feats["mulaw"].shape[1])
    human_train = train_rows[~synthetic_mask(groups[train_rows])]
    ood = calibrate_ood(feats, groups, train_rows, columns, INNER_FOLDS)
    distances = ood_distances(fit_ood(feats, human_train, columns), feats["mulaw"][test_rows], columns)
    weights = voice_weight(distances, ood["low"], ood["high"])
    return pred, distances, weights, candidate.name(), scores


def nested_cross_validate(feats: dict[str, np.ndarray], y: np.ndarray, groups: np.ndarray,
                          grid: tuple[Candidate, ...], members: int, jobs: int = 1,
                          outer_folds: int = OUTER_FOLDS) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    """Speaker-independent predictions of every clip: in each outer fold (whole speakers held out) the
    hyperparameters are chosen on speaker-grouped inner folds of the other speakers alone, so no
    figure is tuned on the speakers it is measured on."""
    from concurrent.futures import ProcessPoolExecutor

    folds = ([groups == g for g in np.unique(groups) if not is_synthetic(g)] if outer_folds <= 0
             else speaker_folds(groups, outer_folds))
    pred = np.zeros_like(y)
    weight = np.ones(y.size)
    chosen: dict[str, str] = {}
    tasks = [(feats, y, groups, test, grid, members) for test in folds]
    with ProcessPoolExecutor(max(1, jobs)) as pool:
        for test, (fold_pred, _, fold_weight, name, scores) in zip(folds, pool.map(_outer_fold, tasks),
                                                                   strict=True):
            pred[test], weight[test] = fold_pred, fold_weight
            held = ",".join(sorted(np.unique(groups[test])))
            chosen[held] = name
            print(f"  held out {held}: chose {name}, UA {unweighted_accuracy(y[test], fold_pred):.3f}, "
                  f"voice abstains on {(fold_weight == 0).mean():.1%} (inner UA {scores})", flush=True)
    return pred, weight, chosen


def report(y: np.ndarray, pred: np.ndarray, corpora: np.ndarray) -> dict[str, Any]:
    figures: dict[str, Any] = {"ua_4class": round(unweighted_accuracy(y, pred), 4),
                               "anger_vs_rest_ba": round(anger_balanced_accuracy(y, pred), 4),
                               "recall_per_class": {c: round(float((pred[y == i] == i).mean()), 4)
                                                    for i, c in enumerate(CLASSES) if (y == i).any()},
                               "confusion": [[int(((y == i) & (pred == j)).sum()) for j in range(len(CLASSES))]
                                             for i in range(len(CLASSES))]}
    for corpus in np.unique(corpora):
        sel = corpora == corpus
        figures[f"ua_4class_{corpus}"] = round(unweighted_accuracy(y[sel], pred[sel]), 4)
        figures[f"anger_vs_rest_ba_{corpus}"] = round(anger_balanced_accuracy(y[sel], pred[sel]), 4)
        figures[f"recall_per_class_{corpus}"] = {c: round(float((pred[sel & (y == i)] == i).mean()), 4)
                                                 for i, c in enumerate(CLASSES) if (sel & (y == i)).any()}
    return figures


def cost_ms_per_s(clips: list[Clip], model: AcousticEmotionModel, limit: int = 40) -> float:
    """Features + inference time per second of 8 kHz G.711 audio, one thread."""
    from telephony.audio.audiofile import read_audio

    audio = []
    for clip in clips[:: max(1, len(clips) // limit)][:limit]:
        read = read_audio(clip.path)
        audio.append(telephone_band(read.mono(), read.sample_rate_hz))
    model.predict(audio[0], TELEPHONE_RATE_HZ)
    t0 = time.perf_counter()
    for a in audio:
        model.predict(a, TELEPHONE_RATE_HZ)
    seconds = sum(len(a) for a in audio) / TELEPHONE_RATE_HZ
    return (time.perf_counter() - t0) * 1000.0 / seconds


def train(clips: list[Clip], out_dir: Path, work_dir: Path, members: int = MEMBERS,
          evaluate: bool = True, jobs: int | None = None, held_out: list[str] | None = None,
          grid: tuple[Candidate, ...] = GRID, outer_folds: int = OUTER_FOLDS) -> dict[str, Any]:
    _sklearn()
    t0 = time.perf_counter()
    synthetic = [c for c in clips if is_synthetic(c.group)]
    paths = [c.path for c in clips]
    variants = sorted({"mulaw", *(AUGMENT_VARIANTS if any(c.augment for c in grid) else ())})
    feats = {v: featurize(paths, work_dir, jobs=jobs, variant=v) for v in variants}
    y = np.array([CLASSES.index(c.label) for c in clips])
    groups = np.array([c.group for c in clips])
    corpora = np.array([c.corpus for c in clips])
    figures: dict[str, Any] = {"clips": len(clips),
                               "speakers": int(sum(not is_synthetic(g) for g in np.unique(groups))),
                               "held_out_speakers": held_out or [],
                               "class_counts": {c: int((y == i).sum()) for i, c in enumerate(CLASSES)},
                               "grid": [c.name() for c in grid],
                               "synthetic_neutral_clips": {g: sum(c.group == g for c in synthetic)
                                                           for g in sorted({c.group for c in synthetic})},
                               "synthetic_sentences": len(SENTENCES) if synthetic else 0}
    human = ~synthetic_mask(groups)
    if evaluate and np.unique(groups[human]).size >= 3:
        outer = "leave-one-speaker-out" if outer_folds <= 0 else f"{outer_folds} speaker-grouped folds"
        print(f"nested evaluation over {np.unique(groups[human]).size} human speakers ({outer}), "
              f"hyperparameters chosen on {INNER_FOLDS} inner speaker folds among {len(grid)} candidates ...",
              flush=True)
        pred, weight, chosen = nested_cross_validate(feats, y, groups, grid, members, jobs=min(jobs or 2, 2),
                                                     outer_folds=outer_folds)
        figures["evaluation"] = (f"nested: outer {outer} (whole speakers held out, every clip predicted once); "
                                 f"hyperparameters chosen in each outer fold on {INNER_FOLDS} speaker-grouped "
                                 "folds of its training speakers; test clips 8 kHz G.711 mu-law"
                                 + ("; synthetic-voice clips in every training set, never tested" if synthetic
                                    else ""))
        figures.update(report(y[human], pred[human], corpora[human]))
        figures["ood_heldout"] = {"abstained": round(float((weight[human] == 0).mean()), 4),
                                  "down_weighted": round(float((weight[human] < 1).mean()), 4),
                                  "mean_weight": round(float(weight[human].mean()), 4),
                                  "ua_4class_voice_kept": round(unweighted_accuracy(
                                      y[human & (weight > 0)], pred[human & (weight > 0)]), 4)}
        figures["chosen_per_fold"] = chosen
    candidate, scores = select(feats, y, groups, np.arange(len(y)), grid) if len(grid) > 1 else (grid[0], {})
    figures["chosen"] = candidate.name()
    figures["selection_scores"] = scores
    print(f"shipped hyperparameters (chosen on {INNER_FOLDS} speaker folds of all clips): {candidate.name()}")
    sources = sorted({c.corpus for c in clips})
    x, yy, syn = _training_rows(feats, y, np.arange(len(y)), candidate.augment, groups)
    arrays = fit(x, yy, candidate, members, syn)
    columns = candidate.columns(feats["mulaw"].shape[1])
    arrays.update(fit_ood(feats, np.flatnonzero(human), columns))
    ood = calibrate_ood(feats, groups, np.arange(len(y)), columns, OOD_FOLDS)
    print(f"OOD thresholds (held-out speakers' distance percentiles): low {ood['low']:.3f}, high {ood['high']:.3f}")
    _write(out_dir, arrays, _meta(members, candidate, figures, sources, ood))
    model = AcousticEmotionModel(out_dir)
    figures["ms_per_audio_s"] = round(cost_ms_per_s(clips, model), 2)
    figures["train_s"] = round(time.perf_counter() - t0, 1)
    _write(out_dir, arrays, _meta(members, candidate, figures, sources, ood))
    return figures


def cmd_train_acoustic(args: Any) -> int:
    clips: list[Clip] = []
    if not args.csv_only:
        clips += load_shared(Path(args.data))
    if args.csv:
        clips += load_csv(Path(args.csv))
    held_out = {f"ravdess-{int(a):02d}" if a.isdigit() else a for a in (args.hold_out or "").split(",") if a}
    clips = [c for c in clips if c.group not in held_out]
    if not clips:
        raise IvrError("no training clips: give --data and/or --csv")
    if not getattr(args, "no_synthetic", False):
        clips += synthetic_clips(Path(args.work))
    out_dir = Path(args.out) if args.out else default_model_dir()
    grid = {"new": GRID, "old": OLD_GRID}[getattr(args, "grid", "new") or "new"]
    figures = train(clips, out_dir, Path(args.work), members=args.members, evaluate=not args.no_eval,
                    jobs=args.jobs, held_out=sorted(held_out), grid=grid,
                    outer_folds=getattr(args, "outer_folds", OUTER_FOLDS))
    print(f"{figures['clips']} clips, {figures['speakers']} speakers (synthetic neutral voices: "
          f"{figures['synthetic_neutral_clips'] or 'none'}), classes {figures['class_counts']}")
    if "ua_4class" in figures:
        print(f"speaker-independent (nested), 8 kHz G.711: 4-class UA {figures['ua_4class']:.3f}, "
              f"anger-vs-rest BA {figures['anger_vs_rest_ba']:.3f}")
        prefixes = ("ua_4class_", "anger_vs_rest_ba_", "recall_per_class_")
        for key in sorted(k for k in figures if k.startswith(prefixes)):
            print(f"  {key}: {figures[key]}")
        print(f"  recall per class: {figures['recall_per_class']}")
        print(f"  held-out human clips with the voice out of distribution: {figures['ood_heldout']}")
    print(f"cost: {figures['ms_per_audio_s']:.1f} ms per second of audio (features + model, one thread)")
    print(f"model written to {out_dir}/acoustic-emotion.json and acoustic-emotion.npz")
    return 0
