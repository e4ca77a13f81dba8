"""faster-whisper on real 8 kHz IVR prompts: accuracy, word timings, any input shape, missing models."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from asr.base import RecognitionOptions
from asr.factory import FallbackRecognizer, load_recognizer
from asr.whisper import WhisperRecognizer
from ivr.wer import wer
from models.errors import AgentError, ModelMissingError
from telephony.audio.audiofile import read_audio
from telephony.audio.frame import split
from telephony.audio.resample import resample
from tests.fakes import BrokenRecognizer

PROMPTS = ["agent-pass.flac", "cannot-complete-as-dialed.flac", "check-number-dial-again.flac",
           "auth-incorrect.flac", "agent-newlocation.flac"]


@pytest.fixture(scope="module")
def manifest(shared_data):
    root = shared_data / "speech" / "ivr-prompts"
    with (root / "manifest.tsv").open(encoding="utf-8") as f:
        texts = {row["path"]: row["text"] for row in csv.DictReader(f, delimiter="\t")}
    return {name: (root / name, texts[name]) for name in PROMPTS}


@pytest.fixture(scope="module")
def whisper():
    return WhisperRecognizer("tiny.en")


@pytest.mark.models
def test_prompts_are_recognized_with_low_wer(whisper, manifest):
    refs, hyps = [], []
    for path, text in manifest.values():
        clip = read_audio(path)
        assert clip.sample_rate_hz == 8000
        result = whisper.transcribe(clip.mono(), clip.sample_rate_hz)
        assert result.is_final and result.text == result.text.strip()
        assert 0.0 < result.confidence <= 1.0
        refs.append(text)
        hyps.append(result.text)
    assert wer(refs, hyps) <= 0.3, list(zip(refs, hyps, strict=True))


@pytest.mark.models
def test_word_timings_are_monotonic_and_inside_the_audio(whisper, manifest):
    path, _ = manifest["agent-pass.flac"]
    clip = read_audio(path)
    result = whisper.transcribe(clip.mono(), clip.sample_rate_hz)
    assert len(result.words) >= 5
    last_end = 0.0
    for word in result.words:
        assert word.text and word.text == word.text.strip()
        assert last_end <= word.start_s <= word.end_s <= clip.duration_s + 1e-6
        assert 0.0 <= word.confidence <= 1.0
        last_end = word.end_s


@pytest.mark.models
def test_stream_takes_any_rate_in_20_ms_frames_and_stereo_through_transcribe(whisper, manifest):
    path, text = manifest["cannot-complete-as-dialed.flac"]
    clip = read_audio(path)
    samples_44k = resample(clip.mono(), clip.sample_rate_hz, 44100)
    stream = whisper.stream(44100)
    for frame in split(samples_44k, 44100):
        assert stream.accept(frame.pcm) is None  # no partials from Whisper
    streamed = stream.finish()
    assert wer([text], [streamed.text]) <= 0.3
    with pytest.raises(AgentError):
        stream.accept(b"\0\0")
    stereo = np.stack([clip.mono(), clip.mono()], axis=1)
    assert wer([text], [whisper.transcribe(stereo, clip.sample_rate_hz).text]) <= 0.3


@pytest.mark.models
def test_silence_and_empty_streams_give_an_empty_transcript(whisper):
    assert whisper.stream(8000).finish().text == ""
    result = whisper.transcribe(np.zeros(8000, dtype=np.int16), 8000)
    assert result.is_final and result.confidence <= 1.0


MENU_PHRASES = ("balance", "my balance", "lost card", "stolen card", "opening hours", "agent", "representative",
                "goodbye", "bye bye", "that's all", "yes", "no")


@pytest.mark.models
def test_a_short_answer_with_menu_phrases_is_heard_as_said_every_time(whisper, shared_data):
    clip = read_audio(shared_data / "speech" / "fsdd" / "1_jackson_0.flac")  # a caller saying "one"
    options = RecognitionOptions(phrases=MENU_PHRASES)
    results = {whisper.transcribe(clip.mono(), clip.sample_rate_hz, options).text for _ in range(3)}
    assert len(results) == 1  # deterministic: no sampling fallback
    assert results.pop().lower().strip(" .!") == "one"
    assert whisper.capabilities.vocabulary_biasing == ""  # phrases are not hotwords unless asked


@pytest.mark.models
def test_hotwords_when_asked_for_keep_long_prompts_right(manifest):
    biased = WhisperRecognizer("tiny.en", bias_vocabulary=True)
    assert biased.capabilities.vocabulary_biasing == "hotwords"
    path, text = manifest["check-number-dial-again.flac"]
    clip = read_audio(path)
    result = biased.transcribe(clip.mono(), clip.sample_rate_hz, RecognitionOptions(phrases=("dial", "number")))
    assert wer([text], [result.text]) <= 0.3


@pytest.mark.models
def test_fallback_recognizer_uses_the_secondary_when_the_primary_fails(whisper, manifest):
    path, text = manifest["agent-pass.flac"]
    clip = read_audio(path)
    for broken in (BrokenRecognizer("accept"), BrokenRecognizer("finish"), BrokenRecognizer("stream")):
        result = FallbackRecognizer(broken, whisper).transcribe(clip.mono(), clip.sample_rate_hz)
        assert wer([text], [result.text]) <= 0.3, broken.fail_on


def test_missing_model_path_is_a_helpful_error(tmp_path):
    with pytest.raises(ModelMissingError, match="CTranslate2"):
        load_recognizer("whisper", str(tmp_path / "no-such-model"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelMissingError, match="model.bin"):
        WhisperRecognizer(str(tmp_path / "empty"))


def test_unknown_backend_lists_the_valid_ones():
    with pytest.raises(AgentError, match="whisper, vosk"):
        load_recognizer("nonsense")
