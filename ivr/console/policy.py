"""What a new console password must be: long enough, not one of the most used passwords (also not one
with digits or symbols added around it, or with letters written as look-alike digits), not containing
the user name, and not one or two characters repeated.

The list of common passwords ships with the package (`common_passwords.txt` beside this module).
"""

from __future__ import annotations

import functools
import re
from importlib import resources

from ivr.errors import IvrError

MIN_PASSWORD_CHARS = 10
MIN_DISTINCT_CHARS = 5
MIN_NAME_CHARS_TO_MATCH = 3  # a shorter user name is only refused as the whole password
COMMON_PASSWORDS_FILE = "common_passwords.txt"
_LOOK_ALIKES = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s",
                              "!": "i", "|": "l", "+": "t"})
_EDGES = re.compile(r"^[\W\d_]+|[\W\d_]+$")
_SEPARATORS = re.compile(r"[\W_]+")


def core(password: str) -> str:
    """The word under a password's decoration: lower case, digits and symbols at either end dropped,
    look-alike digits and symbols read as letters, separators inside removed ("P@ssw0rd-2024!" -> "password")."""
    return _SEPARATORS.sub("", _EDGES.sub("", password.lower()).translate(_LOOK_ALIKES))


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list, each entry also as its core (so the list and a password are compared alike)."""
    text = resources.files("ivr.console").joinpath(COMMON_PASSWORDS_FILE).read_text(encoding="utf-8")
    entries = {line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#")}
    return frozenset(entries | {c for c in map(core, entries) if len(c) >= 3})


def _repeats_a_pattern(text: str) -> bool:
    """"abcabcabc", "xyxyxyxyxy": the text is a shorter piece repeated."""
    return len(text) > 1 and (text + text).find(text, 1) < len(text)


def password_problem(password: str, user: str = "") -> str | None:
    """Why `password` may not be used by `user`, or None when it may."""
    if len(password) < MIN_PASSWORD_CHARS:
        return f"a password needs at least {MIN_PASSWORD_CHARS} characters"
    lowered, word = password.lower(), core(password)
    common = common_passwords()
    if lowered in common:
        return "this password is one of the most common passwords: choose another"
    if word in common:
        return ("this password is a common password with digits or symbols added (or letters written as "
                "digits): choose another")
    name = user.strip().lower()
    if name and (lowered == name or (len(name) >= MIN_NAME_CHARS_TO_MATCH and (name in lowered or name in word))):
        return "a password must not contain the user name"
    if len(set(lowered)) < MIN_DISTINCT_CHARS or _repeats_a_pattern(lowered) or _repeats_a_pattern(word):
        return f"a password needs at least {MIN_DISTINCT_CHARS} different characters and no repeated pattern"
    return None


def check_new_password(password: str, user: str = "") -> None:
    """Raise IvrError with the reason when `password` may not be used by `user`."""
    problem = password_problem(password, user)
    if problem is not None:
        raise IvrError(problem)
