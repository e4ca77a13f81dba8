"""What every emotion model says of one caller turn (the voice's, the words', and the two fused)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EmotionResult:
    label: str
    """The most likely class ('' when there was nothing to judge)."""
    scores: dict[str, float]
    """Probability per class."""
    negativity: float
    """0 .. 1: how negative the turn is, for the emotion policy (dialog.emotion.policy)."""
