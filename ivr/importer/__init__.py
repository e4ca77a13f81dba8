"""`ivr import FILE...`: recordings made elsewhere into the call store, transcribed and split by speaker.

Stereo recordings take speakers from the channels (left: caller, right: agent, the convention of the
agent's own recordings); mono recordings are diarized (asr.diarize). Of two diarized speakers, the one who
speaks first is taken as the agent (an agent greets first); further speakers are `speaker3`, ... Each
speaker turn is transcribed (Whisper tiny.en by default) and the call goes through the store's writer,
so its texts are redacted and its audio encrypted like a live call's. No plain copy is left on disk.
A mono recording is stored as it is, one channel (not copied into two). The call's start is the
recording's own: its date tag, else a date and time in its file name, else its modification time less
its length (a recorder writes the file until the call ends). Each caller turn gets the emotion and intent a
live call's would (ivr.importer.analysis), when a `TurnAnalysis` is given (`ivr import` loads one).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from asr.base import SpeechRecognizer
from asr.diarize import Diarizer, Segment, merge_segments
from asr.diarize.mfcc import speech_regions, to_float16k
from ivr.call.events import (
    CallEnded,
    CallEvent,
    CallStarted,
    Imported,
    PromptFinished,
    Said,
    SpeechStarted,
    SpeechStopped,
    Transcript,
)
from ivr.errors import IvrError
from ivr.importer.analysis import TurnAnalysis
from ivr.store.db import Store
from ivr.store.writer import StoreWriter
from telephony.audio.audiofile import read_audio, write_wav

log = logging.getLogger(__name__)

RATE_HZ = 16000
TURN_GAP_S = 0.8
"""Segments of one speaker closer than this are one turn (and one recognition)."""


@dataclass(frozen=True)
class ImportedTurn:
    speaker: str
    start_s: float
    end_s: float
    text: str
    confidence: float
    words: list[dict[str, Any]]
    analysis: list[CallEvent] = field(default_factory=list)
    """The turn's emotion and intent events (a caller turn analysed by a TurnAnalysis)."""


_NAME_TIME = re.compile(r"(20\d\d)-?(\d\d)-?(\d\d)[T_ -]?(\d\d)[-:h]?(\d\d)[-:m]?(\d\d)")


def recording_started(path: Path, duration_s: float) -> datetime:
    """When the recording began (UTC; a time without a zone is taken as UTC)."""
    import soundfile as sf

    stamps: list[str] = []
    try:
        with sf.SoundFile(str(path)) as f:
            stamps.append(f.date or "")
    except (RuntimeError, sf.LibsndfileError):
        pass
    match = _NAME_TIME.search(path.stem)
    if match:
        stamps.append("{}-{}-{}T{}:{}:{}".format(*match.groups()))
    for stamp in stamps:
        try:
            when = datetime.fromisoformat(stamp.strip().replace("Z", "+00:00"))
        except ValueError:
            continue
        return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return datetime.fromtimestamp(path.stat().st_mtime, UTC) - timedelta(seconds=duration_s)


def call_id_for(path: Path) -> str:
    """Stable per file content: importing the same recording again replaces its call."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in path.stem)[:40]
    return f"import-{stem}-{digest}"


def speaker_segments(samples: np.ndarray, rate_hz: int, diarizer: Diarizer | None,
                     num_speakers: int | None = 2) -> tuple[list[Segment], str]:
    """(segments labelled caller/agent/speakerN, how they were found: 'channels' or the diarizer's name)."""
    if samples.ndim == 2 and samples.shape[1] >= 2:
        segments = []
        for channel, speaker in ((0, "caller"), (1, "agent")):
            audio = to_float16k(samples[:, channel], rate_hz)
            segments += [Segment(a, b, speaker) for a, b in speech_regions(audio)]
        return merge_segments(sorted(segments, key=lambda s: s.start_s), TURN_GAP_S), "channels"
    if diarizer is None:
        from asr.diarize import load_diarizer

        diarizer = load_diarizer("mfcc")
    found = diarizer.diarize(samples, rate_hz, num_speakers)
    order: list[str] = []
    for seg in found:
        if seg.speaker not in order:
            order.append(seg.speaker)
    names = {label: ("agent" if i == 0 else "caller" if i == 1 else f"speaker{i + 1}")
             for i, label in enumerate(order)}
    return merge_segments([Segment(s.start_s, s.end_s, names[s.speaker]) for s in found], TURN_GAP_S), diarizer.name


def turn_audio(samples: np.ndarray, rate_hz: int, speaker: str, start_s: float, end_s: float) -> np.ndarray:
    """A speaker's stretch of the recording: from their channel (stereo) or the one channel (mono)."""
    channel = samples[:, 0 if speaker == "caller" else 1] if samples.ndim == 2 else samples
    return channel[int(start_s * rate_hz):int(end_s * rate_hz)]


def transcribe_turns(samples: np.ndarray, rate_hz: int, segments: list[Segment],
                     recognizer: SpeechRecognizer) -> list[ImportedTurn]:
    turns = []
    for seg in segments:
        piece = turn_audio(samples, rate_hz, seg.speaker, seg.start_s, seg.end_s)
        if piece.size < rate_hz // 10:
            continue
        result = recognizer.transcribe(piece, rate_hz)
        if not result.text.strip():
            continue
        words = [{"text": w.text, "start_s": round(seg.start_s + w.start_s, 3),
                  "end_s": round(seg.start_s + w.end_s, 3), "confidence": w.confidence} for w in result.words]
        turns.append(ImportedTurn(seg.speaker, seg.start_s, seg.end_s, result.text.strip(), result.confidence,
                                  words))
    return turns


def analyse_turns(samples: np.ndarray, rate_hz: int, turns: list[ImportedTurn],
                  analysis: TurnAnalysis) -> list[ImportedTurn]:
    """The turns with each caller-side turn's emotion and intent events (the agent's turns as they are)."""
    out = []
    for turn in turns:
        if turn.speaker != "agent":
            audio = turn_audio(samples, rate_hz, turn.speaker, turn.start_s, turn.end_s)
            turn = dataclasses.replace(turn, analysis=analysis.events(audio, rate_hz, turn.text,
                                                                      round(turn.end_s * 1000, 1)))
        out.append(turn)
    return out


def call_events(call_id: str, rate_hz: int, turns: list[ImportedTurn], duration_s: float,
                how: str, analysis: TurnAnalysis | None = None) -> list[CallEvent]:
    """The event log a live call with these turns would have written."""
    imported = Imported(how) if analysis is None else Imported(how, analysis.emotion_from, analysis.intent_from)
    events: list[CallEvent] = [CallStarted(call_id, rate_hz), imported]
    for turn in turns:
        start, end = round(turn.start_s * 1000, 1), round(turn.end_s * 1000, 1)
        if turn.speaker == "agent":
            events += [Said(turn.text, False, t_ms=start), PromptFinished(t_ms=end)]
        else:  # the caller, or a further speaker (stored as a caller-side turn)
            speaker = turn.speaker if turn.speaker != "caller" else None
            events += [SpeechStarted(start, t_ms=start), SpeechStopped(start, end, t_ms=end),
                       Transcript(turn.text, round(turn.confidence, 3), speaker, t_ms=end), *turn.analysis]
    events.append(CallEnded("imported", "imported recording", "", "", t_ms=round(duration_s * 1000, 1)))
    return events


def import_recording(store: Store, path: Path, recognizer: SpeechRecognizer, diarizer: Diarizer | None = None,
                     num_speakers: int | None = 2, caller: str | None = None,
                     analysis: TurnAnalysis | None = None) -> tuple[str, str, int]:
    """Store one recording; returns (call id, how speakers were found, turns stored). `analysis`: the
    models that give caller turns their emotion and intent (None: the call has neither)."""
    clip = read_audio(path)
    samples, rate = clip.samples, clip.sample_rate_hz
    segments, how = speaker_segments(samples, rate, diarizer, num_speakers)
    turns = transcribe_turns(samples, rate, segments, recognizer)
    if analysis is not None:
        turns = analyse_turns(samples, rate, turns, analysis)
    call_id = call_id_for(path)
    events = call_events(call_id, rate, turns, clip.duration_s, how, analysis)
    started = recording_started(path, clip.duration_s)
    writer = StoreWriter(store, source="import", caller=caller, background=False)
    batch = [(started + timedelta(milliseconds=e.t_ms), e) for e in events]
    transcript = [{"speaker": "caller", "start_ms": t.start_s * 1000, "end_ms": t.end_s * 1000, "text": t.text,
                   "words": t.words} for t in turns if t.speaker != "agent"]
    with tempfile.TemporaryDirectory(prefix="ivr-import-") as tmp:  # the store's WAV, removed at once
        kept = samples[:, :2] if samples.ndim == 2 else samples  # mono stays one channel
        wav = write_wav(Path(tmp) / "recording.wav", kept, rate)
        writer.apply([*batch, ("finish", transcript, wav)])
    if writer.failed or not writer.finished:
        raise IvrError(f"{path}: could not be stored (see the log)")
    return call_id, how, len(turns)
