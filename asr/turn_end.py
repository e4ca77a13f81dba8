"""Has the caller finished their turn? Smart Turn v3.2, an audio end-of-turn model, read at a short pause.

The model (8.7 MB ONNX, BSD-2-Clause, by Daily; from the pipecat-ai wheel, `models/turn/README.md`)
looks at the last 8 s of the caller's speech at 16 kHz, as Whisper-style log-mel features (80 x 800,
zero-mean unit-variance waveform first, zero padding in front of a shorter turn), and returns the
probability that the turn is complete. It hears intonation and rhythm, not words, so it is one voice
among the session's: the silence timeout stays the fallback, and what the dialog expects (a full digit
string, a yes/no) can end a turn sooner (`python -m ivr.asreval.turn_end` measures each).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from models.registry import smart_turn_file

MODEL_RATE_HZ = 16000
WINDOW_S = 8
FRAMES = WINDOW_S * MODEL_RATE_HZ // 160


def model_path() -> Path:
    return smart_turn_file()


class SmartTurn:
    """P(turn complete) for the caller's audio so far. `probability` is thread-safe (one ONNX session)."""

    def __init__(self, path: Path | None = None, threads: int = 1) -> None:
        import onnxruntime as ort
        from faster_whisper.feature_extractor import FeatureExtractor

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self._session: Any = ort.InferenceSession(str(path or model_path()), sess_options=options,
                                                  providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self._features = FeatureExtractor(chunk_length=WINDOW_S)

    def features(self, samples_16k: np.ndarray) -> np.ndarray:
        """80 x 800 log-mel of the last 8 s (float samples in -1..1, or int16)."""
        audio = np.asarray(samples_16k, dtype=np.float32)
        if np.issubdtype(np.asarray(samples_16k).dtype, np.integer):
            audio = audio / 32768.0
        audio = audio[-WINDOW_S * MODEL_RATE_HZ:]
        audio = np.pad(audio, (WINDOW_S * MODEL_RATE_HZ - audio.size, 0))  # silence before a short turn
        audio = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)  # over the whole window, as trained
        return np.asarray(self._features(audio, padding=0)[:, :FRAMES], dtype=np.float32)

    def probability(self, samples_16k: np.ndarray) -> float:
        """How likely the caller has finished, 0 .. 1, from their turn's audio up to now (16 kHz)."""
        if np.asarray(samples_16k).size == 0:
            return 0.0
        out = self._session.run(None, {self._input: self.features(samples_16k)[None]})[0]
        return float(np.clip(np.asarray(out).reshape(-1)[0], 0.0, 1.0))
