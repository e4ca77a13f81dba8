"""A subcommand group that several modules add to (`ivr train intents`, `ivr train text-emotion`, ...)."""

from __future__ import annotations

import argparse
from typing import Any


def subcommand_group(sub: Any, name: str, help_text: str, dest: str) -> Any:
    """The subparsers of `ivr NAME`: created on first use, reused when another module made it already."""
    parser = sub.choices.get(name)
    if parser is None:
        parser = sub.add_parser(name, help=help_text)
        return parser.add_subparsers(dest=dest, required=True)
    for action in parser._actions:  # argparse keeps no public handle on a parser's subparsers
        if isinstance(action, argparse._SubParsersAction):
            return action
    return parser.add_subparsers(dest=dest, required=True)
