"""Piper (VITS, ONNX) voices from local files, one audio piece per sentence."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ivr.errors import ModelMissingError
from models.registry import piper_voice_files
from tts._audio import concatenate, float_to_int16
from tts.base import SpeechAudio, Synthesizer, TtsCapabilities
from tts.sentences import split_sentences

if TYPE_CHECKING:
    from piper import PiperVoice

DEFAULT_VOICE = "en_US-joe-medium"
_SENTENCE_END_PHONEMES = ".!?"

# piper.voice logs the text it speaks at DEBUG level; spoken text may hold personal data.
_PIPER_LOGGER = "piper.voice"


class PiperSynthesizer(Synthesizer):
    """A Piper voice loaded once and shared by every call of the process.

    Thread safety: onnxruntime sessions may be run from several threads at once, and piper guards
    its espeak-ng phonemizer with its own lock, so calls are not serialised here.
    """

    engine = "piper"

    def __init__(self, voice: str = DEFAULT_VOICE, length_scale: float | None = None,
                 noise_scale: float | None = None, noise_w_scale: float | None = None,
                 speaker_id: int | None = None, volume: float = 0.9) -> None:
        """`voice`: the packaged voice's name, or the path of a voice .onnx with its .onnx.json beside it.

        `length_scale` > 1 speaks slower; None keeps the voice's own setting. `volume` is the peak
        level of each sentence (piper normalises per sentence), below 1.0 to leave headroom for
        resampling.
        """
        onnx_path, config_path = piper_voice_files(voice)
        try:
            from piper import PiperVoice, SynthesisConfig
        except ImportError:
            raise ModelMissingError("piper is not installed: run `pip install piper-tts`") from None
        logging.getLogger(_PIPER_LOGGER).setLevel(max(logging.INFO, logging.getLogger(_PIPER_LOGGER).level))
        self._voice: PiperVoice = PiperVoice.load(onnx_path, config_path=config_path)
        self._config = SynthesisConfig(speaker_id=speaker_id, length_scale=length_scale,
                                       noise_scale=noise_scale, noise_w_scale=noise_w_scale)
        self._peak = volume
        self.voice = _voice_name(voice, onnx_path)
        rate_hz = int(self._voice.config.sample_rate)
        self.capabilities = TtsCapabilities(sample_rate_hz=rate_hz, streaming=True)

    def synthesize(self, text: str) -> SpeechAudio:
        return concatenate(self.synthesize_stream(text), self.capabilities.sample_rate_hz)

    def synthesize_stream(self, text: str) -> Iterator[SpeechAudio]:
        """One piece per sentence; each sentence is synthesized only when the previous one was taken."""
        for sentence in split_sentences(text):
            phonemes = self._phonemes(sentence)
            if not phonemes:
                continue
            ids = self._voice.phonemes_to_ids(phonemes)
            audio = self._voice.phoneme_ids_to_audio(ids, self._config)
            if isinstance(audio, tuple):  # (audio, alignments) from voices patched for alignments
                audio = audio[0]
            yield SpeechAudio(float_to_int16(audio, peak=self._peak), self.capabilities.sample_rate_hz)

    def _phonemes(self, sentence: str) -> list[str]:
        """The sentence's phonemes as one utterance.

        espeak-ng ends a sentence at every period ("Dr." included); our splitter already decided
        where sentences end, so espeak's inner sentences are joined without their final period.
        """
        groups = [g for g in self._voice.phonemize(sentence) if g]
        merged: list[str] = []
        for index, group in enumerate(groups):
            if index < len(groups) - 1:
                while group and group[-1] in _SENTENCE_END_PHONEMES:
                    group = group[:-1]
                merged.extend([*group, " "])
            else:
                merged.extend(group)
        return merged


def _voice_name(requested: str, onnx_path: Path) -> str:
    if requested.endswith(".onnx") or "/" in requested or "\\" in requested:
        return onnx_path.name.removesuffix(".onnx")
    return requested.removeprefix("piper-")
