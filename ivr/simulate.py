"""A whole simulated call from WAV files or a caller script: the code behind `ivr call`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ivr.call.driver import CallResult, run_call
from ivr.call.events import BargeIn, CallEvent, ReplyStarted
from ivr.call.services import Services
from ivr.call.session import CallSession
from telephony.audio.audiofile import write_wav
from telephony.audio.frame import join
from telephony.clock import Clock, VirtualClock, WallClock
from telephony.wavfile import CallerTurn, RecordingCaller, ScriptedCaller
from tts.stream import speak


@dataclass(frozen=True)
class SimulatedCall:
    result: CallResult
    session: CallSession
    caller: ScriptedCaller
    out_dir: Path | None

    @property
    def events(self) -> list[CallEvent]:
        return self.session.log.events

    def latencies_ms(self) -> list[float]:
        return [e.latency_ms for e in self.session.log.of_type(ReplyStarted)]


def caller_voice(services: Services) -> Any:
    """Text caller turns are spoken with the agent's TTS engine."""
    synth = services.synthesizer

    def say(text: str, rate_hz: int) -> np.ndarray:
        pieces = list(speak(synth, text, rate_hz))
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int16)

    return say


def simulate_call(services: Services, turns: list[CallerTurn] | None = None, raw_wav: str | Path | None = None,
                  out_dir: Path | None = None, fast: bool = True, sample_rate_hz: int | None = None,
                  listener: Any = None, caller: ScriptedCaller | None = None,
                  prepare: Callable[[CallSession], Any] | None = None) -> SimulatedCall:
    """`caller`: a ready transport (e.g. the conversation tests' reactive caller) instead of `turns`;
    `prepare`: called with the session before the call starts (e.g. to tap its audio)."""
    rate = sample_rate_hz or services.config.call.sample_rate_hz
    if caller is not None:
        rate = caller.sample_rate_hz
    elif raw_wav is not None:
        caller = RecordingCaller(raw_wav, rate)
    else:
        caller = ScriptedCaller(turns or [], rate, speak=caller_voice(services))
    clock: Clock = VirtualClock() if fast else WallClock()
    session = CallSession(services, clock, rate, out_dir, call_id=uuid.uuid4().hex[:12])
    if listener is not None:
        session.log.subscribe(listener)
    if prepare is not None:
        prepare(session)
    result = run_call(session, caller, clock)
    if out_dir is not None:
        write_outputs(out_dir, session, caller, result)
    return SimulatedCall(result, session, caller, out_dir)


def write_outputs(out_dir: Path, session: CallSession, caller: ScriptedCaller, result: CallResult) -> None:
    write_wav(out_dir / "agent.wav", join(caller.agent_frames), session.sample_rate_hz)
    lines = [asdict(line) for line in session.transcript if line.text]
    (out_dir / "transcript.json").write_text(json.dumps(lines, indent=2, ensure_ascii=False), encoding="utf-8")
    text = "\n".join(f"[{line['start_ms'] / 1000:7.2f}s] {line['speaker']}: {line['text']}" for line in lines)
    (out_dir / "transcript.txt").write_text(text + "\n", encoding="utf-8")
    latencies = [e.latency_ms for e in session.log.of_type(ReplyStarted)]
    summary = {"call_id": session.call_id, **asdict(result), "voice_to_voice_ms": latencies,
               "barge_ins": len(session.log.of_type(BargeIn))}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
