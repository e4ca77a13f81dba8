"""`ivr transcribe-bench`: throughput of `ivr transcribe` against plain sequential faster-whisper.

What is measured: the short prompts of one shared speech set (../shared/data/speech: ivr-prompts,
fsdd) are joined, with `GAP_S` of silence between them, into --archives "archive" recordings of
about --archive-s seconds at 8 kHz (the telephone rate), each with its reference text joined the
same way. Each set is measured on its own: its archive files are transcribed by both paths, one
after the other in this process, --repeat times, the order alternating (sequential first, then
`ivr transcribe` first, ...); each path's wall time is the median of its runs.

- sequential: one `faster_whisper.WhisperModel` (same model, int8, all cores) calling
  `model.transcribe(audio, language, beam_size, word_timestamps=True)` file after file, with
  faster-whisper's other defaults (no VAD, temperature fallback, previous-text conditioning).
  Model loading is not timed.
- ivr transcribe: `run_job` as the command runs it (local cluster, VAD pieces, batched pipeline,
  outputs written into a fresh folder each run), timed from start to summary, so cluster start-up
  and model loading count against it.

Both read the files and resample with the same code. Speed is audio seconds per wall second; WER is
corpus WER against the joined reference texts (ivr.wer normalisation), per run (temperature fallback
samples at random, so a run's text can differ from the last), the median counts and the range is
shown. The machine may be shared,
so every run records the load average before it and the CPU that other processes used during it
(cores, from /proc/stat less this process and its children): a fair run has that near zero.

fsdd is a stress case rather than a headline: its archives are runs of the same spoken digit, on
which plain faster-whisper (previous-text conditioning over 30 s windows) falls into repetition
loops, which costs it time and WER.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ivr.errors import IvrError
from ivr.transcribe.engine import WHISPER_RATE_HZ, EngineOptions
from ivr.wer import wer
from telephony.audio.pcm import to_float32

log = logging.getLogger(__name__)

SETS = ("ivr-prompts", "fsdd")
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


def build_archives(shared: Path, out_dir: Path, sets: list[str], archives: int,
                   archive_s: float) -> list[dict[str, Any]]:
    """Write `archives` WAV files per set; returns [{path, set, reference, duration_s, prompts}]."""
    from telephony.audio.audiofile import read_audio, write_wav
    from telephony.audio.resample import resample

    out_dir.mkdir(parents=True, exist_ok=True)
    gap = np.zeros(int(GAP_S * ARCHIVE_RATE_HZ), dtype=np.int16)
    made: list[dict[str, Any]] = []
    for name in sets:
        items = _manifest(shared, name)
        pos = 0
        for i in range(archives):
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


class CpuMeter:
    """CPU that other processes use while a run goes on, in cores on average (Linux /proc/stat);
    this process and the children it has reaped are subtracted."""

    def __init__(self) -> None:
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._start = self._sample()

    def _sample(self) -> tuple[float, float, float] | None:
        try:
            with open("/proc/stat", encoding="ascii") as f:
                fields = [int(x) for x in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        busy = sum(fields[:8]) - fields[3] - fields[4]  # all but idle and iowait (guest is inside user)
        own = sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
                  for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
        return busy / self._tick, own, time.monotonic()

    def own_cpu_s(self) -> float | None:
        """CPU seconds this process and its reaped children used since the meter started."""
        end = self._sample()
        return None if self._start is None or end is None else round(end[1] - self._start[1], 2)

    def others_cores(self) -> float | None:
        end = self._sample()
        if self._start is None or end is None or end[2] <= self._start[2]:
            return None
        others = (end[0] - self._start[0]) - (end[1] - self._start[1])
        return round(max(0.0, others) / (end[2] - self._start[2]), 2)


def run_sequential(files: list[str], options: EngineOptions, cores: int, model: Any) -> tuple[dict[str, str], float]:
    """Plain faster-whisper, file by file; returns ({path: text}, wall seconds)."""
    from telephony.audio.audiofile import read_audio
    from telephony.audio.resample import resample

    texts: dict[str, str] = {}
    t0 = time.perf_counter()
    for path in files:
        clip = read_audio(path)
        audio = to_float32(resample(clip.mono(), clip.sample_rate_hz, WHISPER_RATE_HZ))
        segments, _ = model.transcribe(audio, language=options.language or None, beam_size=options.beam_size,
                                       word_timestamps=True)
        texts[path] = " ".join(s.text.strip() for s in segments)
    return texts, time.perf_counter() - t0


def run_batch(files: list[str], options: EngineOptions, workers: int, local: str,
              out_dir: Path) -> tuple[dict[str, str], float]:
    """`ivr transcribe` on the same files into a fresh `out_dir`; returns ({path: text}, wall seconds)."""
    from ivr.transcribe.runner import JobConfig, run_job

    config = JobConfig(tuple(files), out_dir, ("jsonl",), options, options.model_path, workers=workers,
                       local=local, quiet=True)
    t0 = time.perf_counter()
    summary = run_job(config)
    wall = time.perf_counter() - t0
    if summary.failed or summary.skipped:
        raise IvrError(f"benchmark files failed or were skipped: {summary.failed}")
    texts: dict[str, str] = {}
    for path in files:
        lines = (out_dir / (Path(path).stem + ".jsonl")).read_text(encoding="utf-8").splitlines()
        texts[path] = " ".join(json.loads(x)["text"] for x in lines[1:])
    return texts, wall


def _wer(archives: list[dict[str, Any]], texts: dict[str, str]) -> float:
    return round(wer([a["reference"] for a in archives], [texts[a["path"]] for a in archives]), 4)


def _measure(name: str, archives: list[dict[str, Any]], options: EngineOptions, workers: int, local: str,
             cores: int, repeat: int, model: Any, out_dir: Path) -> dict[str, Any]:
    """Both paths on one set's archives, `repeat` times in alternating order."""
    files = [a["path"] for a in archives]
    audio_s = sum(a["duration_s"] for a in archives)
    runs: dict[str, list[dict[str, Any]]] = {"sequential": [], "ivr transcribe": []}
    texts: dict[str, dict[str, str]] = {}
    for rep in range(repeat):
        order = ["sequential", "ivr transcribe"] if rep % 2 == 0 else ["ivr transcribe", "sequential"]
        for path in order:
            load = os.getloadavg()[0]
            meter = CpuMeter()
            if path == "sequential":
                got, wall = run_sequential(files, options, cores, model)
            else:
                got, wall = run_batch(files, options, workers, local, out_dir / f"{name}-{rep}")
            others, cpu_s = meter.others_cores(), meter.own_cpu_s()
            if path in texts and got != texts[path]:
                log.info("%s gave a different text on run %d of %s", path, rep + 1, name)
            texts.setdefault(path, got)
            runs[path].append({"wall_s": round(wall, 2), "cpu_s": cpu_s, "load_1m_before": round(load, 2),
                               "others_cores": others, "first": order[0] == path, "wer": _wer(archives, got)})
            print(f"  {name} run {rep + 1}: {path} {wall:.1f} s, {cpu_s} CPU s (load {load:.2f}, other work "
                  f"{'?' if others is None else f'{others:.2f}'} cores)", flush=True)
    rows = []
    for path, label, settings in (
            ("sequential", "sequential faster-whisper (WhisperModel.transcribe per file)",
             {"cpu_threads": cores, "beam_size": options.beam_size, "vad": False}),
            ("ivr transcribe", f"ivr transcribe ({_layout(workers, local, options)}, batched, VAD)",
             {"workers": workers, "local": local, "cpu_threads": options.cpu_threads,
              "beam_size": options.beam_size, "batch_size": options.batch_size, "vad": True})):
        wall = statistics.median(r["wall_s"] for r in runs[path])
        busy = [r["others_cores"] for r in runs[path] if r["others_cores"] is not None]
        cpu = [r["cpu_s"] for r in runs[path] if r["cpu_s"] is not None]
        rows.append({"path": label, "wall_s": round(wall, 2), "audio_s_per_wall_s": round(audio_s / wall, 2),
                     "cpu_s": round(statistics.median(cpu), 2) if cpu else None,
                     "wer": round(statistics.median(r["wer"] for r in runs[path]), 4),
                     "wer_min": min(r["wer"] for r in runs[path]), "wer_max": max(r["wer"] for r in runs[path]),
                     "load_1m_before": round(statistics.median(r["load_1m_before"] for r in runs[path]), 2),
                     "others_cores": round(max(busy), 2) if busy else None,
                     "runs": runs[path], "settings": settings})
    return {"set": name, "files": len(files), "audio_s": round(audio_s, 2), "rows": rows,
            "ratio": round(rows[0]["wall_s"] / rows[1]["wall_s"], 3)}


def _range(low: float, high: float) -> str:
    return f"{low:.1%}-{high:.1%}" if low != high else f"{low:.1%}"


def _layout(workers: int, local: str, options: EngineOptions) -> str:
    if workers == 1:
        return f"1 process x {options.cpu_threads} thread(s)"
    if local == "threads":
        return f"1 process x {workers} decoding threads x {options.cpu_threads} core(s)"
    return f"{workers} processes x {options.cpu_threads} thread(s)"


def run_transcribe_bench(args: argparse.Namespace, workers: int, options: EngineOptions) -> int:
    from asr.whisper import load_whisper_model
    from ivr.transcribe.executors import available_cores

    cores = available_cores()
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = [s for s in sets if s not in SETS]
    if unknown or not sets:
        raise IvrError(f"unknown --sets {', '.join(unknown) or '(none)'}: choose from {', '.join(SETS)}")
    if args.repeat < 1:
        raise IvrError("--repeat must be at least 1")
    load_start = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory(prefix="ivr-tbench-") as tmp:
        work = Path(args.work_dir) if args.work_dir else Path(tmp)
        archives = build_archives(Path(args.shared), work / "archives", sets, args.archives, args.archive_s)
        model = load_whisper_model(options.model_path, options.compute_type, cores,
                                   user="the transcription benchmark")
        for name in sets:
            chosen = [a for a in archives if a["set"] == name]
            print(f"{name}: {len(chosen)} archive files, {sum(a['duration_s'] for a in chosen) / 60:.1f} min of "
                  f"audio ({sum(a['prompts'] for a in chosen)} prompts joined); {cores} cores; "
                  f"{args.repeat} run(s) of each path", flush=True)
            results.append(_measure(name, chosen, options, workers, args.local, cores, args.repeat, model,
                                    work / "out"))
    load_end = os.getloadavg()
    print()
    print(f"{'set':<12} {'path':<72} {'wall s':>7} {'audio s/s':>9} {'CPU s':>6} {'WER':>6} {'WER runs':>11} "
          f"{'load':>5} {'others':>6}")
    for res in results:
        for row in res["rows"]:
            others = "?" if row["others_cores"] is None else f"{row['others_cores']:.2f}"
            cpu = "?" if row["cpu_s"] is None else f"{row['cpu_s']:.1f}"
            print(f"{res['set']:<12} {row['path']:<72} {row['wall_s']:>7.1f} {row['audio_s_per_wall_s']:>9.1f} "
                  f"{cpu:>6} {row['wer']:>6.1%} {_range(row['wer_min'], row['wer_max']):>11} "
                  f"{row['load_1m_before']:>5.2f} {others:>6}")
        print(f"{res['set']:<12} throughput ratio (ivr transcribe / sequential): {res['ratio']:.2f}x")
    print("wall s, CPU s (this process and its workers), WER: median of the runs; WER runs: lowest-highest "
          "(temperature fallback samples at random, so a path's text can change between runs); load: 1-minute "
          "load average before a run (median); others: most CPU (cores, average over a run) that other processes used "
          "during any run of that path")
    if "fsdd" in sets:
        print("fsdd: runs of one repeated digit; plain faster-whisper loops on them (a stress case, not the "
              "headline)")
    headline = next((r for r in results if r["set"] == "ivr-prompts"), results[0])
    result = {"headline_set": headline["set"], "ratio": headline["ratio"], "cores": cores,
              "machine": platform.platform(), "model": args.model, "repeat": args.repeat,
              "load_avg_start": [round(x, 2) for x in load_start], "load_avg_end": [round(x, 2) for x in load_end],
              "sets": results,
              "archives": [{k: v for k, v in a.items() if k != "reference"} | {"path": Path(a["path"]).name}
                           for a in archives]}
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(f"results in {out}")
    return 0
