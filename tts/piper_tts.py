"""Piper (VITS, ONNX) voices from local files, one audio piece per sentence."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from models.errors import ModelMissingError
from models.registry import piper_voice_files
from tts._audio import concatenate, float_to_int16
from tts.base import SpeechAudio, Synthesizer, TtsCapabilities
from tts.piper_noise import NoiseInput, noise_feeds, seed_noise_inputs
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

    Determinism: the voice's noise is seeded by what is spoken (tts.piper_noise), so the same text
    gives the same samples in every run, process and order of sentences.
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
        logging.getLogger(_PIPER_LOGGER).setLevel(max(logging.INFO, logging.getLogger(_PIPER_LOGGER).level))
        self._voice, self._noise = _load_seeded_voice(onnx_path, config_path)
        config = self._voice.config
        self._scales = np.array([config.noise_scale if noise_scale is None else noise_scale,
                                 config.length_scale if length_scale is None else length_scale,
                                 config.noise_w_scale if noise_w_scale is None else noise_w_scale], dtype=np.float32)
        self._speaker_id = (None if config.num_speakers <= 1
                            else config.default_speaker_id if speaker_id is None else speaker_id)
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
            audio = self._audio(self._voice.phonemes_to_ids(phonemes))
            yield SpeechAudio(float_to_int16(audio, peak=self._peak), self.capabilities.sample_rate_hz)

    def _audio(self, phoneme_ids: list[int]) -> np.ndarray:
        """The voice model's float audio for one utterance (what piper's phoneme_ids_to_audio does,
        with the seeded noise inputs added)."""
        feeds = {"input": np.array([phoneme_ids], dtype=np.int64),
                 "input_lengths": np.array([len(phoneme_ids)], dtype=np.int64),
                 "scales": self._scales,
                 **noise_feeds(self._noise, phoneme_ids, self._scales, self._speaker_id)}
        if self._speaker_id is not None:
            feeds["sid"] = np.array([self._speaker_id], dtype=np.int64)
        outputs = self._voice.session.run(None, feeds)
        return np.asarray(outputs[0]).reshape(-1)  # outputs[1], where present, holds alignments

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


def _load_seeded_voice(onnx_path: Path, config_path: Path) -> tuple[PiperVoice, list[NoiseInput]]:
    """The voice with its graph's random nodes replaced by seeded noise inputs (in memory only)."""
    try:
        import onnx
        import onnxruntime
        from piper import PiperConfig, PiperVoice
    except ImportError as exc:
        raise ModelMissingError(f"piper needs {exc.name}: run `pip install piper-tts onnx`") from None

    model = onnx.load(str(onnx_path))
    noise = seed_noise_inputs(model)
    session = onnxruntime.InferenceSession(model.SerializeToString(), sess_options=onnxruntime.SessionOptions(),
                                           providers=["CPUExecutionProvider"])
    config = PiperConfig.from_dict(json.loads(Path(config_path).read_text(encoding="utf-8")))
    return PiperVoice(session=session, config=config), noise


def _voice_name(requested: str, onnx_path: Path) -> str:
    if requested.endswith(".onnx") or "/" in requested or "\\" in requested:
        return onnx_path.name.removesuffix(".onnx")
    return requested.removeprefix("piper-")
