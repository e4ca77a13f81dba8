"""`ivr train acoustic-emotion`: the voice emotion model, evaluated speaker-independently.

Data: RAVDESS (24 actors) + TESS (2 speakers) from --data, and/or the user's own labelled calls from
--csv (path, emotion, speaker). Every clip goes through the telephone band (8 kHz, G.711 mu-law)
before its features are taken; features are cached under --work.

Evaluation: leave-one-speaker-out (each RAVDESS actor and each TESS speaker held out whole in turn),
predictions pooled over the folds. Figures: 4-class unweighted accuracy (mean per-class recall) and
anger-vs-rest balanced accuracy, per corpus too, plus the cost in ms per second of audio.
The shipped model is then trained on all clips. Needs scikit-learn (training only).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from dialog.emotion.acoustic import AcousticEmotionModel
from dialog.emotion.corpus import CLASSES, Clip, load_csv, load_shared
from dialog.emotion.featcache import FEATURE_VERSION, TELEPHONE_RATE_HZ, featurize, telephone_band
from dialog.emotion.text import default_model_dir
from ivr.errors import IvrError

HIDDEN_UNITS = 64
ALPHA = 3.0
"""L2 penalty of the MLPs: strong, since 26 speakers are few (chosen on the same speaker folds)."""
MEMBERS = 5
"""MLPs with different seeds whose probabilities are averaged."""


def _sklearn() -> Any:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise IvrError("training needs scikit-learn: pip install scikit-learn") from None


def fit(x: np.ndarray, y: np.ndarray, members: int = MEMBERS) -> dict[str, Any]:
    """Standardisation + `members` MLPs, as plain arrays."""
    from sklearn.neural_network import MLPClassifier

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-6] = 1.0
    z = (x - mean) / scale
    arrays: dict[str, Any] = {"mean": mean.astype(np.float32), "scale": scale.astype(np.float32)}
    for m in range(members):
        mlp = MLPClassifier((HIDDEN_UNITS,), alpha=ALPHA, max_iter=800, random_state=m).fit(z, y)
        if list(mlp.classes_) != list(range(len(CLASSES))):
            raise IvrError("every class needs training clips: " + ", ".join(CLASSES))
        for i, (w, b) in enumerate(zip(mlp.coefs_, mlp.intercepts_, strict=True)):
            arrays[f"m{m}_w{i}"], arrays[f"m{m}_b{i}"] = w.astype(np.float32), b.astype(np.float32)
    return arrays


def _write(out_dir: Path, arrays: dict[str, Any], meta: dict[str, Any]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_dir / "acoustic-emotion.npz", **arrays)
    (out_dir / "acoustic-emotion.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")


def _meta(members: int, figures: dict[str, Any], sources: list[str]) -> dict[str, Any]:
    return {"model": "telephone-band features + MLP ensemble", "labels": list(CLASSES), "members": members,
            "layers": 2, "hidden_units": HIDDEN_UNITS, "alpha": ALPHA, "feature_version": FEATURE_VERSION,
            "sample_rate_hz": TELEPHONE_RATE_HZ, "data": sources,
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


def cross_validate(x: np.ndarray, y: np.ndarray, groups: np.ndarray, members: int,
                   tmp_dir: Path) -> np.ndarray:
    """Leave-one-speaker-out predictions, made by the exported model's own inference code."""
    pred = np.zeros_like(y)
    for group in np.unique(groups):
        test = groups == group
        _write(tmp_dir, fit(x[~test], y[~test], members), _meta(members, {}, []))
        pred[test] = AcousticEmotionModel(tmp_dir).probabilities_from_features(x[test]).argmax(axis=1)
    return pred


def cost_ms_per_s(clips: list[Clip], model: AcousticEmotionModel, limit: int = 40) -> float:
    """Features + inference time per second of 8 kHz G.711 audio, one thread."""
    from ivr.audiofile import read_audio

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
          evaluate: bool = True, jobs: int | None = None, held_out: list[str] | None = None) -> dict[str, Any]:
    _sklearn()
    t0 = time.perf_counter()
    x = featurize([c.path for c in clips], work_dir, jobs=jobs)
    y = np.array([CLASSES.index(c.label) for c in clips])
    groups = np.array([c.group for c in clips])
    corpora = np.array([c.corpus for c in clips])
    figures: dict[str, Any] = {"clips": len(clips), "speakers": int(np.unique(groups).size),
                               "held_out_speakers": held_out or [],
                               "class_counts": {c: int((y == i).sum()) for i, c in enumerate(CLASSES)}}
    if evaluate and np.unique(groups).size >= 2:
        print(f"leave-one-speaker-out over {np.unique(groups).size} speakers ...", flush=True)
        pred = cross_validate(x, y, groups, members, work_dir / "cv-model")
        figures["ua_4class"] = round(unweighted_accuracy(y, pred), 4)
        figures["anger_vs_rest_ba"] = round(anger_balanced_accuracy(y, pred), 4)
        figures["recall_per_class"] = {c: round(float((pred[y == i] == i).mean()), 4)
                                       for i, c in enumerate(CLASSES) if (y == i).any()}
        figures["confusion"] = [[int(((y == i) & (pred == j)).sum()) for j in range(len(CLASSES))]
                                for i in range(len(CLASSES))]
        for corpus in np.unique(corpora):
            sel = corpora == corpus
            figures[f"ua_4class_{corpus}"] = round(unweighted_accuracy(y[sel], pred[sel]), 4)
            figures[f"anger_vs_rest_ba_{corpus}"] = round(anger_balanced_accuracy(y[sel], pred[sel]), 4)
    sources = sorted({c.corpus for c in clips})
    _write(out_dir, fit(x, y, members), _meta(members, figures, sources))
    model = AcousticEmotionModel(out_dir)
    figures["ms_per_audio_s"] = round(cost_ms_per_s(clips, model), 2)
    figures["train_s"] = round(time.perf_counter() - t0, 1)
    _write(out_dir, fit(x, y, members), _meta(members, figures, sources))
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
    out_dir = Path(args.out) if args.out else default_model_dir()
    figures = train(clips, out_dir, Path(args.work), members=args.members, evaluate=not args.no_eval,
                    jobs=args.jobs, held_out=sorted(held_out))
    print(f"{figures['clips']} clips, {figures['speakers']} speakers, classes {figures['class_counts']}")
    if "ua_4class" in figures:
        print(f"speaker-independent (leave-one-speaker-out), 8 kHz G.711: 4-class UA {figures['ua_4class']:.3f}, "
              f"anger-vs-rest BA {figures['anger_vs_rest_ba']:.3f}")
        for key in sorted(k for k in figures if k.startswith(("ua_4class_", "anger_vs_rest_ba_"))):
            print(f"  {key}: {figures[key]:.3f}")
        print(f"  recall per class: {figures['recall_per_class']}")
    print(f"cost: {figures['ms_per_audio_s']:.1f} ms per second of audio (features + model, one thread)")
    print(f"model written to {out_dir}/acoustic-emotion.json and acoustic-emotion.npz")
    return 0
