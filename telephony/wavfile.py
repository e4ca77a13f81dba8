"""The WAV-file transport: a simulated caller for `ivr call`, speaking from files or a script.

A script is a list of caller turns. A turn starts when the agent has spoken and then been quiet
for `gap_ms` (the caller answers the prompt), or `barge_in_after_ms` after the agent starts
talking (the caller interrupts). Turn kinds: `wav` (a recording), `say` (text spoken by TTS),
`dtmf` (keys), `silence_ms` (say nothing for a while), `hangup`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from telephony.audio.audiofile import read_audio
from telephony.audio.frame import Frame, FrameBuffer
from telephony.audio.resample import resample
from telephony.errors import TelephonyError
from telephony.transport import CallTransport
from telephony.yamlfile import read_yaml

AGENT_SPEECH_RMS = 300.0
"""A frame of agent audio louder than this (int16 RMS) counts as the agent talking."""
DTMF_INTERVAL_MS = 200

TURN_KEYS = {"wav", "say", "dtmf", "silence_ms", "hangup", "gap_ms", "barge_in_after_ms"}


@dataclass(frozen=True)
class CallerTurn:
    wav: str = ""
    say: str = ""
    dtmf: str = ""
    silence_ms: int = 0
    hangup: bool = False
    gap_ms: int = 1000
    """Quiet after the agent's prompt before this turn starts."""
    barge_in_after_ms: int | None = None
    """Start this many ms after the agent starts talking, interrupting it."""


def load_script(path: str | Path) -> list[CallerTurn]:
    """A caller script in YAML: `turns:` a list of turns; relative WAV paths are from the script."""
    p = Path(path)
    data = read_yaml(p, "caller script")
    items = data.get("turns") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise TelephonyError(f"{p}: a caller script needs a non-empty list of turns")
    turns = []
    for i, item in enumerate(items, 1):
        if isinstance(item, str):
            item = {"say": item}
        if not isinstance(item, dict):
            raise TelephonyError(f"{p}: turn {i} must be a mapping or a text")
        unknown = sorted(set(item) - TURN_KEYS)
        if unknown:
            raise TelephonyError(f"{p}: turn {i}: unknown key(s) {', '.join(unknown)}; "
                                 f"use {', '.join(sorted(TURN_KEYS))}")
        if "wav" in item:
            wav = Path(str(item["wav"]))
            item = {**item, "wav": str(wav if wav.is_absolute() else p.parent / wav)}
        turns.append(CallerTurn(**item))
    return turns


class ScriptedCaller(CallTransport):
    """Plays caller turns into the call at the right moments and records what the agent says."""

    def __init__(self, turns: list[CallerTurn], sample_rate_hz: int = 8000,
                 speak: Callable[[str, int], np.ndarray] | None = None) -> None:
        self.sample_rate_hz = sample_rate_hz
        self._turns = list(turns)
        self._speak = speak
        self._audio = FrameBuffer(sample_rate_hz)
        self._pending_keys: list[tuple[float, str]] = []
        self._quiet_until_ms = 0.0
        self._hung_up = False
        self._agent_started_ms: float | None = None
        self._agent_quiet_since_ms: float | None = None
        self._agent_spoke = False
        self._now_ms = 0.0
        self.agent_frames: list[Frame] = []
        self.started: list[tuple[float, CallerTurn]] = []
        """The turns begun so far, each with the call time it began at."""
        self.outcome = ""
        self.transfer_target = ""
        for turn in self._turns:  # fail before the call starts, not in the middle of it
            if turn.wav:
                read_audio(turn.wav)
            if turn.say and speak is None:
                raise TelephonyError("caller turns with 'say' need a TTS voice")

    @property
    def caller_hung_up(self) -> bool:
        return self._hung_up

    @property
    def done(self) -> bool:
        return not self._turns and not len(self._audio) and not self._pending_keys

    def insert_turn(self, turn: CallerTurn) -> None:
        """Play `turn` next, before the rest of the script (a caller answering what the agent asked)."""
        self._turns.insert(0, turn)

    def _start_next_turn(self, now_ms: float) -> None:
        turn = self._turns.pop(0)
        self.started.append((now_ms, turn))
        if turn.hangup:
            self._hung_up = True
        elif turn.wav:
            clip = read_audio(turn.wav)
            self._audio.push(resample(clip.mono(), clip.sample_rate_hz, self.sample_rate_hz))
        elif turn.say:
            assert self._speak is not None
            self._audio.push(self._speak(turn.say, self.sample_rate_hz))
        elif turn.dtmf:
            self._pending_keys = [(now_ms + i * DTMF_INTERVAL_MS, k) for i, k in enumerate(turn.dtmf)]
        self._quiet_until_ms = now_ms + turn.silence_ms
        self._agent_spoke = False
        self._agent_started_ms = None

    def _turn_due(self, now_ms: float) -> bool:
        if not self._turns or len(self._audio) or self._pending_keys or now_ms < self._quiet_until_ms:
            return False
        turn = self._turns[0]
        if turn.barge_in_after_ms is not None:
            return self._agent_started_ms is not None and now_ms - self._agent_started_ms >= turn.barge_in_after_ms
        quiet_ms = now_ms - self._agent_quiet_since_ms if self._agent_quiet_since_ms is not None else 0.0
        return self._agent_spoke and quiet_ms >= turn.gap_ms

    def read(self, now_ms: float) -> Frame | None:
        self._now_ms = now_ms
        if self._turn_due(now_ms):
            self._start_next_turn(now_ms)
        frame = self._audio.pop(now_ms, pad=True)
        return frame

    def pressed_keys(self) -> list[str]:
        due = [k for t, k in self._pending_keys if t <= self._now_ms]
        self._pending_keys = [(t, k) for t, k in self._pending_keys if t > self._now_ms]
        return due

    def write(self, frame: Frame) -> None:
        self.agent_frames.append(frame)
        samples = frame.samples().astype(np.float64)
        loud = samples.size > 0 and float(np.sqrt(np.mean(samples ** 2))) > AGENT_SPEECH_RMS
        if loud and not len(self._audio):  # the agent talking while the caller talks is not an answer
            if self._agent_started_ms is None:
                self._agent_started_ms = frame.timestamp_ms
            self._agent_spoke = True
            self._agent_quiet_since_ms = None
        elif self._agent_quiet_since_ms is None:
            self._agent_quiet_since_ms = frame.timestamp_ms

    def end(self, outcome: str, transfer_target: str = "") -> None:
        self.outcome, self.transfer_target = outcome, transfer_target


class RecordingCaller(ScriptedCaller):
    """A caller recording played into the line from the first moment of the call (`ivr call --raw`)."""

    def __init__(self, wav: str | Path, sample_rate_hz: int = 8000) -> None:
        super().__init__([], sample_rate_hz)
        clip = read_audio(wav)
        self._audio.push(resample(clip.mono(), clip.sample_rate_hz, sample_rate_hz))
