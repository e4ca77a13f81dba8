"""`ivr import FILE...`: the subcommand, registered into the `ivr` CLI by `register(subparsers)`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ivr.errors import IvrError


def register(subparsers: Any) -> None:
    from ivr.store.cli import add_store_args

    p = subparsers.add_parser("import", help="store recordings made elsewhere: transcribed, speakers from the "
                              "channels (stereo: caller left, agent right) or diarized (mono)")
    p.add_argument("files", nargs="+", help="audio files (WAV, FLAC, ...)")
    p.add_argument("--diarizer", choices=["auto", "mfcc", "pyannote"], default="auto",
                   help="mono recordings: mfcc (VAD + MFCC statistics + clustering, no torch; what auto picks) or "
                   "pyannote (the extra 'pyannote': segmentation-3.0 + resemblyzer, needs --diarizer-model)")
    p.add_argument("--diarizer-model", metavar="PATH",
                   help="pyannote: the segmentation-3.0 checkpoint (pytorch_model.bin or its folder; default "
                   "$IVR_PYANNOTE_SEGMENTATION); nothing is downloaded")
    p.add_argument("--speakers", type=int, default=2, help="speakers in a mono recording (0: estimate; default 2)")
    p.add_argument("--asr", choices=["whisper", "vosk"], default="whisper", help="recognizer (default whisper)")
    p.add_argument("--asr-model", default="", help="recognizer model (default tiny.en)")
    p.add_argument("--caller", help="the caller's number for a single file (stored only hashed)")
    p.add_argument("--no-emotion", action="store_true",
                   help="do not read the caller's emotion (voice and words models, as in a live call)")
    p.add_argument("--no-intent", action="store_true", help="do not read the caller's intents (the NLU model)")
    add_store_args(p)
    p.set_defaults(func=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    from asr.diarize import load_diarizer
    from asr.factory import load_recognizer
    from ivr.importer import import_recording
    from ivr.importer.analysis import TurnAnalysis
    from ivr.store.cli import open_store

    files = [Path(f) for f in args.files]
    for f in files:
        if not f.is_file():
            raise IvrError(f"{f}: no such file")
    if args.caller and len(files) > 1:
        raise IvrError("--caller applies to one file; give exactly one")
    diarizer = load_diarizer(args.diarizer, args.diarizer_model)
    recognizer = load_recognizer(args.asr, args.asr_model)
    analysis = TurnAnalysis.load(emotion=not args.no_emotion, intent=not args.no_intent)
    read = ", ".join(f"{what} from {how}" for what, how in (("emotion", analysis.emotion_from),
                                                               ("intent", analysis.intent_from)) if how)
    with open_store(args) as store:
        for f in files:
            call_id, how, turns = import_recording(store, f, recognizer, diarizer, args.speakers or None,
                                                   args.caller, analysis)
            print(f"stored {f} as call {call_id}: {turns} turns, speakers from {how}; {read or 'not analysed'}")
    return 0
