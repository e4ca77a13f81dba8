"""The `ivr transcribe` and `ivr transcribe-bench` subcommands (registered by ivr.cli)."""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from ivr.errors import IvrError

DESCRIPTION = """\
Transcribe recordings (WAV, FLAC, MP3, OGG; any rate; mono or stereo) to files in --out, one set per
input, mirroring the folder layout. Folders are walked recursively. A rerun skips files whose outputs
are complete; outputs are written atomically, so a killed job can simply be run again.

exit status: 0 every file transcribed (or already done), 1 some files failed (they are listed at the
end and in OUT/transcribe-summary.json) or the job could not run, 130 interrupted."""


def register(sub: Any) -> None:
    """Add the subcommands to the `ivr` parser's subparsers."""
    p = sub.add_parser("transcribe", help="transcribe folders of recordings (resumable, parallel, Dask)",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--format", default="jsonl,txt",
                   help="comma-separated: jsonl (segments, word timings, confidence), srt, vtt, txt "
                        "(default jsonl,txt)")
    _engine_args(p)
    p.add_argument("--workers", type=int, help="decoding workers on this machine (default: one per core); "
                                              "more than one runs a Dask LocalCluster (see --local)")
    p.add_argument("--scheduler", help="an existing Dask scheduler: tcp://HOST:PORT or a scheduler JSON file; "
                                       "run its workers with `dask worker ... --nthreads 1`")
    _local_arg(p)
    p.add_argument("--channels", choices=["mix", "split"], default="mix",
                   help="mix: channels mixed to one; split: one speaker per channel (stereo: caller left, "
                        "agent right; more channels: ch0, ch1, ...)")
    p.add_argument("--diarize", action="store_true",
                   help="label speakers inside each channel (S1, S2, ...; with --channels split: caller/S1, ...) "
                        "with the torch-free diarizer")
    p.add_argument("--speakers", type=int, default=2, help="with --diarize: speakers per channel (0: estimate; "
                                                           "default 2)")
    p.add_argument("--emotion", action="store_true",
                   help="per-segment emotion (neutral/happy/sad/angry and negativity) from the voice and the words")
    p.add_argument("-q", "--quiet", action="store_true", help="only the summary")
    p.add_argument("--metrics-file", default="", metavar="PATH",
                   help="keep the run's figures (files by result, audio seconds) in Prometheus' text format in "
                   "PATH, e.g. node_exporter's textfile folder/ivr_transcribe.prom")
    p.set_defaults(func=cmd_transcribe)

    b = sub.add_parser("transcribe-bench",
                       help="throughput of `ivr transcribe` against sequential faster-whisper, with WER",
                       description="Builds long 'archive' recordings by joining short prompts of the shared "
                                   "speech sets (with their reference texts), then transcribes the same files "
                                   "with plain sequential faster-whisper and with `ivr transcribe`, and "
                                   "prints audio seconds per wall second and WER for both.")
    b.add_argument("--shared", default=os.environ.get("IVR_SHARED_DIR", "../shared"),
                   help="the shared data directory (default ../shared)")
    b.add_argument("--json", default="bench-results/transcribe-bench.json", help="where to write the results")
    b.add_argument("--sets", default="ivr-prompts,fsdd",
                   help="speech sets, each measured on its own (default ivr-prompts,fsdd; ivr-prompts is the "
                        "headline)")
    b.add_argument("--archives", type=int, default=4, help="archive files to build per set (default 4)")
    b.add_argument("--archive-s", type=float, default=150.0, help="length of each archive file in seconds "
                                                                   "(default 150)")
    b.add_argument("--repeat", type=int, default=2,
                   help="runs of each path per set, in alternating order; the median counts (default 2)")
    b.add_argument("--work-dir", help="where to put the archives and outputs (default: a temporary folder)")
    _engine_args(b)
    b.add_argument("--workers", type=int, help="decoding workers for `ivr transcribe` (default: one per core)")
    _local_arg(b)
    b.set_defaults(func=cmd_bench)


def _local_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--local", choices=["threads", "processes"], default="threads",
                   help="with more than one worker and no --scheduler: one process with a decoding thread per "
                        "worker (default; one model in memory, nothing to start) or a process per worker")


def _engine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="tiny.en", help="tiny.en (packaged) or a CTranslate2 Whisper directory")
    p.add_argument("--batch-size", type=int, default=8, help="30 s windows decoded together (default 8)")
    p.add_argument("--beam-size", type=int, default=5, help="beam width (default 5, faster-whisper's default)")
    p.add_argument("--cpu-threads", type=int,
                   help="CTranslate2 threads per worker (default: cores / workers; 1 with --scheduler)")
    p.add_argument("--language", default="en", help="spoken language (default en)")


def engine_options(args: argparse.Namespace, workers: int, split: bool = False) -> Any:
    from ivr.transcribe.engine import EngineOptions
    from ivr.transcribe.executors import available_cores
    from models.registry import whisper_model_dir

    for name in ("batch_size", "beam_size"):
        if getattr(args, name) < 1:
            raise IvrError(f"--{name.replace('_', '-')} must be at least 1")
    threads = args.cpu_threads
    if threads is None:
        threads = 1 if getattr(args, "scheduler", None) else max(1, available_cores() // workers)
    return EngineOptions(str(whisper_model_dir(args.model)), cpu_threads=threads, beam_size=args.beam_size,
                         batch_size=args.batch_size, language=args.language, split_channels=split)


def default_workers(args: argparse.Namespace) -> int:
    from ivr.transcribe.executors import available_cores

    workers = args.workers if args.workers is not None else available_cores()
    if workers < 1:
        raise IvrError("--workers must be at least 1")
    return int(workers)


def cmd_transcribe(args: argparse.Namespace) -> int:
    from ivr.transcribe.formats import parse_formats
    from ivr.transcribe.runner import JobConfig, run_job

    if args.speakers < 0:
        raise IvrError("--speakers must be 0 (estimate) or more")
    try:
        formats = parse_formats(args.format)
    except ValueError as exc:
        raise IvrError(str(exc)) from None
    workers = default_workers(args)
    options = replace(engine_options(args, workers, args.channels == "split"), diarize=args.diarize,
                      speakers=args.speakers if args.diarize else 2, emotion=args.emotion)
    if options.emotion:
        from ivr.transcribe.enrich import emotion_analyzer

        emotion_analyzer()  # a missing model is said here, once, before any file
    config = JobConfig(tuple(args.paths), Path(args.out), formats, options, args.model,
                       workers=workers, scheduler=args.scheduler or "", local=args.local, quiet=args.quiet,
                       metrics_file=args.metrics_file)
    summary = run_job(config)
    return 1 if summary.failed else 0


def cmd_bench(args: argparse.Namespace) -> int:
    from ivr.transcribe.bench import run_transcribe_bench

    workers = default_workers(args)
    return run_transcribe_bench(args, workers, engine_options(args, workers))
