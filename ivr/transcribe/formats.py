"""Rendering one file's result as JSONL, SRT, WebVTT or plain text (UTF-8 strings)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from ivr.transcribe.engine import FileResult, Segment

FORMATS = ("jsonl", "srt", "vtt", "txt")


def parse_formats(spec: str) -> tuple[str, ...]:
    """'jsonl,srt' -> ('jsonl', 'srt'); unknown names raise ValueError naming the valid ones."""
    names = tuple(dict.fromkeys(n.strip().lower() for n in spec.split(",") if n.strip()))
    unknown = [n for n in names if n not in FORMATS]
    if unknown or not names:
        raise ValueError(f"unknown output format {', '.join(unknown) or '(none)'}: "
                         f"choose from {', '.join(FORMATS)}")
    return names


def to_jsonl(result: FileResult, model: str) -> str:
    """A header line (type=file) then one line per segment with its words and their timings."""
    header = {"type": "file", "source": result.path, "duration_s": result.duration_s,
              "language": result.language, "model": model, "segments": len(result.segments)}
    lines = [json.dumps(header, ensure_ascii=False)]
    for seg in result.segments:
        lines.append(json.dumps({
            "type": "segment", "start_s": seg.start_s, "end_s": seg.end_s, "speaker": seg.speaker or None,
            "text": seg.text, "confidence": seg.confidence,
            "words": [{"text": w.text, "start_s": w.start_s, "end_s": w.end_s, "confidence": w.confidence}
                      for w in seg.words], **_emotion(seg)}, ensure_ascii=False))
    return "\n".join(lines) + "\n"


def _emotion(seg: Segment) -> dict[str, Any]:
    """{"emotion": {label, negativity, voice, text}} for a segment that has one (--emotion), else {}."""
    if seg.emotion is None:
        return {}
    return {"emotion": asdict(seg.emotion)}


def _timestamp(seconds: float, decimal: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{decimal}{ms:03d}"


def _cue_text(seg: Segment) -> str:
    return f"{seg.speaker}: {seg.text}" if seg.speaker else seg.text


def _cue_times(seg: Segment) -> tuple[float, float]:
    """Cue end strictly after its start (players drop zero-length cues)."""
    return seg.start_s, max(seg.end_s, seg.start_s + 0.001)


def to_srt(result: FileResult) -> str:
    blocks = []
    for i, seg in enumerate(result.segments, 1):
        start, end = _cue_times(seg)
        blocks.append(f"{i}\n{_timestamp(start, ',')} --> {_timestamp(end, ',')}\n{_cue_text(seg)}\n")
    return "\n".join(blocks)


def to_vtt(result: FileResult) -> str:
    blocks = ["WEBVTT\n"]
    for seg in result.segments:
        start, end = _cue_times(seg)
        text = _cue_text(seg).replace("-->", "->")
        blocks.append(f"{_timestamp(start, '.')} --> {_timestamp(end, '.')}\n{text}\n")
    return "\n".join(blocks)


def to_txt(result: FileResult) -> str:
    """One line per segment; with speakers, 'speaker: text'; with emotion, '[angry 0.72]' before the text
    of a segment that is not neutral."""
    lines = []
    for seg in result.segments:
        mood = seg.emotion
        tag = f"[{mood.label} {mood.negativity:.2f}] " if mood is not None and mood.label != "neutral" else ""
        lines.append(f"{seg.speaker}: {tag}{seg.text}\n" if seg.speaker else f"{tag}{seg.text}\n")
    return "".join(lines)


def render(result: FileResult, fmt: str, model: str) -> str:
    renderers: dict[str, Callable[[FileResult], str]] = {
        "jsonl": lambda r: to_jsonl(r, model), "srt": to_srt, "vtt": to_vtt, "txt": to_txt}
    return renderers[fmt](result)
