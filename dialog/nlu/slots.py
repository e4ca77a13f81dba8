"""Slot values from what a caller said or keyed: digit strings, amounts, dates, yes/no.

All functions are pure and take ASR-style text (any case, punctuation, digits or number words):
- `parse_digits("my account is oh one double five 7")` -> "01557"; "triple two" -> "222";
  "twelve thirty four" -> "1234"; "four hundred and seven" -> "407"; "for two seven" -> "427";
  keyed "123456#" -> "123456".
- `parse_amount("fifty two dollars and ten cents")` -> Decimal("52.10"); "$1,250.40" works too.
- `parse_date("the 3rd of march", today)` -> date; also "march third", "tomorrow", "3/14".
- `parse_yes_no("yeah that's right")` -> True; None when the turn says neither.
- `read_back_digits("123456")` -> "1 2 3 4 5 6" (what the agent says back to confirm).
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

UNITS = {"zero": 0, "oh": 0, "o": 0, "nought": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
         "six": 6, "seven": 7, "eight": 8, "nine": 9}
TEENS = {"ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
         "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19}
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
        "ninety": 90}
REPEATS = {"double": 2, "triple": 3}
DIGIT_HOMOPHONES = {"to": "2", "too": "2", "for": "4", "fore": "4", "won": "1", "ate": "8"}
"""Words a recognizer writes for a spoken digit; digits only next to other digits (see `parse_digits`)."""
SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
            "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13,
            "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18,
            "nineteenth": 19, "twentieth": 20, "thirtieth": 30}
MONTHS = {name: i for i, name in enumerate(
    ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
     "november", "december"), 1)}
MONTHS.update({name[:3]: i for name, i in list(MONTHS.items())})
MONTHS["sept"] = 9
YES_WORDS = frozenset({"yes", "yeah", "yep", "yup", "ya", "sure", "correct", "right", "absolutely", "okay",
                       "ok", "affirmative", "definitely", "exactly", "indeed", "uh-huh", "mhm"})
NO_WORDS = frozenset({"no", "nope", "nah", "wrong", "incorrect", "negative", "not"})
YES_PHRASES = ("thats right", "that is right", "that is correct", "thats correct", "it is", "i do",
               "go ahead", "please do", "of course", "uh huh", "mm hmm")
NO_PHRASES = ("thats wrong", "thats not", "that is not", "dont think so", "not right", "not correct")

_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[a-z]+(?:-[a-z]+)?")
_APOSTROPHES = re.compile(r"['\u2018\u2019`]")
_ORDINAL_SUFFIX = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)$")


def _tokens(text: str) -> list[str]:
    text = _APOSTROPHES.sub("", text.lower())
    text = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1\2", text)
    return _TOKEN.findall(text.replace("-", " "))


# ------------------------------------------------------------------------------------------ digits


def parse_digits(text: str) -> str | None:
    """The digit string a caller spoke or keyed, in order; None when there is none.

    Digits and digit words join ("one 2 three" -> "123"); "oh"/"o" is zero between or next to digits;
    "double"/"triple" repeat the next digit; teens and tens are two digits ("twelve" -> "12",
    "thirty four" -> "34", "forty" -> "40"); "four hundred and seven" -> "407"; "to", "for", "won",
    "ate" are digits after a digit or before two ("for two seven" -> "427"); other words (fillers,
    "my number is") are skipped; '*' and '#' are dropped."""
    out: list[str] = []
    tokens = _tokens(text.replace("#", " ").replace("*", " "))
    tokens = [DIGIT_HOMOPHONES[t] if t in DIGIT_HOMOPHONES and _homophone_is_digit(tokens, i) else t
              for i, t in enumerate(tokens)]
    repeat = 1
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.replace(",", "").replace(".", "").isdigit():
            out.append(re.sub(r"\D", "", token) * repeat)
            repeat = 1
        elif token in REPEATS:
            repeat = REPEATS[token]
        elif token in ("oh", "o") and not _near_digit(tokens, i):
            repeat = 1
        elif token in UNITS and UNITS[token] > 0 and i + 1 < len(tokens) and tokens[i + 1] == "hundred":
            rest, used = _below_hundred(tokens, i + 2)
            out.append(f"{UNITS[token]}{rest:02d}" * repeat)
            repeat = 1
            i += 1 + used
        elif token in UNITS:
            out.append(str(UNITS[token]) * repeat)
            repeat = 1
        elif token in TEENS:
            out.append(str(TEENS[token]) * repeat)
            repeat = 1
        elif token in TENS:
            value = TENS[token]
            if i + 1 < len(tokens) and tokens[i + 1] in UNITS and UNITS[tokens[i + 1]] > 0:
                value += UNITS[tokens[i + 1]]
                i += 1
            out.append(str(value) * repeat)
            repeat = 1
        i += 1
    digits = "".join(out)
    return digits or None


def _below_hundred(tokens: list[str], start: int) -> tuple[int, int]:
    """The number 0..99 spoken from tokens[start] ("and seven", "twenty seven", "twelve") and how many
    tokens it took; (0, 0) when none follows."""
    i = start + 1 if start < len(tokens) and tokens[start] == "and" else start
    if i < len(tokens) and tokens[i] in TEENS:
        return TEENS[tokens[i]], i + 1 - start
    if i < len(tokens) and tokens[i] in TENS:
        value = TENS[tokens[i]]
        if i + 1 < len(tokens) and tokens[i + 1] in UNITS and UNITS[tokens[i + 1]] > 0:
            return value + UNITS[tokens[i + 1]], i + 2 - start
        return value, i + 1 - start
    if i < len(tokens) and tokens[i] in UNITS and tokens[i] not in ("oh", "o"):
        return UNITS[tokens[i]], i + 1 - start
    return 0, 0


def _homophone_is_digit(tokens: list[str], i: int) -> bool:
    """'for' in "four two seven" heard as "for two seven": after a digit, or before at least two."""
    before = i > 0 and _is_digit_token(tokens[i - 1]) and tokens[i - 1] not in REPEATS
    after = i + 2 < len(tokens) and all(_is_digit_token(t) or t in ("oh", "o") for t in tokens[i + 1:i + 3])
    return before or after


def _is_digit_token(token: str) -> bool:
    return token.isdigit() or (token in UNITS and token not in ("oh", "o")) or token in TEENS or token in TENS \
        or token in REPEATS


def _near_digit(tokens: list[str], i: int) -> bool:
    """'oh' counts as zero only next to another digit ("oh one", "five oh"), not in "oh, my account"."""
    return any(0 <= j < len(tokens) and (_is_digit_token(tokens[j]) or tokens[j] in ("oh", "o"))
               for j in (i - 1, i + 1))


def read_back_digits(digits: str) -> str:
    """'123456' -> '1 2 3 4 5 6': one digit at a time, as a caller expects to hear it."""
    return " ".join(digits)


# ------------------------------------------------------------------------------------------ amounts


def words_to_number(words: list[str]) -> int | None:
    """'one thousand two hundred and fifty' -> 1250; None when the words are not a number."""
    total, current, seen = 0, 0, False
    for word in words:
        if word == "and" and seen:
            continue
        if word.isdigit():
            current += int(word)
        elif word in UNITS and word not in ("oh", "o"):
            current += UNITS[word]
        elif word in TEENS:
            current += TEENS[word]
        elif word in TENS:
            current += TENS[word]
        elif word == "a" and not seen:
            current = 1
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word in SCALES:
            total += max(current, 1) * SCALES[word]
            current = 0
        else:
            return None
        seen = True
    return total + current if seen else None


_CURRENCY = ("dollars", "dollar", "bucks", "usd", "euros", "euro", "pounds", "pound")
_CENTS = ("cents", "cent", "pence", "p")


def parse_amount(text: str) -> Decimal | None:
    """A money amount: "$52.10", "1,250 dollars", "fifty two dollars and ten cents", "twenty bucks",
    "ten fifty" (ten dollars fifty); None when the turn names none."""
    found = re.search(r"\d[\d,]*(?:\.\d{1,2})?", text.replace("$", " "))
    if found:
        value = Decimal(found.group(0).replace(",", ""))
        after = _tokens(text[found.end():])[:1]
        if after and after[0] in _CENTS and "." not in found.group(0):
            value = value / 100
        return value.quantize(Decimal("0.01"))
    tokens = [t for t in _tokens(text) if t not in ("um", "uh", "about", "around", "exactly", "only")]
    number_words = set(UNITS) | set(TEENS) | set(TENS) | set(SCALES) | {"and", "a"}
    groups: list[list[str]] = [[]]
    markers: list[str] = []
    for token in tokens:
        if token in number_words and (token != "and" or groups[-1]):
            groups[-1].append(token)
        elif token in _CURRENCY or token in _CENTS:
            markers.append(token)
            groups.append([])
        elif groups[-1]:
            groups.append([])
    values = [(words_to_number(_trim_and(g)), g) for g in groups if _trim_and(g)]
    numbers = [v for v, _ in values if v is not None]
    if not numbers:
        return None
    dollars = Decimal(numbers[0])
    cents = Decimal(0)
    if len(numbers) > 1 and (any(m in _CENTS for m in markers) or numbers[1] < 100):
        cents = Decimal(numbers[1])
    elif markers and markers[0] in _CENTS and len(numbers) == 1:
        dollars, cents = Decimal(0), Decimal(numbers[0])
    return (dollars + cents / 100).quantize(Decimal("0.01"))


def _trim_and(words: list[str]) -> list[str]:
    while words and words[-1] == "and":
        words = words[:-1]
    return words


def say_amount(amount: Decimal) -> str:
    """Decimal('52.10') -> '52 dollars and 10 cents'."""
    dollars, cents = divmod(int(amount * 100), 100)
    text = f"{dollars} dollar{'s' if dollars != 1 else ''}"
    return f"{text} and {cents} cent{'s' if cents != 1 else ''}" if cents else text


# ------------------------------------------------------------------------------------------ dates


def parse_date(text: str, today: date) -> date | None:
    """A calendar date relative to `today`: "today", "tomorrow", "yesterday", "march third",
    "the 3rd of march", "3 march 2025", "3/14" (month/day); the next such date when no year is said."""
    tokens = _tokens(text)
    joined = " ".join(tokens)
    for word, days in (("day after tomorrow", 2), ("tomorrow", 1), ("today", 0), ("yesterday", -1)):
        if word in joined:
            return today + timedelta(days=days)
    slash = re.search(r"\b(\d{1,2})/(\d{1,2})(?:/(\d{2,4}))?\b", text)
    if slash:
        given = int(slash.group(3)) if slash.group(3) else None
        return _make_date(today, int(slash.group(1)), int(slash.group(2)),
                          given if given is None or given > 99 else 2000 + given)
    month = next((MONTHS[t] for t in tokens if t in MONTHS), None)
    if month is None:
        return None
    day: int | None = None
    year: int | None = None
    i = 0
    while i < len(tokens):
        token = tokens[i]
        suffix = _ORDINAL_SUFFIX.match(token)
        if suffix:
            day = int(suffix.group(1))
        elif token.isdigit() and len(token) == 4:
            year = int(token)
        elif token.isdigit() and len(token) <= 2 and day is None:
            day = int(token)
        elif token in TENS and i + 1 < len(tokens) and tokens[i + 1] in ORDINALS and day is None:
            day = TENS[token] + ORDINALS[tokens[i + 1]]
            i += 1
        elif token in ORDINALS and day is None:
            day = ORDINALS[token]
        i += 1
    return _make_date(today, month, day, year) if day else None


def _make_date(today: date, month: int, day: int, year: int | None) -> date | None:
    try:
        if year is not None:
            return date(year, month, day)
        candidate = date(today.year, month, day)
        return candidate if candidate >= today else date(today.year + 1, month, day)
    except ValueError:
        return None


# ------------------------------------------------------------------------------------------ yes / no


def parse_yes_no(text: str) -> bool | None:
    """True for yes, False for no, None when the turn is neither (or both)."""
    tokens = _tokens(text)
    joined = f" {' '.join(tokens)} "
    no = any(t in NO_WORDS for t in tokens) or any(f" {p} " in joined for p in NO_PHRASES)
    yes = any(t in YES_WORDS for t in tokens) or any(f" {p} " in joined for p in YES_PHRASES)
    if no and yes:
        return None if not joined.strip().startswith(("no", "yes", "yeah")) else tokens[0] != "no"
    return True if yes else False if no else None
