"""The learning loop's commands: `ivr train intents FILE --from-store` (retrain with the store's labels),
`ivr labels export|demo` and `ivr models list|accept|rollback`."""

from __future__ import annotations

import argparse
import csv
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from ivr.errors import IvrError
from ivr.learn.benchmarks import DEFAULT_BENCHMARKS

MODELS_DIR_HELP = "model versions (default $IVR_MODELS_DIR, else models/intents under the store's data directory)"


def add_retrain_args(p: argparse.ArgumentParser) -> None:
    """`ivr train intents` options for retraining with the store's labels."""
    from ivr.learn.retrain import RetrainSettings

    d = RetrainSettings()
    p.add_argument("--from-store", nargs="?", const="", metavar="DB_URL",
                   help="add the labelled caller turns of the call store (this URL, else $IVR_DB_URL or the default "
                        "store) to FILE's rows, compare with the model in use and write a candidate version to "
                        "--models-dir (an admin accepts it: `ivr models accept`)")
    p.add_argument("--models-dir", help=MODELS_DIR_HELP)
    p.add_argument("--data-dir", help="the store's data directory (default $IVR_DATA_DIR or calls/store)")
    p.add_argument("--holdout", type=int, default=d.holdout_percent, metavar="PERCENT",
                   help=f"labelled turns held back to compare the models on (default {d.holdout_percent})")
    p.add_argument("--label-copies", type=int, default=d.label_copies,
                   help=f"copies of each labelled turn among the training rows (default {d.label_copies})")
    p.add_argument("--tolerance", type=float, default=d.tolerance,
                   help=f"share of right turns a benchmark may lose before the candidate is refused "
                        f"(default {d.tolerance})")
    p.add_argument("--benchmark", action="append", metavar="CSV",
                   help="a text,label CSV to compare the models on (repeatable; default models/intents/eval/test.csv "
                        "and dev.csv)")
    p.add_argument("--flow", dest="retrain_flow", help="the flow the turns are judged in (default: the bank flow)")


def cmd_retrain(args: argparse.Namespace) -> int:
    from dialog.flow import load_default_flow, load_flow
    from dialog.machine import Machine
    from ivr.learn.retrain import RetrainInput, RetrainSettings, figures_table, retrain
    from ivr.learn.versions import ModelVersions, default_models_dir
    from ivr.store import Store
    from ivr.store.labels import training_rows
    from ivr.train.nlu.data import read_examples
    from ivr.train.nlu.recipe import base_rows, train_config

    if not 0 <= args.holdout < 100:
        raise IvrError("--holdout is a percentage from 0 to 99")
    with Store.open(args.from_store or None, args.data_dir) as store:
        labelled = training_rows(store)
        data_dir = store.config.data_dir
    if not labelled:
        raise IvrError("the store has no labelled turns: label caller turns on a call's page first")
    benchmarks = {Path(b).name: read_examples(b) for b in (args.benchmark or DEFAULT_BENCHMARKS)}
    machine = Machine(load_flow(args.retrain_flow) if args.retrain_flow else load_default_flow())
    versions = ModelVersions(default_models_dir(args.models_dir, data_dir))
    settings = RetrainSettings(args.holdout, args.label_copies, args.tolerance, train_config(args))
    base = base_rows(args)
    print(f"retraining on {len(base)} base rows and {len(labelled)} labelled turns "
          f"(backend {settings.train.backend})", flush=True)
    version = retrain(RetrainInput(base, labelled, benchmarks, machine, Path(args.faq_file) if args.faq_file else None),
                      versions, settings, by=_user())
    print("\n".join(figures_table(version)))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"version": version.name, **version.info}, indent=1, default=str),
                                       encoding="utf-8")
    print(f"written to {version.path}; " + (f"accept it with `ivr models accept {version.name}`"
                                           if version.status != "refused" else "refused: it stays unused"))
    return 0


def _user() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def register(sub: Any) -> None:
    labels = sub.add_parser("labels", help="supervisors' labels of caller turns: export them as training data, "
                            "or show the learning loop on a demo store")
    lsub = labels.add_subparsers(dest="labels_command", required=True)
    export = lsub.add_parser("export", help="labelled caller turns as a text,intent CSV (for `ivr train intents`)")
    export.add_argument("--out", help="CSV file to write (default: standard output)")
    export.add_argument("--db", help="database URL (default $IVR_DB_URL or sqlite:///calls/ivr.db)")
    export.add_argument("--holdout", type=int, default=25, metavar="PERCENT",
                        help="mark this share of turns held-back in the split column (as --from-store does)")
    export.set_defaults(func=cmd_export)
    demo = lsub.add_parser("demo", help="the learning loop end to end on a fresh store: a family of phrasings the "
                           "model misses, labels on stored calls, a retrained model, figures")
    demo.add_argument("--work", default="learning-loop-demo", help="folder for the demo's store and model versions")
    demo.add_argument("--backend", choices=("tfidf", "ensemble"), default="ensemble",
                      help="ensemble: the shipped recipe (Banking77 from the shared data when present; minutes); "
                           "tfidf: the bank's own rows, seconds")
    demo.add_argument("--label-copies", type=int, default=3, help="copies of each labelled turn among the "
                      "training rows (default 3, as `ivr train intents --from-store`)")
    demo.add_argument("--json", dest="json_out", help="write the figures as JSON here")
    demo.set_defaults(func=cmd_demo)

    models = sub.add_parser("models", help="intent model versions: list them, accept a candidate, roll back")
    msub = models.add_subparsers(dest="models_command", required=True)
    show = msub.add_parser("list", help="the versions, newest first, with their figures")
    accept = msub.add_parser("accept", help="put a candidate version in use (ivr serve picks it up for new calls)")
    accept.add_argument("version")
    accept.add_argument("--force", action="store_true", help="also a version refused at training")
    back = msub.add_parser("rollback", help="back to the version in use before (or to VERSION, or `shipped`)")
    back.add_argument("version", nargs="?")
    for p, func in ((show, cmd_models_list), (accept, cmd_models_accept), (back, cmd_models_rollback)):
        p.add_argument("--models-dir", help=MODELS_DIR_HELP)
        p.set_defaults(func=func)


def cmd_export(args: argparse.Namespace) -> int:
    from ivr.store import Store
    from ivr.store.labels import training_rows

    with Store.open(args.db) as store:
        rows = training_rows(store)
    out = open(args.out, "w", newline="", encoding="utf-8") if args.out else sys.stdout  # noqa: SIM115
    try:
        writer = csv.writer(out)
        writer.writerow(["text", "intent", "call_id", "turn", "split", "labelled_by", "labelled_at"])
        for r in rows:
            split = "held-back" if r.bucket() < args.holdout else "train"
            writer.writerow([r.text, r.target, r.call_id, r.turn_seq, split, r.user_name,
                             r.created_at.isoformat(timespec="seconds")])
    finally:
        if args.out:
            out.close()
    if args.out:
        print(f"{len(rows)} labelled turns written to {args.out}", file=sys.stderr)
    return 0


def _versions(args: argparse.Namespace) -> Any:
    from ivr.learn.versions import ModelVersions, default_models_dir

    return ModelVersions(default_models_dir(args.models_dir))


def cmd_models_list(args: argparse.Namespace) -> int:
    from ivr.learn.retrain import figures_table

    versions = _versions(args)
    current = versions.current_name()
    print(f"model versions in {versions.root} (in use: {current})")
    for v in versions.all():
        mark = "*" if v.name == current else " "
        if v.path is None:
            print(f"{mark} shipped: the package's model")
            continue
        print(f"{mark} " + "\n  ".join(figures_table(v)) + f"\n  created {v.info.get('created_at')} by "
              f"{v.info.get('created_by')}")
    return 0


def cmd_models_accept(args: argparse.Namespace) -> int:
    v = _versions(args).accept(args.version, _user(), force=args.force)
    print(f"{v.name} is in use: ivr serve takes it for new calls (calls in progress finish on their model)")
    return 0


def cmd_models_rollback(args: argparse.Namespace) -> int:
    v = _versions(args).rollback(_user(), args.version)
    print(f"rolled back: {v.name} is in use for new calls")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ivr.learn.demo import run_demo

    run_demo(Path(args.work), args.backend, args.json_out, label_copies=args.label_copies)
    return 0
