"""Vosk streaming on Korean speech synthesized with espeak-ng: partials before the final, grammar biasing."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from asr.base import RecognitionOptions, Transcript
from asr.factory import load_recognizer
from asr.vosk_asr import VoskRecognizer, supports_grammar
from models.errors import ModelMissingError
from telephony.audio.audiofile import read_audio
from telephony.audio.frame import split
from telephony.audio.resample import resample

KOREAN_TEXT = "안녕하세요. 계좌 잔액을 확인하고 싶습니다. 카드를 분실했어요."
GRAMMAR = ("계좌 잔액", "카드 분실", "상담원")


@pytest.fixture(scope="module")
def korean_speech(tmp_path_factory):
    """(int16 samples, rate) of Korean speech made by espeak-ng at test time."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.skip("espeak-ng is not installed (apt-get install -y espeak-ng): no Korean speech to test with")
    wav = tmp_path_factory.mktemp("korean") / "ko.wav"
    subprocess.run([espeak, "-v", "ko", "-s", "140", "-w", str(wav), KOREAN_TEXT], check=True, timeout=60)
    clip = read_audio(wav)
    return clip.mono(), clip.sample_rate_hz


@pytest.fixture(scope="module")
def vosk_ko():
    pytest.importorskip("vosk", reason="the vosk extra is not installed: pip install 'ivr-agent[vosk]'")
    return load_recognizer("vosk", "ko")


def stream_frames(recognizer, samples, rate_hz, options=None) -> tuple[list[Transcript], Transcript]:
    stream = recognizer.stream(rate_hz, options)
    partials = [p for f in split(samples, rate_hz) if (p := stream.accept(f.pcm)) is not None]
    return partials, stream.finish()


@pytest.mark.models
@pytest.mark.parametrize("rate_hz", [8000, 16000])
def test_returns_partial_results_before_the_final_one_on_a_streamed_file(vosk_ko, korean_speech, rate_hz):
    samples, source_rate_hz = korean_speech
    partials, final = stream_frames(vosk_ko, resample(samples, source_rate_hz, rate_hz), rate_hz)
    assert any(p.text for p in partials), "no partial transcript arrived while streaming"
    assert all(not p.is_final for p in partials)
    assert final.is_final and final.text.strip()
    assert final.words and 0.0 < final.confidence <= 1.0
    assert all(a.start_s <= b.start_s for a, b in zip(final.words, final.words[1:], strict=False))


@pytest.mark.models
def test_grammar_biasing_keeps_to_the_phrases_and_never_crashes(vosk_ko, korean_speech):
    samples, rate_hz = korean_speech
    assert vosk_ko.grammar_supported
    _, final = stream_frames(vosk_ko, samples, rate_hz, RecognitionOptions(phrases=GRAMMAR))
    allowed = {w for phrase in GRAMMAR for w in phrase.split()} | {"[unk]"}
    assert final.text.strip()
    assert set(final.text.split()) <= allowed
    # Phrases the model cannot spell are left out; with none left, recognition is free.
    _, free = stream_frames(vosk_ko, samples, rate_hz, RecognitionOptions(phrases=("zzqx", "Balance")))
    assert free.is_final and free.text.strip()


@pytest.mark.models
def test_model_is_loaded_once_per_process(vosk_ko):
    again = VoskRecognizer("ko")
    assert again._model is vosk_ko._model


def test_static_graph_models_are_detected(tmp_path):
    (tmp_path / "graph").mkdir()
    (tmp_path / "graph" / "HCLG.fst").write_bytes(b"")
    assert not supports_grammar(tmp_path)


def test_missing_vosk_model_or_package_names_the_fix(tmp_path, monkeypatch):
    pytest.importorskip("vosk")
    with pytest.raises(ModelMissingError, match="Vosk model"):
        load_recognizer("vosk", str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelMissingError, match="Vosk model"):
        load_recognizer("vosk", str(tmp_path / "empty"))
    monkeypatch.setitem(sys.modules, "vosk", None)
    with pytest.raises(ModelMissingError, match=r"ivr-agent\[vosk\]"):
        load_recognizer("vosk", "ko")


@pytest.mark.models
def test_silence_only_gives_an_empty_final(vosk_ko):
    _, final = stream_frames(vosk_ko, np.zeros(8000, dtype=np.int16), 8000)
    assert final.is_final and final.text == "" and final.confidence == 0.0
