"""When a live call's caller counts as upset, for the supervisor's board and the `call.upset` alert.

The store's writer sees each caller turn's emotion event (label, scores and, from a real call, the fused
negativity 0..1). It smooths the negativity over the call as the dialog does (dialog.emotion.policy, with
the flow's `emotion_smoothing`), and the call becomes upset the first time the smoothed negativity reaches
the flow's escalation threshold (`escalate_on_negative_emotion.threshold`; 0.6 when the flow sets none), or
a turn is labelled angry. Once upset, a call stays flagged: a supervisor wants to know it happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dialog.emotion.policy import EmotionEscalation, EmotionTrack, update

UPSET_LABELS = frozenset({"angry", "upset", "frustrated"})
"""A turn with one of these labels flags the call at once, whatever its negativity."""


@dataclass(frozen=True)
class UpsetRule:
    threshold: float = EmotionEscalation().threshold
    """Smoothed negativity at or above this flags the call."""
    smoothing: float = 0.5
    """Weight of each new turn in the moving average (the flow's emotion_smoothing)."""
    labels: frozenset[str] = UPSET_LABELS

    @classmethod
    def from_flow(cls, flow: Any) -> UpsetRule:
        """The rule of a dialog.flow.Flow (its settings' escalation threshold and smoothing); the defaults for
        anything else."""
        settings = getattr(flow, "settings", None)
        if settings is None:
            return cls()
        escalation = getattr(settings, "escalate_on_negative_emotion", None)
        threshold = escalation.threshold if escalation is not None else cls.threshold
        return cls(threshold=float(threshold), smoothing=float(getattr(settings, "emotion_smoothing", cls.smoothing)))


@dataclass
class UpsetTracker:
    """One call's smoothed negativity, and whether (and why) it has become upset."""

    rule: UpsetRule = field(default_factory=UpsetRule)
    track: EmotionTrack = field(default_factory=EmotionTrack)
    upset: bool = False
    why: str = ""
    """"negativity" or "label" once upset."""

    def turn(self, label: str | None, negativity: float | None) -> bool:
        """Take one caller turn's emotion; True exactly when this turn makes the call upset."""
        if isinstance(negativity, int | float):
            self.track = update(self.track, label or "", float(negativity), self.rule.smoothing, None)
        if self.upset:
            return False
        if self.track.measured_turns and self.track.negativity >= self.rule.threshold:
            self.upset, self.why = True, "negativity"
        elif label in self.rule.labels:
            self.upset, self.why = True, "label"
        return self.upset

    @property
    def negativity(self) -> float | None:
        return self.track.negativity if self.track.measured_turns else None
