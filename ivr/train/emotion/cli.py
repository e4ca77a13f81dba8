"""`ivr train text-emotion`, `ivr train acoustic-emotion` and `ivr report failures`."""

from __future__ import annotations

import argparse
import os
from typing import Any

from ivr.cligroup import subcommand_group

SHARED = os.environ.get("IVR_SHARED_DIR", "../shared")


def register(sub: Any) -> None:
    models = subcommand_group(sub, "train", "train a model from labelled data", "model")
    text = models.add_parser("text-emotion", help="text emotion classifier on GoEmotions (Ekman labels)")
    text.add_argument("--data", default=f"{SHARED}/data/text/goemotions/ekman",
                      help="directory with train.tsv, dev.tsv, test.tsv, labels.txt")
    text.add_argument("--out", help="model directory (default: the shipped models/emotion)")
    text.set_defaults(func=_train_text)

    voice = models.add_parser("acoustic-emotion",
                              help="voice emotion model (neutral/happy/sad/angry) at 8 kHz G.711")
    voice.add_argument("--data", default=f"{SHARED}/data/emotion",
                       help="directory holding ravdess/ and tess/ with their manifest.csv")
    voice.add_argument("--csv", help="your own labelled clips: CSV with path,emotion[,speaker]")
    voice.add_argument("--csv-only", action="store_true", help="train on --csv alone, without --data")
    voice.add_argument("--out", help="model directory (default: the shipped models/emotion)")
    voice.add_argument("--work", default=".cache/emotion", help="where extracted features are cached")
    voice.add_argument("--members", type=int, default=5, help="MLPs averaged in the model")
    voice.add_argument("--jobs", type=int, help="feature extraction processes (default: CPU count)")
    voice.add_argument("--hold-out", default="3",
                       help="speakers left out of training and evaluation altogether, comma-separated "
                            "(RAVDESS actor numbers or group names); default 3: RAVDESS actor 03, whose "
                            "clips the end-to-end tests play as callers. '' keeps everyone")
    voice.add_argument("--no-synthetic", action="store_true",
                       help="leave out the synthetic-voice neutral clips (ivr/train/emotion/synthetic.py)")
    voice.add_argument("--no-eval", action="store_true", help="skip the speaker-independent evaluation")
    voice.add_argument("--outer-folds", type=int, default=5,
                       help="speaker-grouped outer folds of the nested evaluation (0: leave one speaker out)")
    voice.add_argument("--grid", choices=("new", "old"), default="new",
                       help="hyperparameter grid: new (v1/v2 features, augmented) or old (the first recipe)")
    voice.set_defaults(func=_train_acoustic)

    reports = subcommand_group(sub, "report", "reports over stored calls", "report")
    failures = reports.add_parser("failures", help="no-match/out-of-scope utterances grouped, escalation "
                                                   "reasons, FAQ misses: material for retraining")
    failures.add_argument("--calls", default="calls", help="directory of stored calls (CALL_ID/events.jsonl)")
    failures.add_argument("--since", help="only calls started on or after this date (YYYY-MM-DD)")
    failures.add_argument("--threshold", type=float, default=0.35,
                          help="cosine similarity that puts two utterances in one group")
    failures.add_argument("--json", dest="json_out", help="also write the report as JSON here")
    failures.set_defaults(func=_report_failures)


def _train_text(args: argparse.Namespace) -> int:
    from ivr.train.emotion.train_text import cmd_train_text

    return cmd_train_text(args)


def _train_acoustic(args: argparse.Namespace) -> int:
    from ivr.train.emotion.train_acoustic import cmd_train_acoustic

    return cmd_train_acoustic(args)


def _report_failures(args: argparse.Namespace) -> int:
    from ivr.report.failures import cmd_report_failures

    return cmd_report_failures(args)
