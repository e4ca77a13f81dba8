"""Speaker diarization: who spoke when in a mono recording.

Backend `mfcc` (no torch; what `auto` picks): WebRTC VAD speech regions, MFCC-statistics embeddings of sliding
windows, agglomerative clustering, label smoothing. Backend `pyannote` (the optional extra `pyannote`, torch
2.9.1 and several GB): pyannote.audio's pipeline on a local segmentation-3.0 checkpoint with resemblyzer
embeddings (asr.diarize.pyannote_backend).
"""

from __future__ import annotations

from pathlib import Path

from asr.diarize.base import Diarizer, Segment, merge_segments
from asr.diarize.metrics import diarization_error_rate

__all__ = ["Diarizer", "Segment", "diarization_error_rate", "load_diarizer", "merge_segments"]

BACKENDS = ("auto", "mfcc", "pyannote")


def load_diarizer(backend: str = "auto", model: str | Path | None = None) -> Diarizer:
    """`mfcc`, `auto` (mfcc) or `pyannote` (`model`: its segmentation checkpoint, default
    $IVR_PYANNOTE_SEGMENTATION); AsrError when the backend is unknown or cannot load, saying why."""
    from asr.errors import AsrError

    if backend == "pyannote":
        try:
            from asr.diarize.pyannote_backend import PyannoteDiarizer
        except ImportError as exc:  # numpy etc. are there; torch and pyannote are imported when it loads
            raise AsrError(f"the pyannote diarizer cannot be imported: {exc}") from None
        return PyannoteDiarizer(model)
    if backend not in BACKENDS:
        raise AsrError(f"unknown diarizer {backend!r}: {', '.join(BACKENDS)}")
    from asr.diarize.mfcc import MfccDiarizer

    return MfccDiarizer()
