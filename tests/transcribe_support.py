"""Shared by the transcription tests: the shared recordings they join, output checks for SRT and WebVTT."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from telephony.audio.audiofile import read_audio, write_wav
from telephony.audio.resample import resample

PROMPTS = {
    "agent-pass.flac": "password",
    "cannot-complete-as-dialed.flac": "dialed",
    "check-number-dial-again.flac": "number",
    "conf-getchannel.flac": "channel",
    "conf-invalidpin.flac": "conference",
}


def manifest(shared: Path) -> dict[str, str]:
    rows = (shared / "speech" / "ivr-prompts" / "manifest.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return dict(r.split("\t", 1) for r in rows)


def joined_recording(shared: Path, names: list[str], path: Path, rate_hz: int = 8000) -> str:
    """Write the prompts one after another with 0.6 s pauses; returns their joined text."""
    texts = manifest(shared)
    pieces = []
    for name in names:
        clip = read_audio(shared / "speech" / "ivr-prompts" / name)
        pieces += [resample(clip.mono(), clip.sample_rate_hz, rate_hz), np.zeros(int(0.6 * rate_hz), np.int16)]
    write_wav(path, np.concatenate(pieces), rate_hz)
    return " ".join(texts[n] for n in names)


def outputs(out: Path) -> dict[str, bytes]:
    """Every output file except the run summary, by relative path."""
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != "transcribe-summary.json"}


SRT_TIME = r"\d\d:\d\d:\d\d,\d\d\d --> \d\d:\d\d:\d\d,\d\d\d"
VTT_TIME = r"\d\d:\d\d:\d\d\.\d\d\d --> \d\d:\d\d:\d\d\.\d\d\d"


def check_srt(text: str) -> int:
    """Numbered cues 1..n, each 'start --> end' with start < end, then text, blank-line separated."""
    blocks = [b for b in text.strip("\n").split("\n\n") if b]
    for n, block in enumerate(blocks, 1):
        lines = block.split("\n")
        assert lines[0] == str(n)
        assert re.fullmatch(SRT_TIME, lines[1]), lines[1]
        start, end = lines[1].split(" --> ")
        assert start < end
        assert lines[2].strip()
    return len(blocks)


def check_vtt(text: str) -> int:
    assert text.startswith("WEBVTT\n\n")
    blocks = [b for b in text.split("\n\n")[1:] if b.strip()]
    for block in blocks:
        lines = block.strip("\n").split("\n")
        assert re.fullmatch(VTT_TIME, lines[0]), lines[0]
        start, end = lines[0].split(" --> ")
        assert start < end
        assert lines[1].strip() and "-->" not in lines[1]
    return len(blocks)
