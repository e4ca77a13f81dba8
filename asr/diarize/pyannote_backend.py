"""The pyannote.audio diarizer (optional extra `pyannote`): pyannote's speaker-diarization pipeline (4.0)
run on a local segmentation-3.0 checkpoint, with resemblyzer's GE2E encoder for the speaker embeddings.

pyannote's own embedding models and PLDA come only from a model hub, which is never reached here: the
pipeline is built from local parts. Segmentation-3.0 (PyanNet, powerset of up to 3 speakers in each 10 s
window, 1 s step) finds who speaks when inside each window; each local speaker's speech in a window is
embedded by resemblyzer (256-d, weights inside the wheel); pyannote's agglomerative clustering joins the
local speakers into the recording's speakers, and its reconstruction stitches the windows together into turns
(one speaker at a time). Then each turn is embedded whole and the turns are clustered again (cosine, average
linkage): segmentation-3.0 often takes two similar voices taking turns inside one 10 s window for one local
speaker (two women on a telephone band), which no window-level clustering can undo, while a whole turn's
embedding tells them apart (see README for the DER of each step).

The checkpoint: `segmentation` (a `pytorch_model.bin` or the folder that holds it), else the environment's
IVR_PYANNOTE_SEGMENTATION. Loading sets HF_HUB_OFFLINE so nothing is ever downloaded.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from asr.diarize.base import Diarizer, Segment, merge_segments
from asr.diarize.mfcc import RATE_HZ, to_float16k
from asr.errors import AsrError

SEGMENTATION_ENV = "IVR_PYANNOTE_SEGMENTATION"
INSTALL_HINT = ("pip install -e '.[pyannote]' in a virtual environment of its own (torch 2.9.1 with "
                "torchaudio 2.9, several GB: see README, 'pyannote diarizer')")
STEP = 0.1
"""Window step as a share of the 10 s window (pyannote's default)."""
MIN_EMBED_S = 0.5
"""A local speaker with less speech than this in a window gets no embedding (NaN: left out of clustering)."""
CLUSTERING = {"method": "centroid", "min_cluster_size": 3, "threshold": 0.5}
"""Agglomerative clustering of resemblyzer embeddings (cosine distance; threshold: when the number of
speakers is not given)."""
MERGE_GAP_S = 0.5
"""Pauses shorter than this inside one speaker's speech are bridged (as the MFCC backend's smoothing does)."""
TURN_DISTANCE_THRESHOLD = 0.25
"""Cosine distance at which turn clusters stop merging when the number of speakers is not given (resemblyzer:
one speaker's turns ~0.09 apart on average, two similar voices ~0.33)."""


def installed() -> bool:
    """Whether pyannote.audio and resemblyzer can be imported (without importing them)."""
    from importlib.util import find_spec

    try:
        return all(find_spec(name) is not None for name in ("torch", "pyannote.audio", "resemblyzer"))
    except ModuleNotFoundError:  # no pyannote namespace at all
        return False


def segmentation_checkpoint(segmentation: str | Path | None) -> Path:
    """The checkpoint file named by `segmentation` or IVR_PYANNOTE_SEGMENTATION; AsrError when there is none."""
    given = segmentation or os.environ.get(SEGMENTATION_ENV, "")
    if not given:
        raise AsrError(f"the pyannote diarizer needs the segmentation-3.0 checkpoint: set {SEGMENTATION_ENV} "
                       "to its pytorch_model.bin (or its folder)")
    path = Path(given)
    if path.is_dir():
        path = path / "pytorch_model.bin"
    if not path.is_file():
        raise AsrError(f"pyannote segmentation checkpoint not found: {path}")
    return path


class ResemblyzerEmbedding:
    """What pyannote's pipeline asks of a speaker embedding (sample_rate, dimension, metric, min_num_samples,
    and a call on a batch of windows with frame masks), answered by resemblyzer's VoiceEncoder."""

    sample_rate = RATE_HZ
    dimension = 256
    metric = "cosine"
    min_num_samples = int(MIN_EMBED_S * RATE_HZ)

    def __init__(self) -> None:
        from resemblyzer import VoiceEncoder

        self.encoder = VoiceEncoder("cpu", verbose=False)

    def __call__(self, waveforms: Any, masks: Any = None) -> np.ndarray:
        """(batch, 1, samples) waveforms, (batch, frames) masks -> (batch, 256) embeddings; NaN rows for
        a mask with too little speech."""
        audio = waveforms.numpy()[:, 0, :]
        out = np.full((audio.shape[0], self.dimension), np.nan, dtype=np.float32)
        for i, wave in enumerate(audio):
            keep = np.ones(wave.shape[0], dtype=bool)
            if masks is not None:
                mask = masks[i].numpy()
                frame_of = (np.arange(wave.shape[0]) * mask.shape[0] // wave.shape[0]).clip(0, mask.shape[0] - 1)
                keep = mask[frame_of] > 0.5
            speech = wave[keep]
            if speech.size >= self.min_num_samples:
                out[i] = self.encoder.embed_utterance(speech / (np.abs(speech).max() + 1e-9) * 0.5)
        return out


def _pipeline(checkpoint: Path) -> Any:
    """pyannote's SpeakerDiarization, put together from the local checkpoint and resemblyzer (its own
    constructor would fetch the hub's embedding model and PLDA)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with warnings.catch_warnings():  # torchcodec's missing FFmpeg: audio is handed over in memory
        warnings.simplefilter("ignore")
        from pyannote.audio import Inference, Model, Pipeline
        from pyannote.audio.core.io import Audio
        from pyannote.audio.pipelines.clustering import AgglomerativeClustering
        from pyannote.audio.pipelines.speaker_diarization import SpeakerDiarization
        from pyannote.pipeline.parameter import ParamDict, Uniform

    class LocalSpeakerDiarization(SpeakerDiarization):
        def __init__(self) -> None:
            Pipeline.__init__(self)
            model = Model.from_pretrained(str(checkpoint))
            self.legacy, self.segmentation_model, self.segmentation_step = False, str(checkpoint), STEP
            self.embedding, self.embedding_batch_size, self.embedding_exclude_overlap = "resemblyzer", 8, True
            self.klustering, self.der_variant = "AgglomerativeClustering", {"collar": 0.0, "skip_overlap": False}
            duration = model.specifications.duration
            self._segmentation = Inference(model, duration=duration, step=STEP * duration, skip_aggregation=True,
                                           batch_size=8)
            self.segmentation = ParamDict(min_duration_off=Uniform(0.0, 1.0))
            self._embedding = ResemblyzerEmbedding()
            self._audio = Audio(sample_rate=RATE_HZ, mono="downmix")
            self.clustering = AgglomerativeClustering(metric="cosine")
            self._expects_num_speakers = False

    pipeline = LocalSpeakerDiarization()
    return pipeline.instantiate({"segmentation": {"min_duration_off": 0.0}, "clustering": CLUSTERING})


class PyannoteDiarizer(Diarizer):
    name = "pyannote"

    def __init__(self, segmentation: str | Path | None = None) -> None:
        if not installed():
            raise AsrError(f"the pyannote diarizer is not installed (pyannote.audio, resemblyzer): {INSTALL_HINT}")
        self._pipeline = _pipeline(segmentation_checkpoint(segmentation))

    def diarize(self, samples: np.ndarray, sample_rate_hz: int, num_speakers: int | None = 2) -> list[Segment]:
        import torch

        audio = to_float16k(samples, sample_rate_hz)
        found = self._pipeline({"waveform": torch.from_numpy(audio)[None], "sample_rate": RATE_HZ, "uri": "call"},
                               num_speakers=num_speakers)
        turns = found.exclusive_speaker_diarization  # one speaker at a time, as the importer's turns are
        segments = [Segment(round(turn.start, 3), round(turn.end, 3), str(label))
                    for turn, _, label in turns.itertracks(yield_label=True)]
        return merge_segments(recluster(segments, audio, self._pipeline._embedding, num_speakers), MERGE_GAP_S)


def recluster(segments: list[Segment], audio: np.ndarray, embedding: ResemblyzerEmbedding,
              num_speakers: int | None) -> list[Segment]:
    """The turns labelled by clustering each turn's own embedding; a turn too short to embed takes the label
    of the nearest embedded turn. Unchanged when fewer turns than speakers can be embedded."""
    from sklearn.cluster import AgglomerativeClustering

    long = [i for i, s in enumerate(segments) if s.duration_s >= MIN_EMBED_S]
    if len(long) < max(2, num_speakers or 2):
        return segments
    vectors = np.array([embedding.encoder.embed_utterance(audio[int(segments[i].start_s * RATE_HZ):
                                                                int(segments[i].end_s * RATE_HZ)]) for i in long])
    clustering = AgglomerativeClustering(n_clusters=num_speakers, metric="cosine", linkage="average",
                                         distance_threshold=None if num_speakers else TURN_DISTANCE_THRESHOLD)
    found = dict(zip(long, (f"S{k}" for k in clustering.fit_predict(vectors)), strict=True))
    middles = np.array([(segments[i].start_s + segments[i].end_s) / 2 for i in long])
    out = []
    for i, seg in enumerate(segments):
        label = found.get(i) or found[long[int(np.argmin(np.abs(middles - (seg.start_s + seg.end_s) / 2)))]]
        out.append(Segment(seg.start_s, seg.end_s, label))
    return out
