"""Transcribing one recording in a worker process; the model is loaded once per process.

`transcribe_file` is a plain module-level function of picklable arguments, so the same code runs
in this process, in a Dask LocalCluster worker and on a remote `dask worker`. It never raises for
a bad input: the result carries the reason instead, so one broken file never stops a batch.

Long recordings are cut with Silero VAD (bundled with faster-whisper) into speech regions, and the
regions are grouped into windows of at most `WINDOW_S` seconds of the original audio (pauses kept,
so words at region edges are not glued together), which faster-whisper's BatchedInferencePipeline
decodes `batch_size` windows at a time.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from asr.base import Word
from ivr.errors import IvrError, ModelMissingError

WHISPER_RATE_HZ = 16000
WINDOW_S = 30.0
"""Whisper's input window: each batch item is at most this much audio."""
VAD_MIN_SILENCE_MS = 500
"""A pause at least this long ends a speech region (faster-whisper's batched default is 160 ms)."""
VAD_SPEECH_PAD_MS = 200
"""Audio kept on each side of a speech region."""
PAUSE_SPLIT_S = 0.8
"""A pause this long between words starts a new segment."""
MAX_SEGMENT_S = 12.0
"""Segments (subtitle cues) are cut before they grow longer than this."""
CHANNEL_LABELS_2 = ("caller", "agent")
"""Speaker names for `--channels split` on a stereo file: the project's recordings put the caller
on the left and the agent on the right. Other channel counts are named ch0, ch1, ..."""


@dataclass(frozen=True)
class EngineOptions:
    """How to decode; the same options give the same text on any worker."""

    model_path: str
    """A CTranslate2 Whisper directory (resolved by the client from a name like 'tiny.en')."""
    compute_type: str = "int8"
    cpu_threads: int = 1
    """CTranslate2 threads per worker process (workers x threads should not exceed the cores)."""
    beam_size: int = 5
    batch_size: int = 8
    """Windows decoded together by the batched pipeline."""
    language: str = "en"
    split_channels: bool = False
    """True: each channel is a speaker, transcribed on its own; False: channels mixed to mono."""


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    text: str
    confidence: float
    """Mean word probability of the segment (0.0 with no words)."""
    words: tuple[Word, ...] = ()
    speaker: str = ""


@dataclass(frozen=True)
class FileResult:
    """What one recording gave: segments, or the reason it could not be transcribed."""

    path: str
    duration_s: float = 0.0
    language: str = ""
    segments: tuple[Segment, ...] = ()
    error: str = ""
    decode_s: float = 0.0
    worker: str = field(default="", compare=False)

    @property
    def ok(self) -> bool:
        return not self.error


_PIPELINES: dict[tuple[str, str, int], Any] = {}
_LOCK = threading.Lock()


def load_pipeline(model_path: str, compute_type: str = "int8", cpu_threads: int = 1) -> Any:
    """The process's BatchedInferencePipeline for this model, loaded on first use."""
    key = (model_path, compute_type, cpu_threads)
    with _LOCK:
        if key not in _PIPELINES:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            try:
                from faster_whisper import BatchedInferencePipeline, WhisperModel
            except ImportError:
                raise ModelMissingError("batch transcription needs faster-whisper: "
                                        "run `pip install faster-whisper`") from None
            try:
                model = WhisperModel(model_path, device="cpu", compute_type=compute_type,
                                     cpu_threads=cpu_threads, local_files_only=True)
            except (RuntimeError, ValueError, OSError) as exc:
                raise ModelMissingError(f"cannot load the Whisper model at {model_path} ({exc})") from None
            _PIPELINES[key] = BatchedInferencePipeline(model)
        return _PIPELINES[key]


def transcribe_file(path: str, options: EngineOptions) -> FileResult:
    """Read, decode and return one recording; a file that cannot be read gives a result with `error`."""
    from ivr.audiofile import read_audio
    from ivr.resample import resample

    t0 = time.perf_counter()
    worker = f"{os.uname().nodename}:{os.getpid()}"
    try:
        clip = read_audio(path)
    except IvrError as exc:
        return FileResult(path, error=_reason(str(exc), path), worker=worker)
    except MemoryError:
        return FileResult(path, error="too large to read into memory", worker=worker)
    pipeline = load_pipeline(options.model_path, options.compute_type, options.cpu_threads)
    if options.split_channels and clip.channels > 1:
        labels = CHANNEL_LABELS_2 if clip.channels == 2 else tuple(f"ch{i}" for i in range(clip.channels))
        tracks = [(labels[i], clip.channel(i)) for i in range(clip.channels)]
    else:
        tracks = [("", clip.mono())]
    segments: list[Segment] = []
    for speaker, samples in tracks:
        audio = resample(samples, clip.sample_rate_hz, WHISPER_RATE_HZ).astype(np.float32) / 32768.0
        segments.extend(decode(pipeline, audio, options, speaker))
    segments.sort(key=lambda s: (s.start_s, s.speaker))
    return FileResult(path, round(clip.duration_s, 3), options.language, tuple(segments),
                      decode_s=round(time.perf_counter() - t0, 3), worker=worker)


def speech_windows(audio_16k: np.ndarray) -> list[dict[str, float]]:
    """Speech regions (Silero VAD) grouped into windows of at most WINDOW_S seconds, in seconds."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    vad = VadOptions(min_silence_duration_ms=VAD_MIN_SILENCE_MS, speech_pad_ms=VAD_SPEECH_PAD_MS,
                     max_speech_duration_s=WINDOW_S)
    regions = get_speech_timestamps(audio_16k, vad)
    windows: list[dict[str, float]] = []
    limit = int(WINDOW_S * WHISPER_RATE_HZ)
    for region in regions:
        start, end = int(region["start"]), int(region["end"])
        if windows and end - int(windows[-1]["start"] * WHISPER_RATE_HZ) <= limit:
            windows[-1]["end"] = end / WHISPER_RATE_HZ
        else:
            windows.append({"start": start / WHISPER_RATE_HZ, "end": end / WHISPER_RATE_HZ})
    return windows


def decode(pipeline: Any, audio_16k: np.ndarray, options: EngineOptions, speaker: str = "") -> list[Segment]:
    """float32 mono 16 kHz audio -> segments with word timings in seconds from the start of the audio.

    Windows are decoded without Whisper's timestamp tokens (on joined IVR prompts that decoder mode
    skipped whole sentences: WER 8.0% against 3.4% without), so each window comes back as one piece
    of text with word timings, which is then cut into subtitle-sized segments at sentence ends and
    pauses (`split_words`).
    """
    windows = speech_windows(audio_16k)
    if not windows:
        return []
    pipeline.last_speech_timestamp = 0.0
    raw, _info = pipeline.transcribe(
        audio_16k, language=options.language or None, beam_size=options.beam_size,
        batch_size=options.batch_size, word_timestamps=True, vad_filter=False, clip_timestamps=windows,
        without_timestamps=True)
    duration_s = audio_16k.size / WHISPER_RATE_HZ
    out: list[Segment] = []
    for seg in raw:
        words = [Word(w.word.strip(), round(min(float(w.start), duration_s), 3),
                      round(min(float(w.end), duration_s), 3), round(float(w.probability), 4))
                 for w in (seg.words or ()) if w.word.strip()]
        for group in split_words(words):
            confidence = round(float(np.mean([w.confidence for w in group])), 4)
            text = " ".join(w.text for w in group)
            out.append(Segment(group[0].start_s, group[-1].end_s, text, confidence, tuple(group), speaker))
    return out


def split_words(words: list[Word]) -> list[list[Word]]:
    """Words -> segments: a new one after a sentence end, a pause of PAUSE_SPLIT_S, or MAX_SEGMENT_S."""
    groups: list[list[Word]] = []
    for word in words:
        if groups:
            last = groups[-1][-1]
            if (last.text[-1] in ".?!" or word.start_s - last.end_s >= PAUSE_SPLIT_S
                    or word.end_s - groups[-1][0].start_s > MAX_SEGMENT_S):
                groups.append([word])
                continue
            groups[-1].append(word)
        else:
            groups.append([word])
    return groups


def _reason(message: str, path: str) -> str:
    """The error without the path in front (the summary shows the path itself)."""
    prefix = f"{path}: "
    return message[len(prefix):] if message.startswith(prefix) else message
