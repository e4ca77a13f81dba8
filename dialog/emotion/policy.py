"""How a call's emotion evolves and when it should reach a human: pure functions the Machine calls.

Each turn's negativity (0..1, from `dialog.emotion.fusion`) is smoothed over the call with an
exponential moving average: the first measured turn starts the average, each later one moves it by
`smoothing` of the difference. A caller is *upset* while the average is at least `upset_threshold`
(prompts use a node's `say_upset` variant); the call *escalates* once the average has stayed at or
above the escalation threshold for `turns` measured turns in a row.
"""

from __future__ import annotations

from dataclasses import dataclass

REASON_NEGATIVE_EMOTION = "negative-emotion"


@dataclass(frozen=True)
class EmotionEscalation:
    """Flow setting `escalate_on_negative_emotion: {turns: 2, threshold: 0.6}`."""

    turns: int = 2
    """Measured caller turns in a row with the smoothed negativity at or above `threshold`."""
    threshold: float = 0.6


@dataclass(frozen=True)
class EmotionTrack:
    """The emotion part of a call's dialog state."""

    negativity: float = 0.0
    """Smoothed negativity over the call's measured turns."""
    measured_turns: int = 0
    negative_run: int = 0
    """Measured turns in a row with the smoothed negativity at or above the escalation threshold."""
    label: str = ""
    """The last turn's emotion label."""


def update(track: EmotionTrack, label: str, negativity: float, smoothing: float,
           escalation: EmotionEscalation | None) -> EmotionTrack:
    """The track after one measured turn."""
    value = min(1.0, max(0.0, negativity))
    smoothed = value if track.measured_turns == 0 else track.negativity + smoothing * (value - track.negativity)
    threshold = escalation.threshold if escalation is not None else 1.1
    run = track.negative_run + 1 if smoothed >= threshold else 0
    return EmotionTrack(round(smoothed, 4), track.measured_turns + 1, run, label)


def should_escalate(track: EmotionTrack, escalation: EmotionEscalation | None) -> bool:
    return escalation is not None and track.negative_run >= escalation.turns


def is_upset(track: EmotionTrack, upset_threshold: float) -> bool:
    return track.measured_turns > 0 and track.negativity >= upset_threshold
