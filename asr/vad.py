"""Voice activity detectors for 20 ms PCM16 frames: WebRTC (default, cheap) and Silero (ONNX, robust).

Both are per-call and stateful (one instance per call direction) and take 8 kHz or 16 kHz frames.
`make_vad(name)` builds one by its configuration name.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from asr.errors import AsrError
from asr.vad_base import VoiceActivityDetector
from models.errors import ModelMissingError
from telephony.audio.frame import BYTES_PER_SAMPLE
from telephony.audio.pcm import to_float32

SUPPORTED_RATES_HZ = (8000, 16000)
WEBRTC_FRAME_MS = (10, 20, 30)
"""Frame lengths webrtcvad accepts."""

SILERO_RATE_HZ = 16000
"""The Silero v6 ONNX shipped with faster-whisper runs at 16 kHz only; 8 kHz is upsampled first."""
SILERO_WINDOW_SAMPLES = 512
"""Samples the model judges per call (32 ms at 16 kHz)."""
SILERO_CONTEXT_SAMPLES = 64
"""Samples of the previous window prepended to each window, as the model was trained."""
SILERO_STATE_SHAPE = (1, 1, 128)
"""Shape of the LSTM state tensors h and c."""

VAD_NAMES = ("webrtc", "silero")


def _check_rate(name: str, sample_rate_hz: int) -> None:
    if sample_rate_hz not in SUPPORTED_RATES_HZ:
        raise AsrError(f"{name} VAD takes 8000 or 16000 Hz frames, got {sample_rate_hz} Hz: "
                       "resample the audio first (telephony.audio.resample)")


class WebRtcVad(VoiceActivityDetector):
    """The WebRTC GMM detector: probability is 0.0 or 1.0 per frame.

    `aggressiveness` runs from 0 (keeps the most audio as speech) to 3 (filters the most non-speech).
    """

    name = "webrtc"

    def __init__(self, aggressiveness: int = 2) -> None:
        import webrtcvad

        if aggressiveness not in (0, 1, 2, 3):
            raise AsrError(f"WebRTC VAD aggressiveness must be 0..3, got {aggressiveness}")
        self.aggressiveness = aggressiveness
        self._vad_class = webrtcvad.Vad
        self._vad = webrtcvad.Vad(aggressiveness)

    def speech_probability(self, pcm: bytes, sample_rate_hz: int) -> float:
        _check_rate(self.name, sample_rate_hz)
        frame_ms = 1000 * len(pcm) // (BYTES_PER_SAMPLE * sample_rate_hz)
        whole = len(pcm) == frame_ms * sample_rate_hz * BYTES_PER_SAMPLE // 1000
        if frame_ms not in WEBRTC_FRAME_MS or not whole:
            raise AsrError(f"WebRTC VAD takes 10, 20 or 30 ms frames, "
                           f"got {len(pcm)} bytes at {sample_rate_hz} Hz")
        return 1.0 if self._vad.is_speech(pcm, sample_rate_hz) else 0.0

    def reset(self) -> None:
        self._vad = self._vad_class(self.aggressiveness)


_SESSIONS: dict[Path, Any] = {}
_SESSIONS_LOCK = threading.Lock()


def _silero_session(path: Path) -> Any:
    """One onnxruntime session per process, shared by every call (run() is thread-safe)."""
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(path)
        if session is None:
            try:
                import onnxruntime
            except ImportError:
                raise ModelMissingError("Silero VAD needs onnxruntime: "
                                        "run `pip install onnxruntime`") from None
            opts = onnxruntime.SessionOptions()
            opts.inter_op_num_threads = 1
            opts.intra_op_num_threads = 1
            opts.log_severity_level = 4
            session = onnxruntime.InferenceSession(str(path), sess_options=opts,
                                                   providers=["CPUExecutionProvider"])
            _SESSIONS[path] = session
        return session


class SileroVad(VoiceActivityDetector):
    """Silero VAD v6 (ONNX) on 20 ms frames.

    The model judges 512-sample windows at 16 kHz, carrying an LSTM state and the last 64 samples of
    the previous window. Frames are buffered until a window is full; `speech_probability` returns the
    probability of the latest complete window (0.0 before the first one). 8 kHz frames are upsampled
    to 16 kHz with a stateful resampler. `threshold` is what callers should treat as speech.
    """

    name = "silero"

    def __init__(self, threshold: float = 0.5, model_path: str | Path | None = None) -> None:
        from models.registry import silero_vad_file

        self.threshold = threshold
        self._session = _silero_session(Path(model_path) if model_path else silero_vad_file())
        self._resamplers: dict[int, Any] = {}
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros(SILERO_STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(SILERO_STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(SILERO_CONTEXT_SAMPLES, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self._probability = 0.0
        self._resamplers = {}

    def _to_16k(self, pcm: bytes, sample_rate_hz: int) -> np.ndarray:
        samples = np.frombuffer(pcm, dtype="<i2")
        if sample_rate_hz != SILERO_RATE_HZ:
            import soxr

            stream = self._resamplers.get(sample_rate_hz)
            if stream is None:
                stream = soxr.ResampleStream(sample_rate_hz, SILERO_RATE_HZ, 1, dtype="float32", quality="HQ")
                self._resamplers[sample_rate_hz] = stream
            return np.asarray(stream.resample_chunk(to_float32(samples)), dtype=np.float32)
        return to_float32(samples)

    def speech_probability(self, pcm: bytes, sample_rate_hz: int) -> float:
        _check_rate(self.name, sample_rate_hz)
        self._pending = np.concatenate([self._pending, self._to_16k(pcm, sample_rate_hz)])
        while self._pending.size >= SILERO_WINDOW_SAMPLES:
            window = self._pending[:SILERO_WINDOW_SAMPLES]
            self._pending = self._pending[SILERO_WINDOW_SAMPLES:]
            batch = np.concatenate([self._context, window])[np.newaxis, :]
            out, self._h, self._c = self._session.run(None, {"input": batch, "h": self._h, "c": self._c})
            self._context = window[-SILERO_CONTEXT_SAMPLES:]
            self._probability = float(np.asarray(out).reshape(-1)[-1])
        return self._probability


def make_vad(name: str = "webrtc") -> VoiceActivityDetector:
    """A new detector by name: 'webrtc' (default) or 'silero'."""
    key = (name or "webrtc").strip().lower()
    if key == "webrtc":
        return WebRtcVad()
    if key == "silero":
        return SileroVad()
    raise AsrError(f"unknown VAD '{name}': choose one of {', '.join(VAD_NAMES)}")
