"""The keypad of one call: key presses handed over by the transport (from any thread) and the digit
entry the caller is typing while the agent listens."""

from __future__ import annotations

import threading
from collections import deque

from dialog.actions import Listen


class Keypad:
    def __init__(self) -> None:
        self._keys: deque[str] = deque()
        self._lock = threading.Lock()
        self.digits = ""
        """The entry typed so far."""
        self.deadline_ms = 0.0
        """When the entry ends for want of the next key."""
        self._entry_complete = False
        """The last entry ended by its length: a terminator right after it belongs to it."""

    def press(self, digit: str) -> None:
        """A key press from the transport; safe from any thread."""
        with self._lock:
            self._keys.append(digit)

    def take(self) -> list[str]:
        """The keys pressed since the last tick."""
        with self._lock:
            keys, self._keys = list(self._keys), deque()
        return keys

    def ends_last_entry(self, key: str) -> bool:
        """Whether `key` is the terminator of an entry that already ended by its length ("123456#" for a
        6-digit entry: the '#' ends nothing new). Asked once for every key, in order."""
        complete, self._entry_complete = self._entry_complete, False
        return complete and key == "#"

    def type(self, key: str, listen: Listen, now: float) -> str | None:
        """Add a key to the entry; the whole entry once it is done (terminator, or max_digits)."""
        if key == listen.digit_terminator and self.digits:
            return self.finish()
        self.digits += key
        self.deadline_ms = now + listen.inter_digit_timeout_ms
        if len(self.digits) >= listen.max_digits:
            self._entry_complete = True
            return self.finish()
        return None

    def finish(self) -> str:
        """The entry, now ended."""
        digits, self.digits = self.digits, ""
        return digits

    def clear(self) -> None:
        self.digits = ""
