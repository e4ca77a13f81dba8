"""Text in, value out: the cases of tests/cases/text_functions.yaml, one test per [input, expected] line.

The functions: `normalize` (what choice matching compares), `meaning_part` (what a self-correcting caller
settled on) and `parse_digits` (a spoken or typed digit string, with "oh", "double", "triple", tens and
hundreds, filler words and homophones such as "for" and "to")."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from dialog.matching import normalize
from dialog.nlu.slots import parse_digits
from dialog.nlu.text import meaning_part

FUNCTIONS: dict[str, Callable[[str], Any]] = {"normalize": normalize, "meaning_part": meaning_part,
                                              "parse_digits": parse_digits}
CASES = yaml.safe_load((Path(__file__).parent / "cases" / "text_functions.yaml").read_text(encoding="utf-8"))


def test_every_function_has_cases_and_every_case_a_function():
    assert set(CASES) == set(FUNCTIONS) and all(len(rows) >= 5 for rows in CASES.values())


@pytest.mark.parametrize(("name", "text", "expected"),
                         [(name, text, expected) for name, rows in CASES.items() for text, expected in rows],
                         ids=lambda value: str(value)[:40])
def test_text_case(name, text, expected):
    assert FUNCTIONS[name](text) == expected
