"""Transcribing recordings in worker processes or threads; the model is loaded once per process.

A file is done in two kinds of task, both plain module-level functions of picklable arguments, so
the same code runs in this process, on a Dask LocalCluster and on a remote `dask worker`:

- `plan_file` reads the file, cuts each track with Silero VAD (bundled with faster-whisper) into
  speech regions, groups the regions into windows of at most `WINDOW_S` seconds of the original audio
  (pauses kept, so words at region edges are not glued together), and the windows into pieces of at
  most `batch_size` windows: a few kilobytes of sample ranges, no audio.
- `decode_piece` reads just that piece's span of the file again and decodes its windows in one
  batch with faster-whisper's BatchedInferencePipeline.

Pieces are what makes one long file keep every worker busy (a file of an hour is ~15 pieces), and a
few files on many workers finish together. Every executor decodes the same pieces, so the text does
not depend on where it ran. Neither task raises for a bad input: the result carries the reason
instead, so one broken file never stops a batch.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from asr.base import Word
from models.errors import AgentError
from telephony.audio.pcm import to_float32

if TYPE_CHECKING:
    from telephony.audio.audiofile import AudioClip

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
    """CTranslate2 threads per decoding thread (decoding threads x cpu_threads should not exceed the cores)."""
    replicas: int = 1
    """Threads of one process that decode at the same time (CTranslate2 num_workers, weights shared):
    the local cluster's thread count; 1 for `dask worker --nthreads 1`."""
    beam_size: int = 5
    batch_size: int = 8
    """Windows decoded together by the batched pipeline."""
    language: str = "en"
    split_channels: bool = False
    """True: each channel is a speaker, transcribed on its own; False: channels mixed to mono."""
    diarize: bool = False
    """Label speakers inside each track (ivr.transcribe.enrich)."""
    speakers: int = 2
    """Speakers per track for the diarizer (0: estimated)."""
    emotion: bool = False
    """Give every segment the fused emotion of its voice and words (ivr.transcribe.enrich)."""


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    text: str
    confidence: float
    """Mean word probability of the segment (0.0 with no words)."""
    words: tuple[Word, ...] = ()
    speaker: str = ""
    emotion: Any = None
    """An ivr.transcribe.enrich.SegmentEmotion with --emotion; None otherwise."""


@dataclass(frozen=True)
class FileOutcome:
    """What a step found of one recording; `error` is the reason it cannot be transcribed ("" when it can)."""

    path: str
    duration_s: float = 0.0
    language: str = ""
    error: str = field(default="", kw_only=True)
    worker: str = field(default="", compare=False, kw_only=True)
    """Where the step ran (`worker_name`)."""

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass(frozen=True)
class Piece:
    """Consecutive VAD windows of one track, decoded together by one task.

    The task reads source frames [start_frame, stop_frame) of the file (the windows plus a margin);
    `windows` are (start, end) in seconds from start_frame."""

    index: int
    start_frame: int
    stop_frame: int
    windows: tuple[tuple[float, float], ...]
    channel: int = -1
    """-1: all channels mixed to mono; otherwise the channel transcribed on its own."""
    speaker: str = ""


@dataclass(frozen=True)
class FilePlan(FileOutcome):
    """What `plan_file` found: the file's pieces, or the reason it cannot be transcribed."""

    pieces: tuple[Piece, ...] = ()
    plan_s: float = 0.0


@dataclass(frozen=True)
class PieceResult:
    segments: tuple[Segment, ...] = ()
    error: str = ""
    decode_s: float = 0.0


@dataclass(frozen=True)
class FileResult(FileOutcome):
    """What one recording gave: segments, or the reason it could not be transcribed."""

    segments: tuple[Segment, ...] = ()
    decode_s: float = 0.0


PIECE_MARGIN_S = 0.5
"""Audio read on each side of a piece's windows, so resampling a span gives the same samples inside
the windows as resampling the whole file (the windows themselves already carry VAD padding)."""

_MODELS: dict[tuple[str, str, int, int], Any] = {}
_LOCK = threading.Lock()


def load_model(model_path: str, compute_type: str = "int8", cpu_threads: int = 1, replicas: int = 1) -> Any:
    """The process's faster-whisper WhisperModel, loaded on first use.

    `replicas` is CTranslate2's num_workers: that many threads of this process can decode at the
    same time (the weights are shared), each using `cpu_threads` cores."""
    from asr.whisper import load_whisper_model

    key = (model_path, compute_type, cpu_threads, replicas)
    with _LOCK:
        if key not in _MODELS:
            _MODELS[key] = load_whisper_model(model_path, compute_type, cpu_threads, num_workers=replicas,
                                              user="batch transcription")
        return _MODELS[key]


def load_pipeline(options: EngineOptions) -> Any:
    """A BatchedInferencePipeline over the process's model: cheap, and one per call, because the
    pipeline keeps per-call state (the last speech timestamp) that threads must not share."""
    from faster_whisper import BatchedInferencePipeline

    return BatchedInferencePipeline(load_model(options.model_path, options.compute_type, options.cpu_threads,
                                               options.replicas))


def worker_name() -> str:
    return f"{os.uname().nodename}:{os.getpid()}"


def transcribe_file(path: str, options: EngineOptions) -> FileResult:
    """Plan and decode one recording here, piece after piece; a file that cannot be read gives a
    result with `error`."""
    plan = plan_file(path, options)
    if plan.error:
        return assemble(plan, [])
    return assemble(plan, [decode_piece(path, options, piece) for piece in plan.pieces])


def plan_file(path: str, options: EngineOptions) -> FilePlan:
    """Read the file, find its speech (VAD) and cut it into pieces; never raises for a bad file."""
    from telephony.audio.audiofile import read_audio

    t0 = time.perf_counter()
    worker = worker_name()
    try:
        clip = read_audio(path)
    except AgentError as exc:
        return FilePlan(path, error=_reason(str(exc), path), worker=worker)
    except MemoryError:
        return FilePlan(path, error="too large to read into memory", worker=worker)
    tracks = tracks_of(clip, options.split_channels)
    rate, frames = clip.sample_rate_hz, int(clip.samples.shape[0])
    pieces: list[Piece] = []
    for channel, speaker, samples in tracks:
        windows = speech_windows(_to_whisper(samples, rate))
        for group in _even_groups(windows, options.batch_size):
            start = max(0, int((group[0]["start"] - PIECE_MARGIN_S) * rate))
            stop = min(frames, int(np.ceil((group[-1]["end"] + PIECE_MARGIN_S) * rate)))
            offset = start / rate
            rel = tuple((round(w["start"] - offset, 6), round(w["end"] - offset, 6)) for w in group)
            pieces.append(Piece(len(pieces), start, stop, rel, channel, speaker))
    return FilePlan(path, round(clip.duration_s, 3), options.language, tuple(pieces),
                    plan_s=round(time.perf_counter() - t0, 3), worker=worker)


def tracks_of(clip: AudioClip, split_channels: bool) -> list[tuple[int, str, np.ndarray]]:
    """(channel, speaker, samples) per track of an AudioClip: each channel with its speaker name when
    `split_channels` (and there are several), else one track of the channels mixed (channel -1, no name)."""
    if split_channels and clip.channels > 1:
        labels = CHANNEL_LABELS_2 if clip.channels == 2 else tuple(f"ch{i}" for i in range(clip.channels))
        return [(i, labels[i], clip.channel(i)) for i in range(clip.channels)]
    return [(-1, "", clip.mono())]


def decode_piece(path: str, options: EngineOptions, piece: Piece) -> PieceResult:
    """Read the piece's span of the file and decode its windows in one batch."""
    t0 = time.perf_counter()
    try:
        samples, rate = read_span(path, piece.start_frame, piece.stop_frame, piece.channel)
    except AgentError as exc:
        return PieceResult(error=_reason(str(exc), path))
    offset_s = piece.start_frame / rate
    audio = _to_whisper(samples, rate)
    windows = [{"start": a, "end": b} for a, b in piece.windows]
    segments = decode_windows(load_pipeline(options), audio, windows, options, piece.speaker, offset_s)
    return PieceResult(tuple(segments), decode_s=round(time.perf_counter() - t0, 3))


def assemble(plan: FilePlan, parts: list[PieceResult]) -> FileResult:
    """The file's result from its plan and its pieces' results (in piece order)."""
    if plan.error:
        return FileResult(plan.path, error=plan.error, worker=plan.worker)
    failed = [p.error for p in parts if p.error]
    if failed:
        return FileResult(plan.path, error=failed[0], worker=plan.worker)
    duration = plan.duration_s
    segments = [s for part in parts for s in part.segments]
    segments = [_clamp(s, duration) for s in segments]
    segments.sort(key=lambda s: (s.start_s, s.speaker))
    decode_s = plan.plan_s + sum(p.decode_s for p in parts)
    return FileResult(plan.path, duration, plan.language, tuple(segments), decode_s=round(decode_s, 3),
                      worker=plan.worker)


def read_span(path: str, start_frame: int, stop_frame: int, channel: int = -1) -> tuple[np.ndarray, int]:
    """int16 samples [start_frame, stop_frame) of one channel (or all mixed, channel -1), and the rate.

    Seeks where the format allows it exactly (PCM containers, FLAC); compressed formats are read
    whole and cut, so a span is always the same samples `plan_file` saw."""
    import soundfile as sf

    from telephony.audio.audiofile import AudioClip, read_audio
    from telephony.errors import AudioFileError

    try:
        with sf.SoundFile(path) as f:
            rate = int(f.samplerate)
            if f.seekable() and f.format in _SEEKABLE_FORMATS:
                f.seek(start_frame)
                data = f.read(stop_frame - start_frame, dtype="int16", always_2d=True)
            else:
                data = None
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError, OSError) as exc:
        raise AudioFileError(f"{path}: cannot be read again ({exc})") from None
    if data is None:
        whole = read_audio(path)
        rate = whole.sample_rate_hz
        data = whole.samples.reshape(whole.samples.shape[0], -1)[start_frame:stop_frame]
    if data.shape[0] != stop_frame - start_frame:
        raise AudioFileError(f"{path}: the file changed while it was being transcribed")
    clip = AudioClip(data[:, 0].copy() if data.shape[1] == 1 else data, rate)
    return (clip.mono() if channel < 0 else clip.channel(channel)), rate


_SEEKABLE_FORMATS = frozenset({"WAV", "WAVEX", "RF64", "W64", "AIFF", "CAF", "FLAC"})


def _to_whisper(samples: np.ndarray, rate_hz: int) -> np.ndarray:
    from telephony.audio.resample import resample

    return to_float32(resample(samples, rate_hz, WHISPER_RATE_HZ))


def _even_groups(windows: list[dict[str, float]], size: int) -> list[list[dict[str, float]]]:
    """Windows in consecutive groups of at most `size`, as even as possible (9 by 8: 5 and 4)."""
    if not windows:
        return []
    count = -(-len(windows) // max(1, size))
    base, extra = divmod(len(windows), count)
    groups, pos = [], 0
    for i in range(count):
        n = base + (1 if i < extra else 0)
        groups.append(windows[pos:pos + n])
        pos += n
    return groups


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


def decode_windows(pipeline: Any, audio_16k: np.ndarray, windows: list[dict[str, float]], options: EngineOptions,
                   speaker: str = "", offset_s: float = 0.0) -> list[Segment]:
    """Decode `windows` (seconds into `audio_16k`) -> segments with word timings in seconds from the
    start of the file (`offset_s` is where `audio_16k` starts in it).

    Windows are decoded without Whisper's timestamp tokens (on joined IVR prompts that decoder mode
    skipped whole sentences: WER 8.0% against 3.4% without), so each window comes back as one piece
    of text with word timings, which is then cut into subtitle-sized segments at sentence ends and
    pauses (`split_words`).
    """
    if not windows:
        return []
    pipeline.last_speech_timestamp = 0.0
    raw, _info = pipeline.transcribe(
        audio_16k, language=options.language or None, beam_size=options.beam_size,
        batch_size=options.batch_size, word_timestamps=True, vad_filter=False, clip_timestamps=windows,
        without_timestamps=True)
    out: list[Segment] = []
    for seg in raw:
        words = [Word(w.word.strip(), round(float(w.start) + offset_s, 3), round(float(w.end) + offset_s, 3),
                      round(float(w.probability), 4))
                 for w in (seg.words or ()) if w.word.strip()]
        out += segments_from_words(words, speaker)
    return out


def segments_from_words(words: list[Word], speaker: str = "") -> list[Segment]:
    """Words of one speaker -> subtitle-sized segments (`split_words`), confidence the words' mean."""
    out = []
    for group in split_words(words):
        confidence = round(float(np.mean([w.confidence for w in group])), 4)
        out.append(Segment(group[0].start_s, group[-1].end_s, " ".join(w.text for w in group), confidence,
                           tuple(group), speaker))
    return out


def _clamp(seg: Segment, duration_s: float) -> Segment:
    """Word and segment times no later than the end of the recording."""
    if seg.end_s <= duration_s and all(w.end_s <= duration_s for w in seg.words):
        return seg
    words = tuple(Word(w.text, min(w.start_s, duration_s), min(w.end_s, duration_s), w.confidence)
                  for w in seg.words)
    return Segment(min(seg.start_s, duration_s), min(seg.end_s, duration_s), seg.text, seg.confidence, words,
                   seg.speaker)


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
