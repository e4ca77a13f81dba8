"""espeak-ng through its command line: robotic but tiny, fast, and available on any Debian box."""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Iterator

import numpy as np
import soundfile as sf

from models.errors import ModelMissingError
from tts._audio import concatenate
from tts.base import SpeechAudio, Synthesizer, TtsCapabilities
from tts.errors import TtsError
from tts.sentences import split_sentences

ESPEAK_BINARY = "espeak-ng"
ESPEAK_RATE_HZ = 22050
"""espeak-ng's --stdout WAV is always 22.05 kHz."""
TIMEOUT_S = 30.0
INSTALL_HINT = "espeak-ng not found: apt-get install espeak-ng"


class EspeakSynthesizer(Synthesizer):
    """One `espeak-ng` process per sentence; the text goes through stdin, never a shell or argv."""

    engine = "espeak-ng"

    def __init__(self, voice: str = "en-us", words_per_minute: int = 165) -> None:
        binary = shutil.which(ESPEAK_BINARY)
        if binary is None:
            raise ModelMissingError(INSTALL_HINT)
        self._binary = binary
        self.voice = voice
        self.words_per_minute = words_per_minute
        self.capabilities = TtsCapabilities(sample_rate_hz=ESPEAK_RATE_HZ, streaming=True)
        self._run("")  # fails now, not in a call, when the voice does not exist

    def synthesize(self, text: str) -> SpeechAudio:
        return concatenate(self.synthesize_stream(text), ESPEAK_RATE_HZ)

    def synthesize_stream(self, text: str) -> Iterator[SpeechAudio]:
        for sentence in split_sentences(text):
            audio = self._run(sentence)
            if audio.size:
                yield SpeechAudio(audio, ESPEAK_RATE_HZ)

    def _run(self, text: str) -> np.ndarray:
        command = [self._binary, "--stdout", "-b", "1", "-v", self.voice, "-s", str(self.words_per_minute)]
        try:
            result = subprocess.run(command, input=text.encode("utf-8"), capture_output=True,
                                    timeout=TIMEOUT_S, check=False)
        except FileNotFoundError:
            raise ModelMissingError(INSTALL_HINT) from None
        except subprocess.TimeoutExpired:
            raise TtsError(f"espeak-ng took more than {TIMEOUT_S:.0f} s") from None
        if result.returncode != 0:
            reason = result.stderr.decode("utf-8", "replace").strip().splitlines()
            detail = reason[-1] if reason else f"exit status {result.returncode}"
            raise ModelMissingError(f"espeak-ng voice '{self.voice}' failed: {detail} "
                                    "(list voices with `espeak-ng --voices`)")
        if not result.stdout:
            return np.zeros(0, dtype=np.int16)
        samples, rate = sf.read(io.BytesIO(result.stdout), dtype="int16", always_2d=True)
        if rate != ESPEAK_RATE_HZ:
            raise TtsError(f"espeak-ng produced {rate} Hz audio, expected {ESPEAK_RATE_HZ} Hz")
        return np.ascontiguousarray(samples[:, 0])
