"""One turn's emotion from the caller's voice and words, weighted into one label and one negativity.

Text emotions (Ekman) fold into the voice model's four classes: anger and disgust -> angry, sadness
and fear -> sad, joy -> happy, neutral and surprise -> neutral. Either side may be missing (no audio
model, an empty transcript); the other then decides alone. The voice's share is scaled by its
out-of-distribution weight (`VoiceEmotion.weight`): a voice unlike the model's training speakers
counts less, and not at all beyond the calibrated threshold, so the words decide.

The words can raise a turn's negativity but a calm voice cannot lower it: the turn's negativity is the
weighted one or the words' own, whichever is higher, and a turn whose words are the more negative side takes
its label from them. People say "I'm furious" in an even voice; averaging them away (0.63 in the words, 0.20
fused, in a call a tester made) meant an upset caller was never offered a person.
"""

from __future__ import annotations

from dataclasses import dataclass

from dialog.emotion.acoustic import VoiceEmotion
from dialog.emotion.result import EmotionResult
from dialog.emotion.text import TextEmotion

CLASSES: tuple[str, ...] = ("neutral", "happy", "sad", "angry")
"""The emotions the models tell apart (the training corpora's labels are folded into these)."""

TEXT_TO_CLASS = {"anger": "angry", "disgust": "angry", "sadness": "sad", "fear": "sad", "joy": "happy",
                 "neutral": "neutral", "surprise": "neutral"}


@dataclass(frozen=True)
class FusionWeights:
    voice: float = 0.7
    """Share of the voice in a turn's emotion: how a caller sounds outweighs a few recognised words."""
    text: float = 0.3


@dataclass(frozen=True)
class TurnEmotion(EmotionResult):
    """The label is neutral, happy, sad or angry ('' when neither side had anything)."""

    voice_negativity: float | None = None
    text_negativity: float | None = None
    voice_weight: float | None = None
    """The voice's OOD weight (0: it abstained); None without a voice."""


def text_scores(text: TextEmotion) -> dict[str, float]:
    """The Ekman probabilities folded into the four classes, summing to 1."""
    folded = dict.fromkeys(CLASSES, 0.0)
    for label, p in text.scores.items():
        folded[TEXT_TO_CLASS.get(label, "neutral")] += p
    total = sum(folded.values()) or 1.0
    return {k: v / total for k, v in folded.items()}


def fuse(voice: VoiceEmotion | None, text: TextEmotion | None,
         weights: FusionWeights = FusionWeights()) -> TurnEmotion:
    parts: list[tuple[float, dict[str, float], float]] = []
    if voice is not None:
        parts.append((weights.voice * voice.weight, voice.scores, voice.negativity))
    if text is not None:
        parts.append((weights.text, text_scores(text), text.negativity))
    total = sum(w for w, _, _ in parts)
    if not parts or total <= 0:
        return TurnEmotion("", {}, 0.0)
    scores = {c: round(sum(w * s.get(c, 0.0) for w, s, _ in parts) / total, 4) for c in CLASSES}
    negativity = sum(w * n for w, _, n in parts) / total
    label = max(scores, key=scores.__getitem__)
    if text is not None and text.negativity > negativity:
        negativity = text.negativity
        label = TEXT_TO_CLASS.get(text.label, label)
    return TurnEmotion(label, scores, round(negativity, 4),
                       None if voice is None else voice.negativity, None if text is None else text.negativity,
                       None if voice is None else voice.weight)
