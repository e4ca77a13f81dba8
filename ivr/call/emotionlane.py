"""A call's emotion lane: voice emotion of each caller turn in a worker, joined with the words after ASR.

At the end of a turn (or at the pause it is decoded ahead at) the call's hearing (ivr.call.hearing) hands
the turn's audio to `start` (the acoustic model runs on this lane's thread, alongside ASR on the ASR lane).
When the transcript arrives, `ready` says whether the voice result is in (on a virtual clock the driver
waits for it through `work`); `annotate` then adds the text emotion, fuses both into the Utterance's
`emotion`/`negativity`, and logs an `emotion` event with the scores (never the caller's words).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import numpy as np

from dialog.emotion.acoustic import VoiceEmotion
from dialog.emotion.analyzer import EmotionAnalyzer
from dialog.events import Utterance
from ivr.call.eventlog import EventLog
from ivr.call.events import Emotion
from ivr.call.work import Work
from telephony.clock import Clock


class EmotionLane:
    def __init__(self, analyzer: EmotionAnalyzer, clock: Clock, call_id: str) -> None:
        self._analyzer = analyzer
        self._clock = clock
        self._lane = ThreadPoolExecutor(1, thread_name_prefix=f"emotion-{call_id}")
        self._work: Work[VoiceEmotion | None] | None = None
        self._voice: VoiceEmotion | None = None

    def start(self, audio: np.ndarray, sample_rate_hz: int) -> None:
        """Voice emotion of a finished turn, in the background."""
        if self._work is not None:
            self._work.cancel()
        self._voice = None
        samples = np.asarray(audio).copy()

        def produce(emit: Any) -> None:
            emit(self._analyzer.voice(samples, sample_rate_hz))

        self._work = Work(self._lane, self._clock, produce, name="emotion")

    def ready(self) -> bool:
        """Whether the last turn's voice result is in (or failed, or there is none)."""
        work = self._work
        if work is None:
            return True
        for item in work.poll():
            self._voice = item
        return work.finished

    @property
    def work(self) -> Work[Any] | None:
        return self._work if self._work is not None and not self._work.finished else None

    def annotate(self, utterance: Utterance, log: EventLog) -> Utterance:
        """The utterance with the turn's fused emotion; logs an `emotion` event."""
        voice = self._voice if self._work is not None and self._work.error is None else None
        self._work, self._voice = None, None
        return annotate(self._analyzer, utterance, log, voice)

    def close(self) -> None:
        if self._work is not None:
            self._work.cancel()
        self._lane.shutdown(wait=False, cancel_futures=True)


def annotate(analyzer: EmotionAnalyzer, utterance: Utterance, log: EventLog,
             voice: VoiceEmotion | None = None) -> Utterance:
    """The utterance with its emotion from the words (and the voice, when there is a voice result: a chat
    has none), fused; logs an `emotion` event with the scores, never the words."""
    event = emotion_event(analyzer, utterance.text, voice)
    if event is None:
        return utterance
    log.emit(event)
    return replace(utterance, emotion=event.label, negativity=event.negativity)


def emotion_event(analyzer: EmotionAnalyzer, words: str, voice: VoiceEmotion | None = None) -> Emotion | None:
    """The `emotion` event of a turn with these words (and voice result): the fused label and the scores of
    each model, never the words; None when neither model gave a label."""
    text = analyzer.text(words)
    fused = analyzer.fuse(voice, text)
    if not fused.label:
        return None
    return Emotion(label=fused.label, scores=fused.scores, negativity=fused.negativity,
                   voice=None if voice is None else voice.label,
                   voice_negativity=fused.voice_negativity, voice_weight=fused.voice_weight,
                   voice_ood=None if voice is None else voice.ood, text=None if text is None else text.label,
                   text_negativity=fused.text_negativity, valence=None if text is None else text.valence)
