"""What `ivr train intents` trains on and how, from its arguments: shared by the plain command and the
learning loop's retraining (ivr.learn.cli), so neither CLI module imports the other's."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ivr.errors import IvrError
from ivr.train.nlu.train import TrainConfig


def base_rows(args: argparse.Namespace) -> list[Any]:
    """The training rows FILE, --extra/--map and --faq give."""
    from ivr.train.nlu.data import faq_examples, read_examples, relabel

    rows = read_examples(args.file)
    if args.extra:
        if not args.map_file:
            raise IvrError("--extra needs --map (a JSON object {its label: intent})")
        mapping = json.loads(Path(args.map_file).read_text(encoding="utf-8"))
        rows += relabel(read_examples(args.extra), mapping, args.oos_per_label,
                        max_per_intent=args.max_per_intent)
    if args.faq_file:
        rows += faq_examples(args.faq_file)
    return rows


def train_config(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(svm_c=args.svm_c, lr_c=args.lr_c, augment=args.augment,
                       max_features=args.max_features, backend=args.backend, embed_c=args.embed_c)
