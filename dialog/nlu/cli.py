"""`ivr train intents FILE [--out DIR] [--eval TEST.csv] [--backend tfidf|embed|ensemble]`: train,
calibrate, save and print figures."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from dialog.nlu.embed import INSTALL_HINT
from dialog.nlu.model import BACKENDS
from dialog.nlu.train import TrainConfig
from ivr.errors import IvrError


def register(sub: Any) -> None:
    """Adds `ivr train` (with its `intents` model) to the `ivr` command's subparsers."""
    train = sub.add_parser("train", help="train a model from labelled data")
    models = train.add_subparsers(dest="model", required=True)
    intents = models.add_parser("intents", help="the intent classifier from a CSV of text,intent rows")
    intents.add_argument("file", help="CSV with a header: text,intent (or text,category)")
    intents.add_argument("--out", help="model directory to write (intents.npz + intents.json)")
    intents.add_argument("--eval", dest="eval_file", help="a test CSV: accuracy, macro-F1, latency")
    intents.add_argument("--extra", help="another labelled CSV whose labels --map turns into these intents")
    intents.add_argument("--map", dest="map_file",
                         help="JSON {label: intent} for --extra; its unmapped labels become 'oos'")
    intents.add_argument("--oos-per-label", type=int, default=20,
                         help="rows kept of each unmapped --extra label as out-of-scope examples")
    intents.add_argument("--oos-holdout", type=int, default=0,
                         help="also report out-of-scope figures with this many intents held out as unseen")
    intents.add_argument("--svm-c", type=float, default=1.0)
    intents.add_argument("--lr-c", type=float, default=0.0,
                         help="blend in a logistic regression with this C (0: SVM only)")
    intents.add_argument("--augment", type=int, default=1, help="ASR-noise copies per training row")
    intents.add_argument("--max-features", type=int, default=0, help="prune to this many features")
    intents.add_argument("--backend", choices=BACKENDS, default="tfidf",
                         help="tfidf: n-gram model alone; embed: a head over all-MiniLM-L6-v2 sentence vectors "
                              f"(needs `{INSTALL_HINT}`); ensemble: both, blended")
    intents.add_argument("--embed-c", type=float, default=TrainConfig.embed_c,
                         help="inverse regularization of the sentence-vector head")
    intents.add_argument("--json", dest="json_out", help="write the figures as JSON here")
    intents.set_defaults(func=cmd_train_intents)


def cmd_train_intents(args: argparse.Namespace) -> int:
    from dialog.nlu.data import read_examples, relabel
    from dialog.nlu.train import VectorCache, evaluate, oos_study, train

    rows = read_examples(args.file)
    if args.extra:
        if not args.map_file:
            raise IvrError("--extra needs --map (a JSON object {its label: intent})")
        mapping = json.loads(Path(args.map_file).read_text(encoding="utf-8"))
        rows += relabel(read_examples(args.extra), mapping, args.oos_per_label)
    config = TrainConfig(svm_c=args.svm_c, lr_c=args.lr_c, augment=args.augment,
                         max_features=args.max_features, backend=args.backend, embed_c=args.embed_c)
    intents = sorted({r.intent for r in rows})
    print(f"training on {len(rows)} rows, {len(intents)} intents, backend {config.backend}", flush=True)
    vectors = VectorCache() if config.backend != "tfidf" else None
    model = train(rows, config, vectors)
    figures: dict[str, Any] = {"rows": len(rows), "intents": len(intents), "backend": model.backend,
                               "features": len(model.vocab), "temperature": round(model.temperature, 4),
                               "oos_threshold": round(model.oos_threshold, 4),
                               "train_s": model.info.get("train_s")}
    if model.embed is not None:
        figures["embed"] = {"temperature": round(model.embed.temperature, 4), "blend": model.embed.blend,
                            "oos_threshold": round(model.embed.oos_threshold, 4), "c": config.embed_c}
    if args.eval_file:
        test = read_examples(args.eval_file)
        figures["test"] = evaluate(model, test)
        figures["test_asr_style"] = evaluate(model, test, normalize=True)
        _print_eval("test", figures["test"])
        _print_eval("test, ASR-style text (lower case, no punctuation)", figures["test_asr_style"])
        if args.oos_holdout:
            figures["oos"] = oos_study(rows, test, args.oos_holdout, config, vectors)
            o = figures["oos"]
            print(f"out of scope ({o['unseen_intents']} intents unseen, threshold {o['threshold']:.3f}): "
                  f"recall {o['oos_recall']:.3f}, precision {o['oos_precision']:.3f}; in-scope accuracy "
                  f"with rejection {o['in_scope_accuracy_with_rejection']:.3f}, "
                  f"in-scope rejected {o['in_scope_rejected']:.3f}")
    model.info["figures"] = figures
    if args.out:
        model.save(args.out)
        sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.2f} MB" for p in sorted(Path(args.out).iterdir())
                          if p.name.startswith("intents"))
        print(f"model written to {args.out}/ ({sizes})")
    print(f"features {figures['features']}, temperature {figures['temperature']}, "
          f"out-of-scope threshold {figures['oos_threshold']}, trained in {figures['train_s']} s")
    if "embed" in figures:
        e = figures["embed"]
        print(f"sentence-vector head: temperature {e['temperature']}, blend {e['blend']} "
              f"(share of the head's probabilities), out-of-scope threshold {e['oos_threshold']}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0


def _print_eval(name: str, m: dict[str, float]) -> None:
    print(f"{name}: n={m['n']} accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}, "
          f"latency {m['latency_ms_p50']:.2f} ms p50 / {m['latency_ms_mean']:.2f} ms mean / "
          f"{m['latency_ms_p95']:.2f} ms p95 per utterance (one thread)", flush=True)
