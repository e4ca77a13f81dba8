"""The prompt cache on its own: keys, atomic files, and damaged entries that must not end a call."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tts.base import SpeechAudio
from tts.cache import PromptCache, no_digits


def tone(rate_hz: int = 22050, seconds: float = 0.2) -> SpeechAudio:
    """A plain test signal, not speech: these tests are about files, not synthesis."""
    t = np.arange(int(rate_hz * seconds)) / rate_hz
    return SpeechAudio((8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16), rate_hz)


def test_keys_differ_by_engine_voice_text_and_rate() -> None:
    base = PromptCache.key("piper", "en_US-joe-medium", "Hello.", 22050)
    others = {
        PromptCache.key("espeak-ng", "en_US-joe-medium", "Hello.", 22050),
        PromptCache.key("piper", "en_US-lessac-medium", "Hello.", 22050),
        PromptCache.key("piper", "en_US-joe-medium", "Hello!", 22050),
        PromptCache.key("piper", "en_US-joe-medium", "Hello.", 16000),
        PromptCache.key("piper", "en_US-joe-mediumHello.", "", 22050),
    }
    assert base not in others and len(others) == 5
    assert base == PromptCache.key("piper", "en_US-joe-medium", "Hello.", 22050)
    assert len(base) == 64


def test_round_trip_and_text_not_on_disk(tmp_path) -> None:
    cache = PromptCache(tmp_path)
    key = PromptCache.key("piper", "v", "Your PIN is secret.", 22050)
    assert cache.get(key) is None
    audio = tone()
    path = cache.put(key, audio)
    assert path is not None and path.exists()
    got = cache.get(key, 22050)
    assert got is not None and np.array_equal(got.samples, audio.samples)
    assert got.sample_rate_hz == 22050
    assert all("PIN" not in p.name for p in tmp_path.rglob("*"))
    assert not list(tmp_path.rglob(".tmp-*")), "temporary files were left behind"


@pytest.mark.parametrize("content", [b"", b"RIFF", b"not audio at all", b"RIFF\x24\x00\x00\x00WAVEfmt "])
def test_damaged_entry_is_a_miss_and_removed(tmp_path, content: bytes) -> None:
    cache = PromptCache(tmp_path)
    key = PromptCache.key("piper", "v", "Hello.", 22050)
    cache.path(key).parent.mkdir(parents=True)
    cache.path(key).write_bytes(content)
    assert cache.get(key, 22050) is None
    assert not cache.path(key).exists()
    cache.put(key, tone())
    assert cache.get(key, 22050) is not None


def test_entry_at_another_rate_is_a_miss(tmp_path) -> None:
    cache = PromptCache(tmp_path)
    key = PromptCache.key("piper", "v", "Hello.", 22050)
    cache.put(key, tone(16000))
    assert cache.get(key, 22050) is None


def test_empty_audio_is_not_stored(tmp_path) -> None:
    cache = PromptCache(tmp_path)
    key = PromptCache.key("piper", "v", "", 22050)
    assert cache.put(key, SpeechAudio(np.zeros(0, np.int16), 22050)) is None
    assert cache.get(key) is None


def test_concurrent_writers_leave_one_whole_file(tmp_path) -> None:
    cache = PromptCache(tmp_path)
    key = PromptCache.key("piper", "v", "Hello.", 22050)
    audio = tone(seconds=1.0)
    threads = [threading.Thread(target=cache.put, args=(key, audio)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = cache.get(key, 22050)
    assert got is not None and np.array_equal(got.samples, audio.samples)
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [f"{key}.wav"]


def test_default_policy_skips_digits() -> None:
    assert no_digits("Thank you for calling.")
    assert not no_digits("Your balance is 42 dollars.")
