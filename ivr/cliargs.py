"""Arguments shared by the commands that run the agent (`ivr call`, `ivr serve`, `ivr test`, benches)."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any


def agent_config(args: argparse.Namespace) -> Any:
    from ivr.config import load_config

    config = load_config(args.config)
    overrides = {k: v for k, v in (("asr_backend", args.asr), ("asr_model", args.asr_model),
                                   ("tts_engine", args.tts), ("tts_voice", args.voice),
                                   ("flow", args.flow)) if v is not None}
    call_overrides = {k: v for k, v in (("sample_rate_hz", args.rate), ("vad", args.vad)) if v is not None}
    if call_overrides:
        overrides["call"] = dataclasses.replace(config.call, **call_overrides)
    return dataclasses.replace(config, **overrides)


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="agent config YAML (defaults are built in)")
    p.add_argument("--flow", help="call flow YAML (default: the bundled bank flow)")
    p.add_argument("--asr", choices=["whisper", "vosk"], help="speech recognizer (default whisper)")
    p.add_argument("--asr-model", help="whisper: tiny.en or a CTranslate2 directory; vosk: a model directory")
    p.add_argument("--tts", choices=["piper", "espeak-ng", "coqui"], help="speech synthesizer (default piper)")
    p.add_argument("--voice", help="TTS voice (Piper: a .onnx path; default en_US-joe-medium)")
    p.add_argument("--vad", choices=["webrtc", "silero"], help="voice activity detector (default webrtc)")
    p.add_argument("--rate", type=int, help="caller line sample rate in Hz (default 8000)")


def add_webhook_args(p: argparse.ArgumentParser, receives: str) -> None:
    """--webhook URL and --webhook-secret-env VAR, as `ivr serve` and `ivr console` take them; receives: what
    the URL receives, and how."""
    p.add_argument("--webhook", metavar="URL", help=f"URL that receives {receives}")
    p.add_argument("--webhook-secret-env", metavar="VAR",
                   help="environment variable holding the webhooks' HMAC signing secret (never the secret itself)")
