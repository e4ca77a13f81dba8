"""The `ivr` command: simulate calls from WAV files, run benchmarks."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from asr.errors import AsrError
from dialog.errors import DialogError, FlowError
from ivr.call.events import BargeIn, CallEnded, CallEvent, Dtmf, NoInput, ReplyStarted, Said, Transcript
from ivr.cliargs import add_model_args, agent_config
from ivr.errors import IvrError
from ivr.logs import FORMATS
from ivr.logs import configure as configure_logging
from models.errors import AgentError, ModelError
from telephony.errors import TelephonyError
from tts.errors import TtsError

PARTS: tuple[tuple[type[AgentError], str], ...] = (
    (AsrError, "speech recognition"),
    (TtsError, "speech synthesis"),
    (FlowError, "call flow"),
    (DialogError, "dialog"),
    (TelephonyError, "telephony"),
    (ModelError, "model"),
)
"""Each package's error base and the part of the agent it names, the more specific first; an application
error (IvrError: a bad argument, config or store) or any other AgentError is an `error`."""


def error_line(exc: AgentError) -> str:
    """The one line a user sees for `exc`: `ivr: speech recognition: MESSAGE`, `ivr: error: MESSAGE`, ..."""
    part = next((name for kind, name in PARTS if isinstance(exc, kind)), "error")
    return f"ivr: {part}: {exc}"


def _print_event(event: CallEvent) -> None:
    t = f"[{event.t_ms / 1000:7.2f}s]"
    line = ""
    match event:
        case Said(text=text):
            line = f"agent:  {text}"
        case Transcript(text=text, confidence=confidence):
            line = f"caller: {text or '(nothing recognized)'}  (confidence {confidence:.2f})"
        case Dtmf(digit=digit):
            line = f"caller: [key {digit}]"
        case BargeIn(reaction_ms=reaction_ms):
            line = f"  (caller interrupted; prompt stopped {reaction_ms:.0f} ms after speech onset)"
        case NoInput(timeout_ms=timeout_ms):
            line = f"  (no input for {timeout_ms / 1000:.1f} s)"
        case ReplyStarted(latency_ms=latency_ms):
            line = f"  (voice-to-voice {latency_ms:.0f} ms)"
        case CallEnded(outcome=outcome, reason=reason, target=target):
            where = f" to {target}" if target else ""
            line = f"call {outcome}{where} ({reason})"
    if line:
        print(f"{t} {line}", flush=True)


def cmd_call(args: argparse.Namespace) -> int:
    from ivr.call.services import Services
    from ivr.simulate import simulate_call
    from telephony.wavfile import CallerTurn, load_script

    if args.script and args.wav:
        raise IvrError("give caller WAV files or --script, not both")
    if not args.script and not args.wav:
        raise IvrError("give a caller WAV file (or several, one per turn) or --script caller.yaml")
    if args.raw and len(args.wav) != 1:
        raise IvrError("--raw plays exactly one caller recording from the start of the call")
    turns = load_script(args.script) if args.script else [CallerTurn(wav=w) for w in args.wav]
    if not args.raw:  # check the files before loading models
        from telephony.audio.audiofile import read_audio
        for turn in turns:
            if turn.wav:
                read_audio(turn.wav)
    out_dir = Path(args.out) if args.out else Path("calls") / time.strftime("%Y%m%d-%H%M%S")
    services = Services.load(agent_config(args))
    from ivr.store.hook import call_store_writer, live_spool
    store = call_store_writer(args, services.machine.flow)
    listeners = [fn for fn in (None if args.quiet else _print_event, store) if fn is not None]
    spools: list[Any] = []  # the call's audio for supervisors listening in (ivr.store.liveaudio)

    def prepare(session: Any) -> None:
        if store is not None:
            spools.append(live_spool(store.store, session))

    try:
        call = simulate_call(services, turns=None if args.raw else turns, raw_wav=args.wav[0] if args.raw else None,
                             out_dir=out_dir, fast=args.fast, listener=lambda e: [fn(e) for fn in listeners],
                             prepare=prepare)
    finally:
        for spool in spools:
            if spool is not None:
                spool.close()
    if store is not None:
        store.finish(call.session.transcript, out_dir / "recording.wav")
    print(f"outputs in {out_dir}/: recording.wav (caller left, agent right), agent.wav, transcript.txt, "
          f"transcript.json, events.jsonl, summary.json")
    return 0 if call.result.outcome != "unfinished" else 1


def cmd_bench(args: argparse.Namespace) -> int:
    from ivr.bench import run_bench

    run_bench(args)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ivr", description="Voice-first call-center agent, offline on CPU.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the agent does")
    parser.add_argument("--log-format", choices=FORMATS, help="text (default) or json: one JSON object per "
                        "line with time, level, logger, call id, event and message (default $IVR_LOG_FORMAT)")
    sub = parser.add_subparsers(dest="command", required=True)

    call = sub.add_parser("call", help="simulate a whole call from caller WAV files or a script")
    call.add_argument("wav", nargs="*", help="caller recordings, one per turn (any rate, mono or stereo)")
    call.add_argument("--script", help="caller script YAML: turns of wav / say / dtmf / silence_ms / hangup")
    call.add_argument("--out", help="output directory (default calls/TIMESTAMP); its files stay there in plain")
    call.add_argument("--fast", action="store_true",
                      help="virtual clock: skip idle time, still pay real compute time")
    call.add_argument("--raw", action="store_true",
                      help="play the one WAV from the first moment of the call, as a line recording")
    call.add_argument("-q", "--quiet", action="store_true", help="don't print the conversation")
    call.add_argument("--no-store", action="store_true", help="don't write the call into the call store")
    add_model_args(call)
    call.set_defaults(func=cmd_call)

    bench = sub.add_parser("bench", help="ASR, TTS and voice-to-voice benchmarks: a table and JSON")
    bench.add_argument("--shared", default=os.environ.get("IVR_SHARED_DIR", "../shared"),
                       help="the shared data directory (default ../shared)")
    bench.add_argument("--json", default="bench-results/bench.json", help="where to write the JSON results")
    bench.add_argument("--limit", type=int, default=60, help="files per ASR data set")
    bench.add_argument("--calls", type=int, default=10, help="simulated calls for voice-to-voice latency")
    bench.add_argument("--parts", default="asr,tts,calls", help="what to run, of asr,tts,calls,web,console (calls: "
                       "the voice-to-voice rows, before and now, and the conversation-test row; web: voice-to-voice "
                       "of web calls over WebRTC through `ivr console`, from a Python caller; console: every console "
                       "page timed over a store of --console-calls synthetic calls, as python -m ivr.console.bench)")
    bench.add_argument("--console-calls", type=int, default=50_000, help="calls in the store for --parts console "
                       "(default 50000)")
    bench.add_argument("--web-calls", type=int, default=3, help="web calls, one at a time, for --parts web "
                       "(default 3; two replies each)")
    bench.add_argument("--vosk-model", help="a Vosk model directory to add a Vosk row (English data)")
    bench.add_argument("--suite", help="conversation-test suite for the calls-right row (default suites/bank/dev "
                       "when present; '' to skip)")
    bench.set_defaults(func=cmd_bench)
    from ivr.transcribe.cli import register
    register(sub)
    from ivr.serve.cli import register as register_sip
    register_sip(sub)
    from ivr.infer.cli import register as register_infer
    register_infer(sub)
    from ivr.store.cli import register as register_store
    register_store(sub)
    from ivr.console.cli import register as register_console
    register_console(sub)
    from ivr.importer.cli import register as register_import
    register_import(sub)
    from ivr.train.nlu.cli import register as register_nlu
    register_nlu(sub)
    from ivr.train.emotion.cli import register as register_emotion
    register_emotion(sub)  # after NLU: adds to its `ivr train` group
    from ivr.learn.cli import register as register_learn
    register_learn(sub)
    from ivr.convtest.cli import register as register_test
    register_test(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose, args.log_format)
    try:
        code: int = args.func(args)
        return code
    except AgentError as exc:
        print(error_line(exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
