"""What the dialog asks the call to do. The session carries these out in order."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Prompt:
    """Something the caller hears: a text to say or a recording to play."""

    barge_in: bool = field(default=True, kw_only=True)
    """Whether caller speech may interrupt this prompt."""


@dataclass(frozen=True)
class Say(Prompt):
    text: str


@dataclass(frozen=True)
class Play(Prompt):
    path: str


@dataclass(frozen=True)
class Listen:
    """Wait for the caller, after every prompt before it has played."""

    no_input_timeout_ms: int = 6000
    phrases: tuple[str, ...] = ()
    """Expected words, for vocabulary biasing."""
    max_digits: int = 1
    """Keypad entry ends after this many digits, at the terminator, or after inter_digit_timeout_ms."""
    digit_terminator: str = "#"
    inter_digit_timeout_ms: int = 3000
    kind: str = "menu"
    """Why the agent listens: menu (a node's question), collect (a slot), confirm ("Did you mean `about`?"),
    yes_no (a slot read back), faq (after an FAQ answer), reprompt (after a no-match or no-input)."""
    about: str = ""
    """For confirm: the label (intent, else goto) of the choice asked about."""


@dataclass(frozen=True)
class Transfer:
    target: str
    reason: str


@dataclass(frozen=True)
class Hangup:
    reason: str


Action = Say | Play | Listen | Transfer | Hangup
