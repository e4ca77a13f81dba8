"""`ivr train intents FILE [--out DIR] [--eval TEST.csv] [--backend tfidf|embed|ensemble]`: train,
calibrate, save and print figures. `ivr bench-intents TEST.csv [--model DIR]`: accuracy, macro-F1 and
per-utterance latency of a saved model (a table and JSON)."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from dialog.nlu.embed import DEFAULT_RUNTIME, ENCODER_ENV, INSTALL_HINT, RUNTIMES
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

    bench = sub.add_parser("bench-intents", help="accuracy, macro-F1 and per-utterance latency of a saved "
                                                 "intent model on a test CSV: a table and JSON")
    bench.add_argument("file", help="test CSV with a header: text,intent (or text,category)")
    bench.add_argument("--model", help="model directory (default: the shipped bank model)")
    bench.add_argument("--backend", choices=BACKENDS, help="tfidf leaves a sentence-vector head unused")
    bench.add_argument("--encoder", choices=RUNTIMES,
                       help=f"sentence encoder runtime (default: ${ENCODER_ENV}, else {DEFAULT_RUNTIME})")
    bench.add_argument("--json", dest="json_out", help="write the figures as JSON here")
    bench.set_defaults(func=cmd_bench_intents)


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
                            "oos_threshold": round(model.embed.oos_threshold, 4), "c": config.embed_c,
                            "encoder": getattr(model.encoder, "runtime", None)}
    if args.eval_file:
        test = read_examples(args.eval_file)
        figures["test"] = evaluate(model, test)
        figures["test_asr_style"] = evaluate(model, test, normalize=True)
        print_eval_table({"test": figures["test"], "test, ASR-style text": figures["test_asr_style"]})
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


def cmd_bench_intents(args: argparse.Namespace) -> int:
    from dialog.nlu.data import read_examples
    from dialog.nlu.model import IntentModel
    from dialog.nlu.train import evaluate

    before = os.environ.get(ENCODER_ENV)
    if args.encoder:  # read when the process's shared encoder is first loaded
        os.environ[ENCODER_ENV] = args.encoder
    try:
        started = time.perf_counter()
        model = IntentModel.load(args.model, backend=args.backend)
        load_s = time.perf_counter() - started
    finally:
        if before is None:
            os.environ.pop(ENCODER_ENV, None)
        else:
            os.environ[ENCODER_ENV] = before
    test = read_examples(args.file)
    figures: dict[str, Any] = {"model": str(args.model or "shipped"), "load_s": round(load_s, 2),
                               "test": evaluate(model, test),
                               "test_asr_style": evaluate(model, test, normalize=True)}
    print(f"model {figures['model']} loaded in {load_s:.2f} s (the sentence encoder included)")
    print_eval_table({"test": figures["test"], "test, ASR-style text": figures["test_asr_style"]})
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0


def print_eval_table(rows: dict[str, dict[str, Any]]) -> None:
    """Accuracy, macro-F1 and the latency of `predict` (one utterance at a time, one thread; wall and
    thread CPU milliseconds) of each evaluation, with the 1-minute load average while it ran."""
    first = next(iter(rows.values()))
    print(f"backend {first['backend']}, encoder {first.get('encoder') or '-'}, CPUs {first.get('cpus', '?')}; "
          "latency of predict per utterance in ms (one at a time, one thread)")
    print(f"{'':24}{'n':>6}{'accuracy':>10}{'macro-F1':>10}{'wall p50':>10}{'wall p95':>10}{'wall mean':>10}"
          f"{'CPU p50':>10}{'CPU p95':>10}{'CPU mean':>10}{'load 1 min':>12}")
    for name, m in rows.items():
        load = "-".join(f"{v:.1f}" for v in m.get("load_avg_1min", []) if v is not None) or "?"
        print(f"{name:24}{m['n']:>6}{m['accuracy']:>10.4f}{m['macro_f1']:>10.4f}{m['latency_ms_p50']:>10.2f}"
              f"{m['latency_ms_p95']:>10.2f}{m['latency_ms_mean']:>10.2f}{m['cpu_ms_p50']:>10.2f}"
              f"{m['cpu_ms_p95']:>10.2f}{m['cpu_ms_mean']:>10.2f}{load:>12}", flush=True)
