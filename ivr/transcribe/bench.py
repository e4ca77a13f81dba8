"""`ivr transcribe-bench`: throughput of `ivr transcribe` against plain sequential faster-whisper.

What is measured: the short prompts of ../shared/data/speech (ivr-prompts, and fsdd digits) are
joined, with `GAP_S` of silence between them, into "archive" recordings of about --archive-s
seconds at 8 kHz (the telephone rate), each with its reference text joined the same way. The same
archive files are then transcribed twice in one run:

- sequential: one `faster_whisper.WhisperModel` (same model, int8, all cores) calling
  `model.transcribe(audio, language, beam_size, word_timestamps=True)` file after file, with
  faster-whisper's other defaults (no VAD, temperature fallback, previous-text conditioning).
  Model loading is not timed.
- ivr transcribe: `run_job` as the command runs it (workers, VAD windows, batched pipeline, outputs
  written), timed from start to summary, so worker start-up and model loading count against it.

Both read the files and resample with the same code. Speed is audio seconds per wall second; WER is
corpus WER against the joined reference texts (ivr.wer normalisation).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ivr.errors import IvrError
from ivr.transcribe.engine import WHISPER_RATE_HZ, EngineOptions
from ivr.wer import wer

ARCHIVE_RATE_HZ = 8000
GAP_S = 0.6
"""Silence between joined prompts (a pause between sentences)."""


def _manifest(shared: Path, name: str) -> list[tuple[Path, str]]:
    root = shared / "data" / "speech" / name
    manifest = root / ("manifest.tsv" if name == "ivr-prompts" else "manifest.csv")
    if not manifest.exists():
        raise IvrError(f"benchmark data not found at {manifest}: give --shared (the project's shared/ folder)")
    with manifest.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t" if manifest.suffix == ".tsv" else ","))
    return [(root / r["path"], r["text"]) for r in rows]


def build_archives(shared: Path, out_dir: Path, archives: int, archive_s: float) -> list[dict[str, Any]]:
    """Write archive FLACs; returns [{path, set, reference, duration_s, prompts}]."""
    from ivr.audiofile import read_audio, write_wav
    from ivr.resample import resample

    n_fsdd = archives // 4
    plan = [("ivr-prompts", archives - n_fsdd), ("fsdd", n_fsdd)]
    out_dir.mkdir(parents=True, exist_ok=True)
    gap = np.zeros(int(GAP_S * ARCHIVE_RATE_HZ), dtype=np.int16)
    made: list[dict[str, Any]] = []
    for name, count in plan:
        items = _manifest(shared, name)
        pos = 0
        for i in range(count):
            pieces: list[np.ndarray] = []
            texts: list[str] = []
            length = 0
            while length < archive_s * ARCHIVE_RATE_HZ:
                path, text = items[pos % len(items)]
                pos += 1
                clip = read_audio(path)
                samples = resample(clip.mono(), clip.sample_rate_hz, ARCHIVE_RATE_HZ)
                pieces += [samples, gap]
                texts.append(text)
                length += samples.size + gap.size
            path = write_wav(out_dir / f"{name}-{i:02d}.wav", np.concatenate(pieces), ARCHIVE_RATE_HZ)
            made.append({"path": str(path), "set": name, "reference": " ".join(texts),
                         "duration_s": length / ARCHIVE_RATE_HZ, "prompts": len(texts)})
    return made


def run_sequential(files: list[str], options: EngineOptions, cores: int) -> tuple[dict[str, str], float]:
    """Plain faster-whisper, file by file; returns ({path: text}, wall seconds)."""
    from faster_whisper import WhisperModel

    from ivr.audiofile import read_audio
    from ivr.resample import resample

    model = WhisperModel(options.model_path, device="cpu", compute_type=options.compute_type,
                         cpu_threads=cores, local_files_only=True)
    texts: dict[str, str] = {}
    t0 = time.perf_counter()
    for path in files:
        clip = read_audio(path)
        audio = resample(clip.mono(), clip.sample_rate_hz, WHISPER_RATE_HZ).astype(np.float32) / 32768.0
        segments, _ = model.transcribe(audio, language=options.language or None, beam_size=options.beam_size,
                                       word_timestamps=True)
        texts[path] = " ".join(s.text.strip() for s in segments)
    return texts, time.perf_counter() - t0


def run_batch(files: list[str], options: EngineOptions, workers: int, out_dir: Path) -> tuple[dict[str, str], float]:
    """`ivr transcribe` on the same files; returns ({path: text}, wall seconds)."""
    from ivr.transcribe.runner import JobConfig, run_job

    config = JobConfig(tuple(files), out_dir, ("jsonl",), options, options.model_path, workers=workers, quiet=True)
    t0 = time.perf_counter()
    summary = run_job(config)
    wall = time.perf_counter() - t0
    if summary.failed:
        raise IvrError(f"benchmark files failed: {summary.failed}")
    texts: dict[str, str] = {}
    for path in files:
        lines = (out_dir / (Path(path).stem + ".jsonl")).read_text(encoding="utf-8").splitlines()
        texts[path] = " ".join(json.loads(x)["text"] for x in lines[1:])
    return texts, wall


def _wer_by_set(archives: list[dict[str, Any]], texts: dict[str, str]) -> dict[str, float]:
    out = {}
    for name in sorted({a["set"] for a in archives}):
        chosen = [a for a in archives if a["set"] == name]
        out[name] = round(wer([a["reference"] for a in chosen], [texts[a["path"]] for a in chosen]), 4)
    out["all"] = round(wer([a["reference"] for a in archives], [texts[a["path"]] for a in archives]), 4)
    return out


def run_transcribe_bench(args: argparse.Namespace, workers: int, options: EngineOptions) -> int:
    from ivr.transcribe.executors import available_cores

    cores = available_cores()
    with tempfile.TemporaryDirectory(prefix="ivr-tbench-") as tmp:
        work = Path(args.work_dir) if args.work_dir else Path(tmp)
        archives = build_archives(Path(args.shared), work / "archives", args.archives, args.archive_s)
        files = [a["path"] for a in archives]
        audio_s = sum(a["duration_s"] for a in archives)
        print(f"{len(files)} archive files, {audio_s / 60:.1f} min of audio ({sum(a['prompts'] for a in archives)} "
              f"prompts joined); {cores} cores", flush=True)
        seq_texts, seq_wall = run_sequential(files, options, cores)
        print(f"sequential faster-whisper done in {seq_wall:.1f} s", flush=True)
        batch_options = replace(options)
        batch_texts, batch_wall = run_batch(files, batch_options, workers, work / "out")
        print(f"ivr transcribe done in {batch_wall:.1f} s", flush=True)
    rows = [
        {"path": "sequential faster-whisper (WhisperModel.transcribe per file)", "wall_s": round(seq_wall, 2),
         "audio_s_per_wall_s": round(audio_s / seq_wall, 2), "wer": _wer_by_set(archives, seq_texts),
         "settings": {"cpu_threads": cores, "beam_size": options.beam_size, "vad": False}},
        {"path": f"ivr transcribe ({workers} worker(s) x {options.cpu_threads} thread(s), batched, VAD)",
         "wall_s": round(batch_wall, 2), "audio_s_per_wall_s": round(audio_s / batch_wall, 2),
         "wer": _wer_by_set(archives, batch_texts),
         "settings": {"workers": workers, "cpu_threads": options.cpu_threads, "beam_size": options.beam_size,
                      "batch_size": options.batch_size, "vad": True}},
    ]
    ratio = seq_wall / batch_wall
    print()
    print(f"{'path':<70} {'wall s':>7} {'audio s/s':>9}  WER (by set)")
    for row in rows:
        wers = ", ".join(f"{k} {v:.1%}" for k, v in row["wer"].items())
        print(f"{row['path']:<70} {row['wall_s']:>7.1f} {row['audio_s_per_wall_s']:>9.1f}  {wers}")
    print(f"throughput ratio (ivr transcribe / sequential): {ratio:.2f}x")
    result = {"audio_s": round(audio_s, 2), "files": len(files), "cores": cores,
              "machine": platform.platform(), "model": args.model, "rows": rows, "ratio": round(ratio, 3),
              "archives": [{k: v for k, v in a.items() if k != "reference"} | {"path": Path(a["path"]).name}
                           for a in archives]}
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(f"results in {out}")
    return 0
