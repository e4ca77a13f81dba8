"""What happens on a call that the dialog reacts to."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CallStarted:
    pass


@dataclass(frozen=True)
class FaqCandidate:
    """A FAQ entry that may answer a turn (see dialog.nlu.understand)."""

    id: str
    score: float
    """How likely the entry answers the turn, 0..1 (the intent model's probability and retrieval, fused)."""
    answer: str


@dataclass(frozen=True)
class Utterance:
    """A final transcript of one caller turn."""

    text: str
    confidence: float = 1.0
    intent: str = ""
    """The NLU's best intent ("" when out of scope or no NLU ran); see dialog.nlu.understand."""
    intent_confidence: float = 0.0
    """Its calibrated probability (0..1)."""
    faq_answer: str = ""
    """The FAQ answer found for the turn ("" when none reached the FAQ's threshold)."""
    emotion: str = ""
    """The turn's emotion from voice and words (neutral/happy/sad/angry; "" when not measured)."""
    negativity: float = 0.0
    """How negative the turn sounded and read, 0..1 (see dialog.emotion.fusion); used when `emotion` is set."""
    ranking: tuple[tuple[str, float], ...] = ()
    """The NLU's probability of every intent it knows ("oos" included, FAQ entries not), best first; empty
    when no NLU ran (then keywords alone choose). dialog.decide weighs them with the node's keywords."""
    faqs: tuple[FaqCandidate, ...] = ()
    """FAQ entries that may answer the turn, best first (dialog.decide weighs them against the choices)."""


@dataclass(frozen=True)
class DigitsEntered:
    digits: str


@dataclass(frozen=True)
class NoInput:
    """The caller said nothing and pressed nothing within the Listen timeout."""


@dataclass(frozen=True)
class RecognitionFailed:
    """The recognizer failed on a turn (a broken backend); the flow treats it like no-match."""

    reason: str = ""


@dataclass(frozen=True)
class MaxDurationReached:
    """The call reached its maximum length."""


Event = CallStarted | Utterance | DigitsEntered | NoInput | RecognitionFailed | MaxDurationReached
