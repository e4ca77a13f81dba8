"""Speakers and emotion for a transcribed file (`ivr transcribe --diarize`, `--emotion`).

`enrich_file` runs after a file's pieces are decoded, as one more task on a worker (or inline): it
reads the file again, and

- with `diarize`, labels speakers inside each track with the torch-free diarizer (asr.diarize: VAD,
  MFCC statistics, clustering). Every word goes to the speaker whose turn overlaps it most (the
  nearest turn when none does), and a segment whose words change speaker is cut there. Speakers are
  named S1, S2, ... in order of first appearance; with `--channels split` the channel's name comes
  first (caller/S1).
- with `emotion`, gives every segment the emotion of its voice (the acoustic model on that stretch of
  audio) and its words (the text model), fused as in a call (dialog.emotion): label and negativity.

Like the other tasks it never raises for a bad file: the result then carries the reason.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from asr.base import Word
from ivr.transcribe.engine import EngineOptions, FileResult, Segment, segments_from_words, tracks_of
from models.errors import AgentError, ModelMissingError

EMOTION_PAD_S = 0.1
"""Audio kept on each side of a segment's words for its voice emotion."""

_ANALYZER: list[Any] = []
_LOCK = threading.Lock()


@dataclass(frozen=True)
class SegmentEmotion:
    label: str
    """neutral, happy, sad or angry."""
    negativity: float
    """0 .. 1 (mostly anger, some sadness), as the call policy sees it."""
    voice: str | None = None
    """The voice model's label (None: too short, or the voice abstained)."""
    text: str | None = None
    """The text model's label (None: no words)."""


def needs_enrich(options: EngineOptions) -> bool:
    return options.diarize or options.emotion


def emotion_analyzer() -> Any:
    """The process's EmotionAnalyzer (voice and text models), loaded once; ModelMissingError if neither loads."""
    with _LOCK:
        if not _ANALYZER:
            from dialog.emotion.analyzer import EmotionAnalyzer
            from telephony.audio.resample import resample

            analyzer = EmotionAnalyzer.load(resample=resample)
            if analyzer is None:
                raise ModelMissingError("--emotion needs the emotion models in models/emotion (acoustic-emotion.* "
                                        "and the text model); reinstall the project or retrain them with "
                                        "`ivr train acoustic-emotion` / `ivr train text-emotion`")
            _ANALYZER.append(analyzer)
        return _ANALYZER[0]


def enrich_file(result: FileResult, options: EngineOptions) -> FileResult:
    """`result` with speakers and/or emotions added; never raises for a bad file."""
    if not result.ok or not result.segments or not needs_enrich(options):
        return result
    from telephony.audio.audiofile import read_audio

    try:
        clip = read_audio(result.path)
    except (AgentError, MemoryError) as exc:
        return replace(result, segments=(), error=f"cannot be read again for speakers or emotion ({exc})")
    tracks = {name: (samples, clip.sample_rate_hz) for _, name, samples in tracks_of(clip, options.split_channels)}
    segments = list(result.segments)
    if options.diarize:
        segments = diarize_segments(segments, tracks, options.speakers or None)
    if options.emotion:
        analyzer = emotion_analyzer()
        segments = [_with_emotion(seg, tracks, analyzer) for seg in segments]
    return replace(result, segments=tuple(segments))


def diarize_segments(segments: list[Segment], tracks: dict[str, tuple[np.ndarray, int]],
                     num_speakers: int | None) -> list[Segment]:
    """Each track's segments relabelled by the diarizer's turns (cut where the speaker changes)."""
    from asr.diarize import load_diarizer

    diarizer = load_diarizer("mfcc")
    out: list[Segment] = []
    for track, (samples, rate) in tracks.items():
        mine = [s for s in segments if _track_of(s, tracks) == track]
        if not mine:
            continue
        turns = [(t.start_s, t.end_s, t.speaker) for t in diarizer.diarize(samples, rate, num_speakers)]
        prefix = f"{track}/" if track else ""
        out += relabel(mine, turns, prefix)
    out.sort(key=lambda s: (s.start_s, s.speaker))
    return out


def _track_of(seg: Segment, tracks: dict[str, tuple[np.ndarray, int]]) -> str:
    """The track a segment was heard on: its channel's name ('caller', or 'caller/S1' once diarized), or ''."""
    channel = seg.speaker.split("/", 1)[0]
    return channel if channel in tracks else ""


def relabel(segments: list[Segment], turns: list[tuple[float, float, str]], prefix: str = "") -> list[Segment]:
    """Segments whose words carry the speaker of the turn that overlaps them most (or the nearest
    turn), cut where the speaker changes; speakers renamed S1, S2, ... by first appearance."""
    names: dict[str, str] = {}
    out: list[Segment] = []
    for seg in segments:
        words = list(seg.words)
        if not words:
            continue
        labels = [_speaker_of(w, turns) for w in words]
        start = 0
        for i in range(1, len(words) + 1):
            if i == len(words) or labels[i] != labels[start]:
                raw = labels[start]
                if raw not in names:
                    names[raw] = f"S{len(names) + 1}"
                out += segments_from_words(words[start:i], prefix + names[raw])
                start = i
    return out


def _speaker_of(word: Word, turns: list[tuple[float, float, str]]) -> str:
    if not turns:
        return "?"
    overlaps = [max(0.0, min(word.end_s, b) - max(word.start_s, a)) for a, b, _ in turns]
    best = int(np.argmax(overlaps))
    if overlaps[best] > 0.0:
        return turns[best][2]
    middle = (word.start_s + word.end_s) / 2
    distances = [0.0 if a <= middle <= b else min(abs(middle - a), abs(middle - b)) for a, b, _ in turns]
    return turns[int(np.argmin(distances))][2]


def _with_emotion(seg: Segment, tracks: dict[str, tuple[np.ndarray, int]], analyzer: Any) -> Segment:
    samples, rate = tracks[_track_of(seg, tracks)]
    a = max(0, int((seg.start_s - EMOTION_PAD_S) * rate))
    b = min(len(samples), int(np.ceil((seg.end_s + EMOTION_PAD_S) * rate)))
    voice = analyzer.voice(samples[a:b], rate)
    text = analyzer.text(seg.text)
    fused = analyzer.fuse(voice, text)
    emotion = SegmentEmotion(fused.label or "neutral", round(float(fused.negativity), 3),
                             voice.label if voice is not None and voice.weight > 0.0 else None,
                             text.label if text is not None else None)
    return replace(seg, emotion=emotion)
