"""End-of-turn detection: a per-call state machine over VAD decisions on 20 ms frames.

Feed every caller frame, in order, to `TurnDetector.process(frame)`; it returns the events that
frame caused:

- `SpeechStarted` once `start_speech_ms` of consecutive speech is heard. `onset_ms` is the timestamp
  of the first speech frame of that run (for barge-in reaction times) and `audio` holds the pre-roll
  and the speech so far, up to and including this frame.
- `TurnEnded` after `end_of_turn_silence_ms` of silence following at least `min_speech_ms` of speech
  (or when a turn reaches `max_turn_ms`). `audio` is the whole turn, pre-roll included.
- `SpeechDropped` instead of `TurnEnded` when the speech was shorter than `min_speech_ms` (a click,
  a cough): whoever acted on `SpeechStarted` can discard what it started.
- `Paused` once per silence inside a turn, when it reaches `pause_ms` (0: never) after at least
  `min_speech_ms` of speech: the turn may be over. Whoever decides that it is (from the words heard so
  far) calls `end_now()`, which ends the turn there; otherwise the turn goes on, and ends as above.

Streaming recognizers get the turn's audio as it arrives this way: on `SpeechStarted` feed
`event.audio`; after that, feed each frame for which `in_speech` is True once `process(frame)` returned.
The frame that ends the turn leaves `in_speech` False and is not part of the turn.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from asr.errors import AsrError
from asr.vad_base import VoiceActivityDetector
from telephony.audio.frame import INTERNAL_RATE_HZ, Frame, join
from telephony.errors import FrameError


@dataclass(frozen=True)
class TurnConfig:
    start_speech_ms: int = 60
    """Consecutive speech needed to declare that the caller started speaking (barge-in fires here)."""
    end_of_turn_silence_ms: int = 500
    """Silence after speech that ends the caller's turn; lower answers faster but cuts pauses."""
    pre_roll_ms: int = 300
    """Audio kept from before the onset, so the first syllable reaches the recognizer whole."""
    min_speech_ms: int = 150
    """Turns with less speech than this are dropped (SpeechDropped) instead of ended."""
    threshold: float = 0.5
    """VAD probability at or above which a frame counts as speech."""
    max_turn_ms: int = 20000
    """A turn this long (from its onset) is ended even while the caller keeps talking."""
    pause_ms: int = 0
    """Silence inside a turn that raises `Paused` (a chance to end the turn early); 0: off."""
    quiet_level: float = 0.03
    """Inside a turn, a frame the VAD calls speech but quieter than this share of the turn's loudest frame
    is not the caller's voice: the VAD's hangover (WebRTC calls 100-160 ms of line noise after the last
    word speech). A turn's `end_ms` is the end of its last louder frame, the caller's last word. 0: the
    VAD's verdict alone. Only the stamp moves: pauses and the turn's end count from the VAD's verdict."""

    def __post_init__(self) -> None:
        for name in ("start_speech_ms", "end_of_turn_silence_ms", "pre_roll_ms", "min_speech_ms", "pause_ms",
                     "quiet_level"):
            if getattr(self, name) < 0:
                raise AsrError(f"turn config: {name} must be >= 0, got {getattr(self, name)}")
        if self.max_turn_ms <= 0:
            raise AsrError(f"turn config: max_turn_ms must be > 0, got {self.max_turn_ms}")
        if not 0.0 <= self.threshold <= 1.0:
            raise AsrError(f"turn config: threshold must be in [0, 1], got {self.threshold}")


@dataclass(frozen=True)
class SpeechStarted:
    onset_ms: float
    """Timestamp of the first speech frame of the run that started the turn."""
    audio: np.ndarray = field(compare=False, repr=False)
    """int16 pre-roll plus speech so far, up to and including the frame that raised this event."""
    sample_rate_hz: int = INTERNAL_RATE_HZ


@dataclass(frozen=True)
class _TurnSoFar:
    onset_ms: float
    """Same onset as the turn's SpeechStarted."""
    end_ms: float
    """End of the last speech frame (the event itself comes the silence it waited for later)."""
    audio: np.ndarray = field(compare=False, repr=False)
    """int16 audio of the turn: pre-roll, speech, and the silence after it up to this event."""
    sample_rate_hz: int = INTERNAL_RATE_HZ


@dataclass(frozen=True)
class TurnEnded(_TurnSoFar):
    forced: bool = False
    """True when max_turn_ms cut the turn rather than silence."""

    @property
    def speech_duration_ms(self) -> float:
        return self.end_ms - self.onset_ms


@dataclass(frozen=True)
class SpeechDropped:
    onset_ms: float
    end_ms: float
    """The speech since SpeechStarted was too short (min_speech_ms) to be a turn."""


@dataclass(frozen=True)
class Paused(_TurnSoFar):
    """The caller has been silent `pause_ms` since `end_ms`; `audio` is the turn so far, as a TurnEnded
    here would carry it."""


TurnEvent = SpeechStarted | TurnEnded | SpeechDropped | Paused


class TurnDetector:
    """Per call, stateful: VAD decisions on 20 ms frames -> speech started / turn ended events."""

    def __init__(self, vad: VoiceActivityDetector, config: TurnConfig | None = None,
                 sample_rate_hz: int = INTERNAL_RATE_HZ) -> None:
        if sample_rate_hz not in vad.sample_rates_hz:
            raise AsrError(f"{vad.name} VAD takes {vad.sample_rates_hz} Hz, not {sample_rate_hz} Hz")
        self.vad = vad
        self.config = config or TurnConfig()
        self.sample_rate_hz = sample_rate_hz
        self.last_probability = 0.0
        self.reset()

    @property
    def in_speech(self) -> bool:
        """True while a turn is in progress (between SpeechStarted and TurnEnded/SpeechDropped)."""
        return self._onset_ms is not None

    def reset(self) -> None:
        """Forget everything (new call, or after the agent decided to ignore what was heard)."""
        self.vad.reset()
        self._history: deque[Frame] = deque()  # idle frames: pre-roll plus the current speech run
        self._history_ms = 0.0
        self._run_ms = 0.0  # consecutive speech while idle
        self._run_start_ms = 0.0
        self._onset_ms: float | None = None
        self._turn: list[Frame] = []
        self._turn_ms = 0.0  # from the onset to the end of the latest frame
        self._speech_ms = 0.0
        self._silence_ms = 0.0
        self._last_speech_end_ms = 0.0
        self._peak_rms = 0.0

    def process(self, frame: Frame) -> list[TurnEvent]:
        if frame.sample_rate_hz != self.sample_rate_hz:
            raise FrameError(f"turn detector runs at {self.sample_rate_hz} Hz, "
                             f"got a {frame.sample_rate_hz} Hz frame")
        self.last_probability = self.vad.speech_probability(frame.pcm, frame.sample_rate_hz)
        speech = self.last_probability >= self.config.threshold
        if self._onset_ms is None:
            return self._idle(frame, speech)
        return self._speaking(frame, speech)

    def _idle(self, frame: Frame, speech: bool) -> list[TurnEvent]:
        cfg = self.config
        self._history.append(frame)
        self._history_ms += frame.duration_ms
        if speech:
            if self._run_ms == 0.0:
                self._run_start_ms = frame.timestamp_ms
            self._run_ms += frame.duration_ms
        else:
            self._run_ms = 0.0
        # The pre-roll is counted in frames, not by timestamps: frame times jump when the audio arrives
        # in blocks (the inbound resampler's), and the same audio must give the same turn every time.
        while self._history and self._history_ms > cfg.pre_roll_ms + self._run_ms:
            self._history_ms -= self._history.popleft().duration_ms
        if not speech or self._run_ms < max(cfg.start_speech_ms, frame.duration_ms):
            return []
        onset = self._run_start_ms
        self._turn = list(self._history)
        self._history.clear()
        self._history_ms = 0.0
        self._onset_ms = onset
        self._peak_rms = max(_rms(f) for f in self._turn[-max(1, int(self._run_ms // frame.duration_ms)):])
        self._turn_ms = self._run_ms
        self._speech_ms = self._run_ms
        self._silence_ms = 0.0
        self._last_speech_end_ms = frame.timestamp_ms + frame.duration_ms
        self._run_ms = 0.0
        return [SpeechStarted(onset, join(self._turn), self.sample_rate_hz)]

    def _speaking(self, frame: Frame, speech: bool) -> list[TurnEvent]:
        cfg = self.config
        assert self._onset_ms is not None
        onset = self._onset_ms
        end_of_frame_ms = frame.timestamp_ms + frame.duration_ms
        self._turn_ms += frame.duration_ms
        paused = False
        voice = speech
        if speech and cfg.quiet_level > 0:
            rms = _rms(frame)
            self._peak_rms = max(self._peak_rms, rms)
            voice = rms >= cfg.quiet_level * self._peak_rms
        if voice:
            self._last_speech_end_ms = end_of_frame_ms
        if speech:
            self._speech_ms += frame.duration_ms
            self._silence_ms = 0.0
        else:
            before = self._silence_ms
            self._silence_ms += frame.duration_ms
            paused = (cfg.pause_ms > 0 and before < cfg.pause_ms <= self._silence_ms
                      and self._speech_ms >= cfg.min_speech_ms)
        if self._silence_ms >= cfg.end_of_turn_silence_ms and not speech:
            audio = join(self._turn)
            self._end_turn()
            if self._speech_ms < cfg.min_speech_ms:
                return [SpeechDropped(onset, self._last_speech_end_ms)]
            return [TurnEnded(onset, self._last_speech_end_ms, audio, self.sample_rate_hz)]
        self._turn.append(frame)
        if self._turn_ms >= cfg.max_turn_ms:
            audio = join(self._turn)
            self._end_turn()
            return [TurnEnded(onset, end_of_frame_ms, audio, self.sample_rate_hz, forced=True)]
        if paused:
            return [Paused(onset, self._last_speech_end_ms, join(self._turn), self.sample_rate_hz)]
        return []

    @property
    def silence_ms(self) -> float:
        """Silence since the turn's last speech frame (0 outside a turn)."""
        return self._silence_ms if self._onset_ms is not None else 0.0

    def end_now(self) -> TurnEnded:
        """End the turn in progress here (the words heard already complete it): the TurnEnded the
        silence would have raised later, with the audio so far."""
        if self._onset_ms is None:
            raise AsrError("end_now: no turn in progress")
        onset = self._onset_ms
        audio = join(self._turn)
        self._end_turn()
        return TurnEnded(onset, self._last_speech_end_ms, audio, self.sample_rate_hz)

    def _end_turn(self) -> None:
        self._onset_ms = None
        self._turn = []
        self._history.clear()
        self._history_ms = 0.0
        self._run_ms = 0.0


def _rms(frame: Frame) -> float:
    samples = frame.samples().astype(np.float32)
    return float(np.sqrt(np.mean(samples * samples))) if samples.size else 0.0
