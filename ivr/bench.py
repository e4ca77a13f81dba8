"""`ivr bench`: ASR accuracy and speed, TTS speed, voice-to-voice latency over simulated calls, and the
calls right over a conversation-test suite (`ivr test`, suites/bank/dev by default).

Prints a table and writes JSON. Data: ../shared/data/speech (ivr-prompts, fsdd), at 8 kHz.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from ivr.errors import IvrError
from ivr.jsonreport import write_json_report
from ivr.wer import wer
from models.errors import AgentError
from telephony.audio.audiofile import read_audio
from telephony.audio.resample import resample

CALL_RATE_HZ = 8000
TTS_TEXTS = [
    "Your balance is one thousand two hundred dollars. Is there anything else I can help you with?",
    "Our branches are open Monday to Friday, nine to five. Is there anything else?",
    "I have blocked your card. A new one will arrive within five working days.",
    "Sorry, I didn't catch that. You can say balance, lost card, opening hours, or agent.",
]
CALL_SCRIPTS: list[list[str]] = [
    ["What is my balance?", "No, that's all."],
    ["I lost my card.", "No thanks."],
    ["When are you open?", "No, that is all."],
    ["I want to talk to an agent."],
    ["Balance please.", "Yes.", "Opening hours.", "No."],
]


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def _dataset(shared: Path, name: str, limit: int) -> list[tuple[Path, str]]:
    root = shared / "data" / "speech" / name
    manifest = root / ("manifest.tsv" if name == "ivr-prompts" else "manifest.csv")
    if not manifest.exists():
        raise IvrError(f"benchmark data not found at {manifest}: put the project's shared/ directory "
                       "beside the repository or pass --shared DIR")
    with manifest.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t" if manifest.suffix == ".tsv" else ","))
    step = max(1, len(rows) // limit)
    return [(root / r["path"], r["text"]) for r in rows[::step][:limit]]


def bench_asr(backend: str, model: str, items: list[tuple[Path, str]]) -> dict[str, Any]:
    from asr.factory import load_recognizer

    recognizer = load_recognizer(backend, model)
    recognizer.transcribe(np.zeros(CALL_RATE_HZ, dtype=np.int16), CALL_RATE_HZ)
    refs, hyps = [], []
    audio_s = compute_s = 0.0
    for path, text in items:
        clip = read_audio(path)
        samples = resample(clip.mono(), clip.sample_rate_hz, CALL_RATE_HZ)
        t0 = time.perf_counter()
        result = recognizer.transcribe(samples, CALL_RATE_HZ)
        compute_s += time.perf_counter() - t0
        audio_s += samples.size / CALL_RATE_HZ
        refs.append(text)
        hyps.append(result.text)
    return {"files": len(items), "audio_s": round(audio_s, 1), "wer": round(wer(refs, hyps), 4),
            "rtf": round(compute_s / audio_s, 4)}


def bench_tts(engine: str) -> dict[str, Any]:
    from tts.factory import load_synthesizer
    from tts.stream import speak

    synth = load_synthesizer(engine, "", cache_dir=None)
    synth.synthesize("Hello.")
    ttfa, rtfs = [], []
    for text in TTS_TEXTS:
        t0 = time.perf_counter()
        first = None
        samples = 0
        for chunk in speak(synth, text, CALL_RATE_HZ):
            if first is None:
                first = time.perf_counter() - t0
            samples += chunk.size
        total = time.perf_counter() - t0
        ttfa.append(1000.0 * (first or total))
        rtfs.append(total / max(samples / CALL_RATE_HZ, 1e-6))
    return {"texts": len(TTS_TEXTS), "ttfa_ms_p50": round(statistics.median(ttfa), 1),
            "ttfa_ms_max": round(max(ttfa), 1), "rtf": round(statistics.mean(rtfs), 4)}


def bench_calls(n_calls: int, services: Any) -> dict[str, Any]:
    from ivr.call.stages import reply_stages, summarize
    from ivr.simulate import simulate_call
    from telephony.wavfile import CallerTurn

    latencies: list[float] = []
    stages: list[dict[str, float]] = []
    outcomes: dict[str, int] = {}
    for i in range(n_calls):
        script = CALL_SCRIPTS[i % len(CALL_SCRIPTS)]
        call = simulate_call(services, turns=[CallerTurn(say=t) for t in script], fast=True)
        latencies.extend(call.latencies_ms())
        stages.extend(reply_stages(call.session.log.events))
        outcomes[call.result.outcome] = outcomes.get(call.result.outcome, 0) + 1
    return {"calls": n_calls, "turns": len(latencies), "v2v_ms_p50": round(_percentile(latencies, 50), 1),
            "v2v_ms_p95": round(_percentile(latencies, 95), 1), "outcomes": outcomes,
            "end_of_turn_silence_ms": services.config.call.end_of_turn_silence_ms, "stages": summarize(stages)}


BEFORE = "before: silence, no cache"
NOW = "now: ahead, presynth"
"""The two settings `ivr bench` and `ivr bench-sip` compare: the turn ended by its silence and every prompt
synthesized when said, as the agent ran before (ivr.config.SILENCE_ONLY, no prompt cache); the defaults now:
the turn decoded ahead at a pause and ended early when its words settle it, the flow's prompts synthesized
into the cache at start-up."""


def both_settings(services: Any, cache_dir: Path) -> dict[str, Any]:
    """{setting: Services} over the same loaded models (`services` loaded with the defaults and no prompt
    cache)."""
    from dataclasses import replace

    from ivr.call.services import Services
    from ivr.config import SILENCE_ONLY
    from tts.cache import CachedSynthesizer, PromptCache

    before_call = replace(services.config.call, **SILENCE_ONLY)
    before: Services = replace(services, config=replace(services.config, call=before_call))
    now: Services = replace(services, config=replace(services.config, tts_cache_dir=str(cache_dir)),
                            synthesizer=CachedSynthesizer(services.synthesizer, PromptCache(cache_dir)))
    now.presynthesize()
    return {BEFORE: before, NOW: now}


def default_suite() -> str:
    """suites/bank/dev of the repository when it is there, else "" (no conversation-test row)."""
    path = Path(__file__).resolve().parents[1] / "suites" / "bank" / "dev"
    return str(path) if path.is_dir() else ""


def bench_suite(suite: str, services: Any) -> dict[str, Any]:
    """Calls right over a conversation-test suite (`ivr test`), with the caller voices' WER."""
    from ivr.convtest.report import summarize
    from ivr.convtest.runner import run_suite
    from ivr.convtest.voices import DEFAULT_CACHE_DIR

    if not suite:
        return {"skipped": "no suite given, and suites/bank/dev is not in this checkout (--suite DIR)"}
    if not Path(suite).exists():
        return {"skipped": f"no suite at {suite}"}
    t0 = time.perf_counter()
    results = run_suite(services, suite, DEFAULT_CACHE_DIR.expanduser())
    summary = summarize(results)
    failed = [r.scenario.name for r in results if not r.passed]
    return {"suite": suite, "calls": summary["calls"], "right": summary["right"], "percent": summary["percent"],
            "wer": summary["wer"]["overall"]["wer"], "by_tag": summary["by_tag"], "failed": failed,
            "wall_s": round(time.perf_counter() - t0, 1)}


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    shared = Path(args.shared)
    parts = set(getattr(args, "parts", "asr,tts,calls").split(","))
    results: dict[str, Any] = {"machine": {"python": platform.python_version(), "cpus": _cpus(),
                                           "load_avg_before": [round(x, 2) for x in os.getloadavg()]},
                               "asr": {}, "tts": {}, "calls": {}}
    datasets = {name: _dataset(shared, name, args.limit) for name in ("ivr-prompts", "fsdd")} if "asr" in parts else {}
    backends = [("whisper", "tiny.en")] + ([("vosk", args.vosk_model)] if args.vosk_model else [])
    for backend, model in backends:
        for name, items in datasets.items():
            results["asr"][f"{backend}/{name}"] = bench_asr(backend, model, items)
    for engine in ("piper", "espeak-ng") if "tts" in parts else ():
        try:
            results["tts"][engine] = bench_tts(engine)
        except AgentError as exc:
            results["tts"][engine] = {"error": str(exc)}
    import tempfile

    from ivr.call.services import Services
    from ivr.config import AgentConfig

    if "calls" in parts:
        loaded = Services.load(AgentConfig(tts_cache_dir=""))
        with tempfile.TemporaryDirectory(prefix="ivr-bench-prompts-") as cache_dir:
            settings = both_settings(loaded, Path(cache_dir))
            results["calls"] = {name: bench_calls(args.calls, services) for name, services in settings.items()}
            results["suite"] = _suite_row(args, settings[NOW])
    if "web" in parts:
        from ivr.webcall.bench import bench_web

        results["web"] = bench_web(getattr(args, "web_calls", 3), getattr(args, "config", None))
    if "console" in parts:
        from ivr.console.bench import measure, print_table

        results["console"] = measure(argparse.Namespace(calls=getattr(args, "console_calls", 50_000), days=42,
                                                        repeat=7, store=None))
        print_table(results["console"])
    results["machine"]["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    _print_table(results)
    out = write_json_report(args.json, results)
    print(f"\nJSON written to {out}")
    return results


def _suite_row(args: argparse.Namespace, services: Any) -> dict[str, Any]:
    suite = default_suite() if args.suite is None else args.suite
    try:
        return bench_suite(suite, services)
    except AgentError as exc:
        return {"skipped": str(exc)}


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _print_web(web: dict[str, Any] | None) -> None:
    if not web:
        return
    print(f"\n{'Web calls (WebRTC)':<28}{'calls':>7}{'turns':>7}{'v2v p50 ms':>12}{'v2v p95 ms':>12}")
    row = f"{web['completed']:>7}{web['samples']:>7}{web['p50_ms']:>12}{web['p95_ms']:>12}"
    print(f"{'console, one at a time':<28}{row}")
    agent = web.get("agent_side", {})
    if agent.get("samples"):
        row = f"{'':>7}{agent['samples']:>7}{agent['p50_ms']:>12}{agent['p95_ms']:>12}"
        print(f"{'  agent side (server log)':<28}{row}")
    print("  (voice-to-voice from the caller's side: its last frame of speech sent to the agent's first frame of "
          "speech received, Opus over loopback)")


def _print_table(results: dict[str, Any]) -> None:
    if results["asr"]:
        print(f"\n{'ASR (8 kHz)':<28}{'files':>7}{'audio s':>9}{'WER':>8}{'RTF':>8}")
    for key, row in results["asr"].items():
        print(f"{key:<28}{row['files']:>7}{row['audio_s']:>9}{row['wer']:>8.3f}{row['rtf']:>8.3f}")
    if results["tts"]:
        print(f"\n{'TTS (to 8 kHz)':<28}{'TTFA p50 ms':>12}{'TTFA max':>10}{'RTF':>8}")
    for key, row in results["tts"].items():
        if "error" in row:
            print(f"{key:<28}  {row['error']}")
        else:
            print(f"{key:<28}{row['ttfa_ms_p50']:>12}{row['ttfa_ms_max']:>10}{row['rtf']:>8.3f}")
    _print_web(results.get("web"))
    calls = results["calls"]
    if not calls:
        return
    print(f"\n{'Simulated calls (--fast)':<28}{'calls':>7}{'turns':>7}{'v2v p50 ms':>12}{'v2v p95 ms':>12}")
    for name, c in calls.items():
        print(f"{name:<28}{c['calls']:>7}{c['turns']:>7}{c['v2v_ms_p50']:>12}{c['v2v_ms_p95']:>12}")
    print("  (voice-to-voice: end of caller speech to first agent audio; whisper tiny.en + piper)\n")
    from ivr.call.stages import table_lines

    print("\n".join(table_lines({name: c["stages"] for name, c in calls.items()})))
    suite = results.get("suite", {})
    load = results["machine"]["load_avg_after"]
    print(f"  (load average {load[0]} over 1 min, {load[1]} over 5 min, on {results['machine']['cpus']} CPUs)")
    if "skipped" in suite:
        print(f"\nConversation tests: skipped ({suite['skipped']})")
    elif suite:
        wer = f"{100 * suite['wer']:.1f}%" if suite["wer"] is not None else "-"
        name = "/".join(Path(suite["suite"]).parts[-3:])[-27:]
        print(f"\n{'Conversation tests':<28}{'calls':>7}{'right':>7}{'%':>8}{'WER':>8}")
        print(f"{name:<28}{suite['calls']:>7}{suite['right']:>7}{suite['percent']:>8.1f}{wer:>8}")
        print("  (calls right: every expectation of the scenario held; WER: the caller turns' transcripts)")
