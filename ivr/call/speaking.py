"""The agent's voice on one call: prompts synthesized (or played) on the call's TTS lane, the outbound
buffer the ticks take frames from, and the transcript line of the prompt being spoken."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dialog.actions import Play, Say
from ivr.call.eventlog import EventLog
from ivr.call.events import PromptFinished, Said
from ivr.call.services import Services
from ivr.call.work import Cancelled, Work
from telephony.audio.audiofile import read_audio
from telephony.audio.frame import Frame, FrameBuffer
from telephony.audio.resample import resample
from telephony.clock import Clock
from tts.base import Synthesizer
from tts.stream import speak, without_lead

log = logging.getLogger(__name__)


@dataclass
class TranscriptLine:
    speaker: str
    start_ms: float
    text: str
    end_ms: float = 0.0
    confidence: float = 1.0
    words: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False


class Speaking:
    def __init__(self, services: Services, clock: Clock, rate_hz: int, call_id: str, log_: EventLog,
                 transcript: list[TranscriptLine]) -> None:
        self._services = services
        self._clock = clock
        self._rate_hz = rate_hz
        self._log = log_
        self._transcript = transcript
        self._lane = ThreadPoolExecutor(1, thread_name_prefix=f"tts-{call_id}")
        self._out = FrameBuffer(rate_hz)
        self.work: Work[np.ndarray] | None = None
        self.interruptible = True
        """Whether the caller may barge in on what is being said."""
        self._line: TranscriptLine | None = None

    @property
    def busy(self) -> bool:
        """Synthesis under way or audio still queued."""
        return self.work is not None or len(self._out) > 0

    def start(self, items: list[Say | Play]) -> None:
        texts = [item.text for item in items if isinstance(item, Say)]
        self.interruptible = all(item.barge_in for item in items)
        self._line = TranscriptLine("agent", self._clock.now_ms(), " ".join(texts))
        self._transcript.append(self._line)
        self._log.emit(Said(text=" ".join(texts), barge_in=self.interruptible))
        primary, fallback = self._services.synthesizer, self._services.fallback_synthesizer
        rate = self._rate_hz

        def produce(emit: Any) -> None:
            started = False

            def emit_from_first_sound(chunk: np.ndarray) -> None:  # the reply starts with its first sound
                nonlocal started
                if not started:
                    chunk = without_lead(chunk, rate)
                    started = chunk.size > 0
                if chunk.size:
                    emit(chunk)

            for item in items:
                if isinstance(item, Play):
                    clip = read_audio(item.path)
                    emit_from_first_sound(resample(clip.mono(), clip.sample_rate_hz, rate))
                else:
                    _speak_with_fallback(primary, fallback, item.text, rate, emit_from_first_sound)

        self.work = Work(self._lane, self._clock, produce, name="tts")

    def silence(self) -> None:
        """Stop at once: synthesis cancelled, queued audio dropped."""
        if self.work is not None:
            self.work.cancel()
            self.work = None
        self._out.clear()

    def interrupt(self, now: float) -> None:
        """The caller barged in: stop, and the prompt's transcript line ends here, interrupted."""
        self.silence()
        if self._line is not None:
            self._line.end_ms = now
            self._line.interrupted = True
            self._line = None

    def poll(self) -> BaseException | None:
        """Move synthesized audio to the outbound buffer; the error the synthesis ended with, if any."""
        work = self.work
        if work is None:
            return None
        for chunk in work.poll():
            self._out.push(chunk)
        if not work.finished:
            return None
        self.work = None
        return work.error

    def next_frame(self, now: float) -> Frame | None:
        """The agent's next frame (None: nothing to say)."""
        return self._out.pop(now, pad=self.work is None)

    def sent(self, frame: Frame, now: float) -> None:
        """A frame went out: when it was the prompt's last, the prompt is finished."""
        if self.work is None and len(self._out) == 0 and self._line is not None:
            self._line.end_ms = now + frame.duration_ms
            self._line = None
            self._log.emit(PromptFinished())

    def close(self) -> None:
        self._lane.shutdown(wait=False, cancel_futures=True)


def _speak_with_fallback(primary: Synthesizer, fallback: Synthesizer | None, text: str, rate_hz: int,
                         emit: Any) -> None:
    """Speak with the primary engine; if it fails before any audio left, speak with the fallback."""
    started = False
    try:
        for chunk in speak(primary, text, rate_hz):
            started = True
            emit(chunk)
    except Exception as exc:
        if started or fallback is None or isinstance(exc, Cancelled):
            raise
        log.warning("primary TTS failed (%s); using %s", type(exc).__name__, fallback.engine)
        for chunk in speak(fallback, text, rate_hz):
            emit(chunk)
