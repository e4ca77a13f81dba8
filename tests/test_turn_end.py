"""The bundled end-of-turn model (Smart Turn v3.2) on a real synthesized caller turn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from asr.turn_end import FRAMES, MODEL_RATE_HZ, SmartTurn, model_path
from telephony.audio.resample import resample

pytestmark = pytest.mark.models
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model() -> SmartTurn:
    return SmartTurn()


@pytest.fixture(scope="module")
def sentence() -> np.ndarray:
    from tts.factory import load_synthesizer

    speech = load_synthesizer("piper", "").synthesize("I'd like to check the balance of my current account, please.")
    audio = resample(speech.samples, speech.sample_rate_hz, MODEL_RATE_HZ).astype(np.float32) / 32768.0
    return np.concatenate([audio, np.zeros(MODEL_RATE_HZ // 5, dtype=np.float32)])  # a 200 ms pause after it


def test_the_model_is_found_in_its_package_with_its_license_noted():
    path = model_path()
    assert path.stat().st_size > 8_000_000 and (REPO / "models" / "turn" / "LICENSE-smart-turn").is_file()


def test_a_finished_sentence_followed_by_a_pause_reads_as_complete(model, sentence):
    assert model.probability(sentence) > 0.8


def test_features_are_the_last_eight_seconds_with_silence_in_front(model, sentence):
    short = model.features(sentence)
    assert short.shape == (80, FRAMES)
    assert np.allclose(short[:, :100], short[:, :1])  # the padding in front is silence: flat in time
    long = np.concatenate([np.random.default_rng(0).normal(0, 0.1, 10 * MODEL_RATE_HZ).astype(np.float32), sentence])
    assert np.allclose(model.features(long)[:, -200:], short[:, -200:], atol=0.2)  # only the end is looked at


def test_no_audio_is_not_a_finished_turn(model):
    assert model.probability(np.zeros(0, dtype=np.float32)) == 0.0
