"""Slot values from spoken and keyed input: digits, amounts, dates, yes/no."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from dialog.nlu.slots import parse_amount, parse_date, parse_yes_no, read_back_digits


@pytest.mark.parametrize(("text", "amount"), [
    ("fifty two dollars and ten cents", "52.10"),
    ("$1,250.40", "1250.40"),
    ("one thousand two hundred and fifty dollars and forty cents", "1250.40"),
    ("twenty bucks", "20.00"),
    ("ten dollars fifty", "10.50"),
    ("75 cents", "0.75"),
    ("a hundred dollars", "100.00"),
    ("no idea", None),
])
def test_amounts(text, amount):
    assert parse_amount(text) == (None if amount is None else Decimal(amount))


TODAY = date(2025, 5, 10)


@pytest.mark.parametrize(("text", "day"), [
    ("march third", date(2026, 3, 3)),
    ("the 3rd of march", date(2026, 3, 3)),
    ("on the twenty first of may", date(2025, 5, 21)),
    ("3 march 2024", date(2024, 3, 3)),
    ("tomorrow", date(2025, 5, 11)),
    ("yesterday", date(2025, 5, 9)),
    ("12/25", date(2025, 12, 25)),
    ("sometime soon", None),
])
def test_dates(text, day):
    assert parse_date(text, TODAY) == day


@pytest.mark.parametrize(("text", "answer"), [
    ("yes", True), ("Yeah, that's right.", True), ("that is correct", True), ("yes please", True),
    ("no", False), ("Nope, that's wrong.", False), ("No, that's not right.", False),
    ("maybe", None), ("what was that", None),
    ("yep", True), ("yup", True), ("correct", True), ("that's right", True), ("uh huh", True),
    ("nope", False), ("not really", False), ("nah", False), ("no, it's 4 2 7", False),
])
def test_yes_no(text, answer):
    assert parse_yes_no(text) is answer


def test_read_back_speaks_one_digit_at_a_time():
    assert read_back_digits("123456") == "1 2 3 4 5 6"
