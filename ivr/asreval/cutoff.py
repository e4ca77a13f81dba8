"""python -m ivr.asreval.cutoff [--split tune|check] [--pauses 0,250,350,450]: are callers who pause
mid-turn cut off, and how long does a finished turn wait for its transcript?

Each turn of the spoken dev set with a pause between words (`ivr.asreval.turn_end.inner_gap`) is heard
again with P ms of silence added at that pause (P=0: the pause as spoken), through the pieces the session
hears with: the VAD, the turn detector, the recognizer lane with its decode ahead, and the settled rule
(`ivr.call.recognition`), on a virtual clock that pays every decode's real time. A turn is *cut off* when
it ends before the caller's second part begins. The old agent (`before`: the turn ends after 500 ms of
silence, decoded once it has) waits out every pause shorter than that, so the set's pauses stay below it.
`wait` is from the end of the caller's speech to the turn's transcript (end-of-turn wait plus decoding).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ivr.config import SILENCE_ONLY
from ivr.jsonreport import print_rows, write_json_report

os.environ.setdefault("HF_HUB_OFFLINE", "1")

FRAME_MS = 20
SETTINGS: dict[str, dict[str, Any]] = {"before": SILENCE_ONLY, "now": {}, "any sure": {"settled_confidence": 0.0}}


@dataclass(frozen=True)
class Heard:
    end_ms: float
    """When the turn ended (call time)."""
    transcript_ms: float
    """When its transcript was in."""
    text: str
    early: bool


def hear(audio_8k: np.ndarray, call: Any, recognizer: Any, options: Any, context: Any) -> Heard | None:
    """The first turn the session's hearing would take from this audio, and when (None: no turn)."""
    from asr.turns import Paused, SpeechStarted, TurnConfig, TurnDetector, TurnEnded
    from asr.vad import make_vad
    from ivr.call.hearing import MAX_SILENCE_TO_ASR_MS
    from ivr.call.recognition import TurnRecognition, end_of_turn_silence_ms
    from telephony.audio.frame import INTERNAL_RATE_HZ, Frame
    from telephony.audio.resample import resample
    from telephony.clock import VirtualClock

    clock = VirtualClock()
    turns = TurnDetector(make_vad(call.vad), TurnConfig(
        end_of_turn_silence_ms=end_of_turn_silence_ms(options, call.end_of_turn_silence_ms),
        pause_ms=call.decode_ahead_ms), INTERNAL_RATE_HZ)
    audio = resample(audio_8k, 8000, INTERNAL_RATE_HZ).astype(np.int16)
    hop = INTERNAL_RATE_HZ * FRAME_MS // 1000
    audio = np.pad(audio, (0, 10 * INTERNAL_RATE_HZ))  # the line stays open after the caller stops
    lane = ThreadPoolExecutor(1)
    rec: TurnRecognition | None = None
    silence_fed = 0.0
    ended: tuple[float, bool] | None = None
    try:
        for i in range(audio.size // hop):
            _wait_for(rec, clock)
            frame = Frame(audio[i * hop:(i + 1) * hop].tobytes(), INTERNAL_RATE_HZ, clock.now_ms())
            events = turns.process(frame)
            speech = turns.last_probability >= turns.config.threshold
            if rec is not None and rec.result is None and turns.in_speech:
                silence_fed = 0.0 if speech else silence_fed + FRAME_MS
                if silence_fed <= MAX_SILENCE_TO_ASR_MS:
                    rec.feed(frame.pcm, speech)
            for event in events:
                if isinstance(event, SpeechStarted) and rec is None:
                    rec = TurnRecognition(recognizer, lane, clock, INTERNAL_RATE_HZ, options, context)
                    rec.feed(np.asarray(event.audio, dtype="<i2").tobytes())
                elif isinstance(event, Paused) and rec is not None and rec.result is None:
                    rec.decode_ahead()
                elif isinstance(event, TurnEnded) and rec is not None and rec.result is None:
                    rec.finish()
                    ended = (clock.now_ms(), False)
            if (rec is not None and rec.result is None and call.complete_timeout_ms > 0 and turns.in_speech
                    and turns.silence_ms >= call.complete_timeout_ms):
                heard = rec.heard_ahead()
                if heard is not None and rec.settles(heard, call.settled_confidence):
                    turns.end_now()
                    rec.finish()
                    ended = (clock.now_ms(), True)
            clock.advance(FRAME_MS)
            if ended is not None and rec is not None and rec.result is not None:
                rec.received.extend(rec.result.poll())
                if rec.result.finished:
                    text = rec.received[0].text if rec.received else ""
                    return Heard(ended[0], clock.now_ms(), text, ended[1])
        return None
    finally:
        lane.shutdown(wait=True)


def _wait_for(rec: Any, clock: Any) -> None:
    """As the virtual-clock driver does: time may not pass a decode still running."""
    if rec is None:
        return
    for work in (rec.result, rec.ahead):
        while work is not None and not work.finished and work.horizon_ms() < clock.now_ms() + FRAME_MS:
            work.wait_for_output(0.05)


def with_pause(audio: np.ndarray, pause_ms: int) -> tuple[np.ndarray, int] | None:
    """The turn with `pause_ms` of its own background added at its longest pause between words, and the
    sample where its second part starts (None: no such pause)."""
    from ivr.asreval.turn_end import FRAME_S, inner_gap, speech_bounds

    rate = 8000
    first, last, rms = speech_bounds(audio, rate)
    gap = inner_gap(rms, first, last)
    if gap is None:
        return None
    hop = int(FRAME_S * rate)
    resume = gap
    while resume < last and rms[resume] < 0.08 * rms.max():
        resume += 1
    background = np.resize(audio[: max(hop, first * hop)], rate * pause_ms // 1000)
    cut = gap * hop
    return np.concatenate([audio[:cut], background, audio[cut:]]), resume * hop + background.size


def evaluate(split: str, cache: Path, pauses: list[int], limit: int = 0) -> dict[str, Any]:
    from asr.factory import load_recognizer
    from dialog.flow import load_default_flow
    from ivr.asreval.devset import build, read_turn
    from ivr.asreval.settings import listen_for
    from ivr.call.recognition import TurnContext, listen_options, whisper_settings
    from ivr.config import AgentConfig, CallConfig

    config = AgentConfig()
    recognizer = load_recognizer("whisper", "tiny.en", **whisper_settings(config.asr))
    flow = load_default_flow()
    rows: list[dict[str, Any]] = []
    turns = build(cache, (split,))
    for turn in turns[:: max(1, len(turns) // limit)] if limit else turns:
        audio = read_turn(turn)
        listen, node, said = listen_for(turn, flow)
        options = listen_options(listen, node, flow, said, config.asr.alternatives)
        context = TurnContext.of(options, flow, node, config.asr.phonetic)
        for pause in pauses:
            paused = with_pause(audio, pause)
            if paused is None:
                continue
            samples, resume = paused
            speech_end = _speech_end_ms(samples)
            for name, change in SETTINGS.items():
                call = replace(CallConfig(), **change)
                heard = hear(samples, call, recognizer, options, context)
                if heard is None:
                    continue
                rows.append({"voice": turn.voice.name, "node": turn.node, "text": turn.text, "pause_ms": pause,
                             "setting": name, "heard": heard.text, "early": heard.early,
                             "cut_off": heard.end_ms < resume * 1000 / 8000,
                             "wait_ms": round(heard.transcript_ms - speech_end, 1)})
    return {"split": split, "pauses": pauses, "rows": rows, "load_avg": list(os.getloadavg())}


def _speech_end_ms(samples: np.ndarray) -> float:
    from ivr.asreval.turn_end import FRAME_S, speech_bounds

    _, last, _ = speech_bounds(samples, 8000)
    return (last + 1) * FRAME_S * 1000


def table(result: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for pause in result["pauses"]:
        for name in SETTINGS:
            rows = [r for r in result["rows"] if r["pause_ms"] == pause and r["setting"] == name]
            if not rows:
                continue
            waits = [r["wait_ms"] for r in rows if not r["cut_off"]]
            out.append({"pause_ms": pause, "setting": name, "turns": len(rows),
                        "cut_off": round(float(np.mean([r["cut_off"] for r in rows])), 4),
                        "ended_early": round(float(np.mean([r["early"] for r in rows])), 4),
                        "wait_ms_p50": round(float(np.percentile(waits, 50)), 1) if waits else None,
                        "wait_ms_p95": round(float(np.percentile(waits, 95)), 1) if waits else None})
    return out


def main(argv: list[str] | None = None) -> int:
    from ivr.asreval.devset import split_parser

    p = split_parser("python -m ivr.asreval.cutoff", __doc__)
    p.add_argument("--pauses", default="0,250,350,450", help="ms of silence added at each turn's inner pause")
    p.add_argument("--limit", type=int, default=0, help="about this many turns, evenly spread (0: all)")
    args = p.parse_args(argv)
    result = evaluate(args.split, args.cache, [int(x) for x in args.pauses.split(",")], args.limit)
    rows = table(result)
    print(f"cut-offs on the {args.split} split's turns with a pause between words "
          f"(load {result['load_avg'][0]:.1f})")
    print_rows(rows, [("added pause", 11, lambda r: f"{r['pause_ms']} ms"), ("setting", 7, lambda r: r["setting"]),
                      ("turns", 5, lambda r: str(r["turns"])), ("cut off", 7, lambda r: f"{r['cut_off']:.1%}"),
                      ("ended early", 11, lambda r: f"{r['ended_early']:.1%}"),
                      ("wait p50", 8, lambda r: f"{r['wait_ms_p50'] or 0:.0f}"),
                      ("wait p95", 8, lambda r: f"{r['wait_ms_p95'] or 0:.0f}")])
    if args.json:
        write_json_report(args.json, {**result, "table": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
