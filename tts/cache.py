"""Synthesized sentences kept on disk as WAV files, so fixed prompts are synthesized once.

Files are named by a sha256 of (engine, voice, sample rate, text): the text is not stored in plain,
but the audio speaks it, so by default sentences with digits (amounts, account and phone numbers,
dates) are not cached at all.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from telephony.audio.audiofile import read_audio, write_wav
from telephony.errors import AudioFileError
from tts._audio import concatenate
from tts.base import SpeechAudio, Synthesizer
from tts.sentences import split_sentences

_LOG = logging.getLogger(__name__)
_DIGIT = re.compile(r"\d")


def no_digits(sentence: str) -> bool:
    """The default cache policy: cache sentences without digits (which are likely personal data)."""
    return _DIGIT.search(sentence) is None


def cache_everything(sentence: str) -> bool:
    return True


class PromptCache:
    """A directory of WAV files, one per (engine, voice, sample rate, text).

    Safe across threads and processes: a reader sees a whole file or none.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory).expanduser()
        self.directory.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key(engine: str, voice: str, text: str, sample_rate_hz: int) -> str:
        payload = json.dumps([engine, voice, int(sample_rate_hz), text], ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.wav"

    def get(self, key: str, sample_rate_hz: int | None = None) -> SpeechAudio | None:
        """The cached audio, or None when absent, unreadable (then removed) or at another rate."""
        path = self.path(key)
        if not path.exists():
            return None
        try:
            clip = read_audio(path)
        except (AudioFileError, OSError):
            _LOG.warning("prompt cache: unreadable entry %s removed", key[:12])
            self._remove(path)
            return None
        if clip.channels != 1 or (sample_rate_hz is not None and clip.sample_rate_hz != sample_rate_hz):
            _LOG.warning("prompt cache: entry %s has the wrong format, removed", key[:12])
            self._remove(path)
            return None
        return SpeechAudio(clip.samples, clip.sample_rate_hz)

    def put(self, key: str, audio: SpeechAudio) -> Path | None:
        """Stores audio atomically (write to a temporary file, then rename); empty audio is not stored."""
        if audio.samples.size == 0:
            return None
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".wav", dir=path.parent)
        os.close(fd)
        try:
            write_wav(tmp_name, audio.samples.astype(np.int16, copy=False), audio.sample_rate_hz)
            os.replace(tmp_name, path)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            _LOG.warning("prompt cache: cannot store entry %s (%s)", key[:12], reason)
            self._remove(Path(tmp_name))
            return None
        return path

    @staticmethod
    def _remove(path: Path) -> None:
        with contextlib.suppress(OSError):
            path.unlink()


class CachedSynthesizer(Synthesizer):
    """Wraps a synthesizer; each sentence is looked up in the cache before it is synthesized.

    `should_cache(sentence)` decides what may be written to disk (default: sentences without digits).
    """

    def __init__(self, inner: Synthesizer, cache: PromptCache,
                 should_cache: Callable[[str], bool] = no_digits) -> None:
        self.inner = inner
        self.cache = cache
        self.should_cache = should_cache
        self.engine = inner.engine
        self.voice = inner.voice
        self.capabilities = inner.capabilities

    def synthesize(self, text: str) -> SpeechAudio:
        return concatenate(self.synthesize_stream(text), self.capabilities.sample_rate_hz)

    def _key(self, sentence: str) -> str:
        return PromptCache.key(self.engine, self.voice, sentence, self.capabilities.sample_rate_hz)

    def store(self, sentence: str) -> bool:
        """Synthesize one sentence into the cache ahead of need, unless it is there already or may not be
        stored; whether it was synthesized."""
        if not self.should_cache(sentence) or self.cache.path(self._key(sentence)).exists():
            return False
        for _ in self.synthesize_stream(sentence):  # stores what it synthesized
            pass
        return True

    def synthesize_stream(self, text: str) -> Iterator[SpeechAudio]:
        rate = self.capabilities.sample_rate_hz
        for sentence in split_sentences(text):
            if not self.should_cache(sentence):
                yield from self.inner.synthesize_stream(sentence)
                continue
            key = self._key(sentence)
            cached = self.cache.get(key, rate)
            if cached is not None:
                yield cached
                continue
            pieces: list[SpeechAudio] = []
            for piece in self.inner.synthesize_stream(sentence):
                pieces.append(piece)
                yield piece
            if pieces and all(p.sample_rate_hz == rate for p in pieces):
                self.cache.put(key, concatenate(pieces, rate))
