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

from dialog.nlu.embed import DEFAULT_RUNTIME, ENCODER_ENV, RUNTIMES
from dialog.nlu.model import BACKENDS
from ivr.train.nlu.recipe import base_rows, train_config
from ivr.train.nlu.train import TrainConfig
from models.encoder import INSTALL_HINT

CSV_HELP = "CSV with a header: text,intent (or text,category)"
MODEL_HELP = "intent model directory (default: the shipped bank model)"


def _command(sub: Any, name: str, help: str, file_help: str) -> argparse.ArgumentParser:
    """A subcommand that reads one labelled FILE."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help)
    parser.add_argument("file", help=file_help)
    return parser


def _json_then(parser: argparse.ArgumentParser, func: Any, what: str = "the figures") -> None:
    """The last option every subcommand has (--json) and the function that runs it."""
    parser.add_argument("--json", dest="json_out", help=f"write {what} as JSON here")
    parser.set_defaults(func=func)


def register(sub: Any) -> None:
    """Adds `ivr train` (with its `intents` model) to the `ivr` command's subparsers."""
    train = sub.add_parser("train", help="train a model from labelled data")
    models = train.add_subparsers(dest="model", required=True)
    intents = _command(models, "intents", "the intent classifier from a CSV of text,intent rows", CSV_HELP)
    intents.add_argument("--out", help="model directory to write (intents.npz + intents.json)")
    intents.add_argument("--eval", dest="eval_file", help="a test CSV: accuracy, macro-F1, latency")
    intents.add_argument("--extra", help="another labelled CSV whose labels --map turns into these intents")
    intents.add_argument("--map", dest="map_file",
                         help="JSON {label: intent} for --extra; its unmapped labels become 'oos'")
    intents.add_argument("--oos-per-label", type=int, default=20,
                         help="rows kept of each unmapped --extra label as out-of-scope examples")
    intents.add_argument("--max-per-intent", type=int, default=0,
                         help="at most this many --extra rows for each intent they map to (0: all)")
    intents.add_argument("--faq", dest="faq_file",
                         help="a FAQ YAML: each entry's question and paraphrases become rows labelled faq:<id>")
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
    from ivr.learn.cli import add_retrain_args

    add_retrain_args(intents)
    _json_then(intents, cmd_train_intents)

    bench = _command(sub, "bench-intents", "accuracy, macro-F1 and per-utterance latency of a saved intent model "
                     "on a test CSV: a table and JSON", f"test {CSV_HELP}")
    bench.add_argument("--model", help=MODEL_HELP)
    bench.add_argument("--backend", choices=BACKENDS, help="tfidf leaves a sentence-vector head unused")
    bench.add_argument("--encoder", choices=RUNTIMES,
                       help=f"sentence encoder runtime (default: ${ENCODER_ENV}, else {DEFAULT_RUNTIME})")
    _json_then(bench, cmd_bench_intents)

    turns = _command(sub, "eval-nlu", "what the bank flow does with single caller turns from a CSV of text,label "
                     "rows (ivr.train.nlu.turns_eval): right, confirmed, miss, wrong",
                     "CSV: text,label (a flow intent, faq:<id> or oos)")
    turns.add_argument("--flow", help="flow YAML (default: the bundled bank flow)")
    turns.add_argument("--model", help=MODEL_HELP)
    turns.add_argument("--faq", dest="faq_file", help="FAQ YAML (default: the bank flow's)")
    turns.add_argument("--asr-noise", type=int, default=0, help="score this many noisy copies of each turn")
    turns.add_argument("--map", dest="map_file",
                       help="JSON {label: intent} relabelling the file (Banking77: models/intents/banking77_map.json);"
                            " unmapped labels become oos, labels mapped to \"\" are left out")
    turns.add_argument("--show", choices=("none", "errors", "all"), default="errors",
                       help="print the turns that went wrong (default), every turn, or none")
    turns.add_argument("--tune", action="store_true",
                       help="also try the grid of understanding settings (ivr.train.nlu.turns_eval.GRID) and print "
                            "the cheapest; tune on a dev file, never on the test file")
    _json_then(turns, cmd_eval_nlu, "the figures and every turn")


def cmd_train_intents(args: argparse.Namespace) -> int:
    from ivr.train.nlu.data import read_examples
    from ivr.train.nlu.train import VectorCache, evaluate, oos_study, train

    if args.from_store is not None:
        from ivr.learn.cli import cmd_retrain

        return cmd_retrain(args)
    rows = base_rows(args)
    config = train_config(args)
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
    from dialog.nlu.model import IntentModel
    from ivr.train.nlu.data import read_examples
    from ivr.train.nlu.train import evaluate

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


def cmd_eval_nlu(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from dialog.flow import load_default_flow, load_flow
    from dialog.machine import Machine
    from dialog.nlu.understand import Nlu
    from ivr.train.nlu.data import read_examples
    from ivr.train.nlu.turns_eval import OUTCOMES, judge_rows, summarize, tune, understand_rows

    machine = Machine(load_flow(args.flow) if args.flow else load_default_flow())
    nlu = Nlu.load(args.model, args.faq_file)
    started = time.perf_counter()
    rows = read_examples(args.file)
    if args.map_file:
        from ivr.train.nlu.data import relabel

        rows = relabel(rows, json.loads(Path(args.map_file).read_text(encoding="utf-8")), oos_per_label=len(rows))
    understood = understand_rows(nlu, rows, asr_noise=args.asr_noise)
    results = judge_rows(nlu, machine, understood)
    per_turn_ms = (time.perf_counter() - started) * 1000 / max(len(results), 1)
    figures = summarize(results)
    for r in results:
        if args.show == "all" or (args.show == "errors" and r.outcome not in ("right",)):
            print(f"{r.outcome:10} {r.label:24} -> {r.got:24} {r.text}")
    print(f"{'':16}{'n':>6}" + "".join(f"{o:>11}" for o in OUTCOMES))
    for name, shares in figures.items():
        print(f"{name:16}{shares['n']:>6}" + "".join(f"{shares[o]:>11.3f}" for o in OUTCOMES))
    print(f"{per_turn_ms:.1f} ms per turn (NLU and dialog step)")
    if args.tune:
        for cost, settings in tune(nlu, machine, understood)[:10]:
            print(f"cost {cost:.4f}  " + "  ".join(f"{k} {v}" for k, v in settings.items()))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"figures": figures, "turns": [asdict(r) for r in results]},
                                                  indent=1), encoding="utf-8")
    return 0
