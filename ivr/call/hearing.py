"""The caller's side of one call: their audio cut into turns, each turn recognized on the call's ASR lane
and its voice emotion heard on the emotion lane.

The session feeds every caller frame to `hear`, which yields the turn detector's events one at a time,
so the session reacts to each (a barge-in, the turn taken, a click forgotten) before the next frame is
heard. For a turn the agent listens to, `recognize` starts its recognition at the onset; at a pause inside
the turn the words so far are decoded ahead (`paused`), and `settled_turn` ends the turn early when they
already give the node what it acts on; `turn_ended` hands the whole turn to the recognizer and `poll`
brings back what was heard.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from asr.base import Transcript
from asr.turns import Paused, SpeechDropped, SpeechStarted, TurnConfig, TurnDetector, TurnEnded
from asr.vad import make_vad
from dialog.actions import Listen
from dialog.events import Utterance
from ivr.call import events as ev
from ivr.call.emotionlane import EmotionLane
from ivr.call.eventlog import EventLog
from ivr.call.recognition import TurnRecognition, end_of_turn_silence_ms, expectation
from ivr.call.services import Services
from ivr.call.speaking import TranscriptLine
from ivr.call.work import Work
from telephony.audio.frame import INTERNAL_RATE_HZ, Frame, FrameBuffer
from telephony.audio.resample import Resampler
from telephony.clock import Clock

log = logging.getLogger(__name__)

MAX_SILENCE_TO_ASR_MS = 200
"""Silence inside a caller turn passed on to the recognizer before the rest is left out."""

TurnEvent = SpeechStarted | TurnEnded | SpeechDropped | Paused


@dataclass(frozen=True)
class Heard:
    """A caller turn's recognition, finished: its transcript, or the name of what failed."""

    transcript: Transcript | None
    error: str = ""


class Hearing:
    def __init__(self, services: Services, clock: Clock, sample_rate_hz: int, call_id: str, log_: EventLog,
                 transcript: list[TranscriptLine]) -> None:
        self._services = services
        self._cfg = services.config.call
        self._clock = clock
        self._call_id = call_id
        self._log = log_
        self._transcript = transcript
        self._inbound = Resampler(sample_rate_hz, INTERNAL_RATE_HZ)
        self._inbound_buf = FrameBuffer(INTERNAL_RATE_HZ)
        self._turns = TurnDetector(make_vad(self._cfg.vad), TurnConfig(
            end_of_turn_silence_ms=self._cfg.end_of_turn_silence_ms, pause_ms=self._cfg.decode_ahead_ms),
            INTERNAL_RATE_HZ)
        self._lane = ThreadPoolExecutor(1, thread_name_prefix=f"asr-{call_id}")
        self._recognition: TurnRecognition | None = None
        self._silence_fed_ms = 0.0
        self._emotion = EmotionLane(services.emotion, clock, call_id) if services.emotion else None
        self._held: Transcript | None = None
        """A transcript waiting for its turn's voice emotion."""

    @property
    def quiet(self) -> bool:
        """No caller turn under way: no speech, nothing being recognized."""
        return self._recognition is None and not self._turns.in_speech

    # ---- the caller's audio --------------------------------------------------------------------

    def hear(self, caller: Frame) -> Iterator[TurnEvent]:
        """The caller's frame at the internal rate through the turn detector: its events, each yielded
        before the next frame is heard; the speech frames of a turn go on to its recognition."""
        self._inbound_buf.push(self._inbound.process(caller).samples())
        end_ms = caller.timestamp_ms + caller.duration_ms
        while (frame := self._inbound_buf.pop(end_ms - len(self._inbound_buf) * 1000.0 / INTERNAL_RATE_HZ)):
            events = self._turns.process(frame)
            self._feed_recognition(frame)
            yield from events

    def _feed_recognition(self, frame: Frame) -> None:
        """Speech frames of the turn go to the recognizer; long silences inside or after it don't
        (Whisper invents words in trailing silence)."""
        if self._recognition is None or self._recognition.result is not None or not self._turns.in_speech:
            return
        speech = self._turns.last_probability >= self._turns.config.threshold
        if speech:
            self._silence_fed_ms = 0.0
        else:
            self._silence_fed_ms += frame.duration_ms
            if self._silence_fed_ms > MAX_SILENCE_TO_ASR_MS:
                return
        self._recognition.feed(frame.pcm, speech)

    # ---- a turn: its start, pauses and end -----------------------------------------------------

    def started(self, event: SpeechStarted) -> None:
        self._log.emit(ev.SpeechStarted(onset_ms=round(event.onset_ms, 1)))

    def recognize(self, event: SpeechStarted, listen: Listen, node: str | None) -> None:
        """Recognize the turn that began at `event` as an answer to `listen` (unless one is being recognized):
        what the recognizer is told to expect, and the silence that ends the turn, follow from it."""
        if self._recognition is not None:
            return
        said = next((line.text for line in reversed(self._transcript) if line.speaker == "agent"), "")
        options, context = expectation(listen, node, self._services.machine.flow, said, self._services.config.asr)
        self._turns.config = replace(self._turns.config, end_of_turn_silence_ms=end_of_turn_silence_ms(
            options, self._cfg.end_of_turn_silence_ms))
        self._recognition = TurnRecognition(self._services.recognizer, self._lane, self._clock,
                                            INTERNAL_RATE_HZ, options, context)
        self._recognition.feed(np.asarray(event.audio, dtype="<i2").tobytes())

    def paused(self, event: Paused) -> None:
        """The caller paused inside a turn: decode it so far (and hear its voice emotion) ahead, in case
        the turn is over; `settled_turn` may then end it before the silence does."""
        rec = self._recognition
        if rec is None or rec.result is not None or not rec.can_decode_ahead:
            return
        self._log.emit(ev.SpeechPaused(end_ms=round(event.end_ms, 1)))
        rec.decode_ahead()
        if self._emotion is not None:
            self._emotion.start(event.audio, INTERNAL_RATE_HZ)

    def settled_turn(self) -> TurnEnded | None:
        """The turn, ended now, after `complete_timeout_ms` of silence when the words decoded ahead already give
        the node what it acts on, heard surely; None: the turn waits for the silence that ends every turn."""
        rec = self._recognition
        wait_ms = self._cfg.complete_timeout_ms
        if (wait_ms <= 0 or rec is None or rec.result is not None or not self._turns.in_speech
                or self._turns.silence_ms < wait_ms):
            return None
        heard = rec.heard_ahead()
        if heard is not None and rec.settles(heard, self._cfg.settled_confidence):
            return self._turns.end_now()
        return None

    def turn_ended(self, event: TurnEnded, early: bool = False) -> bool:
        """The turn is over: whether it is a turn the agent listened to, now being recognized as a whole
        (with its voice emotion, unless that was heard ahead); its line joins the transcript."""
        self._log.emit(ev.SpeechStopped(onset_ms=round(event.onset_ms, 1), end_ms=round(event.end_ms, 1),
                                        early=early))
        if self._recognition is None or self._recognition.result is not None:
            self._log.emit(ev.SpeechIgnored(reason="agent not listening"))
            return False
        decoded_ahead = self._recognition.ahead is not None  # at the pause, with its voice emotion
        self._recognition.finish()
        if self._emotion is not None and not decoded_ahead:
            self._emotion.start(event.audio, INTERNAL_RATE_HZ)
        self._transcript.append(TranscriptLine("caller", event.onset_ms, "", event.end_ms))
        return True

    def dropped(self, event: SpeechDropped) -> bool:
        """Too short to be a turn (a click, a cough): forget the recognition it started (True)."""
        self._log.emit(ev.SpeechDropped(onset_ms=round(event.onset_ms, 1), end_ms=round(event.end_ms, 1)))
        if self._recognition is not None and self._recognition.result is None:
            self._recognition = None
            return True
        return False

    # ---- what was heard ------------------------------------------------------------------------

    def poll(self) -> Heard | None:
        """The turn's partial transcripts into the log; once its recognition has finished, what was heard
        (an empty transcript leaves the transcript without the turn's line)."""
        rec = self._recognition
        if rec is None:
            return None
        for partial in rec.take_partials():
            self._log.emit(ev.AsrPartial(text=partial.text))
        if rec.result is None:
            return None
        rec.received.extend(rec.result.poll())
        if not rec.result.finished:
            return None
        self._recognition = None
        return self._recognized(rec.received[0] if rec.received else None, rec.result.error)

    def _recognized(self, result: Transcript | None, error: BaseException | None) -> Heard:
        line = self._transcript[-1] if self._transcript and self._transcript[-1].speaker == "caller" else None
        if error is not None or result is None:
            log.warning("call %s: recognition failed: %s", self._call_id, type(error).__name__)
            failure = type(error).__name__ if error else "no result"
            self._log.emit(ev.AsrFailed(error=failure))
            return Heard(None, failure)
        self._log.emit(ev.Transcript(text=result.text, confidence=round(result.confidence, 3)))
        if line is not None:
            line.text, line.confidence = result.text, result.confidence
            line.words = [{"text": w.text, "start_s": w.start_s, "end_s": w.end_s,
                           "confidence": w.confidence} for w in result.words]
            if not result.text.strip():
                self._transcript.remove(line)
        return Heard(result)

    # ---- the turn's voice emotion --------------------------------------------------------------

    def wait_for_emotion(self, result: Transcript) -> bool:
        """Keep a recognized turn (True) while its voice emotion is still being heard, so that the dialog
        gets both at once (see `take_held`)."""
        if self._emotion is None or self._emotion.ready():
            return False
        self._held = result
        return True

    def take_held(self) -> Transcript | None:
        """The turn kept by `wait_for_emotion`, once its voice emotion is in."""
        if self._held is None or self._emotion is None or not self._emotion.ready():
            return None
        held, self._held = self._held, None
        return held

    def with_emotion(self, utterance: Utterance) -> Utterance:
        """The utterance with its turn's emotion (voice and words; logged), when the call hears emotion."""
        return utterance if self._emotion is None else self._emotion.annotate(utterance, self._log)

    # ---- the end -------------------------------------------------------------------------------

    def pending_work(self) -> list[Work[Any]]:
        """Model work the turn is waiting on: its recognition (whole, or ahead) and its voice emotion."""
        works: list[Work[Any]] = []
        if self._recognition is not None:
            works.extend(w for w in (self._recognition.result, self._recognition.ahead)
                         if w is not None and not w.finished)
        if self._emotion is not None and self._emotion.work is not None:
            works.append(self._emotion.work)
        return works

    def stop(self) -> None:
        """The call ended: the recognition under way is cancelled."""
        if self._recognition is not None and self._recognition.result is not None:
            self._recognition.result.cancel()

    def close(self) -> None:
        self._lane.shutdown(wait=False, cancel_futures=True)
        if self._emotion is not None:
            self._emotion.close()
