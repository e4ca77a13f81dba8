"""Speaker diarization: who spoke when in a mono recording.

Backend `mfcc` (no torch): WebRTC VAD speech regions, MFCC-statistics embeddings of sliding windows,
agglomerative clustering, label smoothing. A pyannote backend (segmentation-3.0 + resemblyzer) is not
available yet: pyannote.audio 4.0.7 imports torchaudio unconditionally and no torchaudio build loads with
the CPU torch 2.13.0 this project can install (see load_diarizer).
"""

from __future__ import annotations

from asr.diarize.base import Diarizer, Segment, merge_segments
from asr.diarize.metrics import diarization_error_rate

__all__ = ["Diarizer", "Segment", "diarization_error_rate", "load_diarizer", "merge_segments"]

PYANNOTE_UNAVAILABLE = (
    "the pyannote diarizer is not available: pyannote.audio 4.0.7 imports torchaudio, and no torchaudio "
    "build loads with the CPU torch 2.13.0; use --diarizer mfcc")


def load_diarizer(backend: str = "auto") -> Diarizer:
    """`mfcc`, or `auto` (today: mfcc); `pyannote` raises AsrError saying why it cannot run."""
    if backend == "pyannote":
        from asr.errors import AsrError

        raise AsrError(PYANNOTE_UNAVAILABLE)
    if backend not in ("auto", "mfcc"):
        from asr.errors import AsrError

        raise AsrError(f"unknown diarizer {backend!r}: mfcc or auto")
    from asr.diarize.mfcc import MfccDiarizer

    return MfccDiarizer()
