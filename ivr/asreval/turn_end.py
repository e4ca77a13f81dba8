"""python -m ivr.asreval.turn_end [--split tune|check] [--json FILE]: the end-of-turn model on the spoken dev set.

Each turn of the dev set (bank caller turns, espeak-ng accents and Piper, through the telephone line) gives:
- a *complete* sample: the turn up to 200 ms after its speech ends (what the model sees at a short pause);
- an *incomplete* sample, for turns with a pause between words (60 ms or more, between 25% and 85% of
  the speech: a comma, the gap between digit groups, a breath): the turn cut at its longest such pause,
  followed by 200 ms of the turn's own background: a caller pausing mid-sentence. One-word answers have
  none. Some cuts leave a prefix that is a sentence of its own ("I'd like a statement | for my
  account"), so the cut-off rate is, if anything, pessimistic.
For each threshold: the share of incomplete samples the model calls complete (the callers it would cut
off) and the share of complete ones it recognizes at 200 ms (the turns it ends early); the others wait
for the silence fallback. The table gives the mean end-of-turn wait on complete turns beside the
fallback's. Model cost per call is timed on one thread (the machine's load beside it).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from ivr.jsonreport import print_rows, write_json_report

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PAUSE_S = 0.2
FRAME_S = 0.02
THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95)


def speech_bounds(audio: np.ndarray, rate: int) -> tuple[int, int, np.ndarray]:
    """First and last speech frame and each 20 ms frame's RMS: frames above a tenth of the loudest."""
    hop = int(FRAME_S * rate)
    frames = audio[: audio.size // hop * hop].reshape(-1, hop)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    loud = np.flatnonzero(rms > 0.1 * rms.max())
    return int(loud[0]), int(loud[-1]), rms


GAP_FRAMES = 3
"""An inner pause: at least this many 20 ms frames quieter than GAP_LEVEL x the loudest frame."""
GAP_LEVEL = 0.08


def inner_gap(rms: np.ndarray, first: int, last: int) -> int | None:
    """The frame where the longest pause between words starts, between 25% and 85% of the speech
    (None when the turn has none, e.g. a one-word answer)."""
    span = last - first
    lo, hi = first + int(0.25 * span), first + int(0.85 * span)
    quiet = rms < GAP_LEVEL * rms.max()
    best, best_len, start = None, 0, None
    for i in range(lo, hi + 1):
        if quiet[i] and start is None:
            start = i
        if (not quiet[i] or i == hi) and start is not None:
            length = i - start
            if length >= GAP_FRAMES and length > best_len:
                best, best_len = start, length
            start = None
    return best


def samples_of(audio: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(complete, incomplete) samples of one turn; incomplete is None without a pause between words."""
    hop, pause = int(FRAME_S * rate), int(PAUSE_S * rate)
    first, last, rms = speech_bounds(audio, rate)
    complete = audio[: min(audio.size, (last + 1) * hop + pause)]
    gap = inner_gap(rms, first, last)
    if gap is None:
        return complete, None
    background = audio[: min(first * hop, pause)]
    if background.size < pause:
        background = np.pad(background, (0, pause - background.size))
    return complete, np.concatenate([audio[: gap * hop], background])


def evaluate(split: str, cache: Path, words: bool = False) -> dict[str, Any]:
    from asr.turn_end import SmartTurn
    from ivr.asreval.devset import build
    from telephony.audio.audiofile import read_audio

    model = SmartTurn()
    judge = _WordsJudge() if words else None
    rows: list[dict[str, Any]] = []
    costs: list[float] = []
    for turn in build(cache, (split,)):
        clip = read_audio(turn.path)
        complete, incomplete = samples_of(clip.samples, clip.sample_rate_hz)
        t0 = time.perf_counter()
        p_complete = model.probability(_to_model(complete, clip.sample_rate_hz))
        costs.append((time.perf_counter() - t0) * 1000)
        row: dict[str, Any] = {"voice": turn.voice.name, "node": turn.node, "text": turn.text,
                               "complete": round(p_complete, 4), "incomplete": None}
        if incomplete is not None:
            row["incomplete"] = round(model.probability(_to_model(incomplete, clip.sample_rate_hz)), 4)
        if judge is not None:
            row.update(judge.judge(turn, complete, incomplete, clip.sample_rate_hz))
        rows.append(row)
    return {"split": split, "turns": len(rows), "rows": rows, "model_ms_p50": round(float(np.median(costs)), 1),
            "model_ms_p95": round(float(np.percentile(costs, 95)), 1), "load_avg": list(os.getloadavg())}


def _to_model(samples: np.ndarray, rate: int) -> np.ndarray:
    from asr.turn_end import MODEL_RATE_HZ
    from telephony.audio.resample import resample

    return resample(samples, rate, MODEL_RATE_HZ).astype(np.float32) / 32768.0


class _WordsJudge:
    """What the words heard so far say: does the node already have what it can act on (a keyword or spoken
    key, a yes/no, a digit string of the wanted length), and is that what the caller meant?"""

    def __init__(self) -> None:
        from dialog.flow import load_default_flow
        from ivr.asreval.run import Judge
        from ivr.asreval.settings import make

        self.setting = make("fit+digits+yesno+menu=question+beam3+nbest3+phonetic+unprompted")
        self.flow = load_default_flow()
        self.meant = Judge(self.flow, None)

    def heard(self, turn: Any, samples: np.ndarray, rate: int) -> tuple[str, bool, bool, float]:
        from ivr.asreval.settings import listen_for
        from ivr.call.recognition import (
            TurnContext,
            hypothesis_score,
            listen_options,
            lowest_confidence,
            settled,
            understand_hypotheses,
        )

        listen, node, said = listen_for(turn, self.flow)
        options = listen_options(listen, node, self.flow, said, alternatives=2)
        context = TurnContext.of(options, self.flow, node, phonetic=True)
        raw = self.setting.recognizer.transcribe(samples, rate, options)
        text = understand_hypotheses(raw, context).text
        return text, hypothesis_score(text, context) > 0, settled(raw, context), lowest_confidence(raw)

    def judge(self, turn: Any, complete: np.ndarray, incomplete: np.ndarray | None, rate: int) -> dict[str, Any]:
        full, full_acts, full_sure, full_low = self.heard(turn, complete, rate)
        part, part_acts, part_sure, part_low = (self.heard(turn, incomplete, rate) if incomplete is not None
                                                else ("", False, False, 0.0))
        return {"heard": full, "heard_part": part, "words_complete": full_acts, "words_incomplete": part_acts,
                "sure_complete": full_sure, "sure_incomplete": part_sure,
                "lowest_complete": round(full_low, 3), "lowest_incomplete": round(part_low, 3),
                "right": self.meant(turn, full), "right_part": self.meant(turn, part)}


def table(result: dict[str, Any], fallback_ms: int) -> list[dict[str, Any]]:
    rows = [r for r in result["rows"] if r["incomplete"] is not None]
    out = []
    for threshold in THRESHOLDS:
        cut = float(np.mean([r["incomplete"] >= threshold for r in rows]))
        early = float(np.mean([r["complete"] >= threshold for r in result["rows"]]))
        wait = early * PAUSE_S * 1000 + (1 - early) * fallback_ms
        by_node = {node: round(float(np.mean([r["incomplete"] >= threshold for r in rows if r["node"] == node])), 3)
                   for node in sorted({r["node"] for r in rows})}
        out.append({"threshold": threshold, "cut_off": round(cut, 3), "ended_at_200ms": round(early, 3),
                    "mean_wait_ms": round(wait), "cut_off_by_node": by_node})
    return out


def words_table(result: dict[str, Any], fallback_ms: int) -> list[dict[str, Any]]:
    """The dialog-state rule alone and with the model: cut-offs (and those that change what the flow would
    understand: the full turn was right, the cut one is not) and the mean wait on complete turns."""
    rows = [r for r in result["rows"] if r["incomplete"] is not None]
    policies = {"words": lambda r, k: r[f"words_{k}"],
                "words and model >= 0.5": lambda r, k: r[f"words_{k}"] and r[k] >= 0.5,
                "words or model >= 0.95": lambda r, k: r[f"words_{k}"] or r[k] >= 0.95,
                "words, settled": lambda r, k: r[f"words_{k}"] and r.get(f"sure_{k}", False)}
    out = []
    for name, ends in policies.items():
        cut = [ends(r, "incomplete") for r in rows]
        harmful = [c and r["right"] and not r["right_part"] for c, r in zip(cut, rows, strict=True)]
        early = float(np.mean([ends(r, "complete") for r in result["rows"]]))
        out.append({"policy": name, "cut_off": float(np.mean(cut)), "harmful": float(np.mean(harmful)),
                    "ended_at_200ms": early, "mean_wait_ms": round(early * PAUSE_S * 1000 + (1 - early) * fallback_ms)})
    return out


def main(argv: list[str] | None = None) -> int:
    from ivr.asreval.devset import split_parser

    p = split_parser("python -m ivr.asreval.turn_end", __doc__)
    p.add_argument("--fallback-ms", type=int, default=500, help="the silence that ends a turn otherwise")
    p.add_argument("--words", action="store_true", help="also decode both samples (Whisper, the default "
                   "levers) and judge the dialog-state rule: end at the pause when the words heard already give the "
                   "node what it can act on")
    args = p.parse_args(argv)
    result = evaluate(args.split, args.cache, args.words)
    rows = table(result, args.fallback_ms)
    paused = sum(r["incomplete"] is not None for r in result["rows"])
    print(f"end-of-turn model on {result['turns']} {args.split} turns ({paused} with a pause between words, cut "
          f"there); model "
          f"{result['model_ms_p50']} ms p50 / {result['model_ms_p95']} ms p95 per call, "
          f"load {result['load_avg'][0]:.1f}")
    print_rows(rows, [("threshold", 9, lambda r: str(r["threshold"])), ("cut off", 7, lambda r: f"{r['cut_off']:.1%}"),
                      ("ended at 200 ms", 15, lambda r: f"{r['ended_at_200ms']:.1%}"),
                      ("mean wait", 9, lambda r: f"{r['mean_wait_ms']} ms"),
                      ("cut off by node", 0, lambda r: str(r["cut_off_by_node"]))],
               note=f"(silence alone: {args.fallback_ms} ms, 0 cut off)")
    if args.words:
        for row in words_table(result, args.fallback_ms):
            print(f"{row['policy']:>22}  cut off {row['cut_off']:.1%} (changing what was understood: "
                  f"{row['harmful']:.1%})  ended at 200 ms {row['ended_at_200ms']:.1%}  "
                  f"mean wait {row['mean_wait_ms']} ms")
    if args.json:
        extra = {"words_table": words_table(result, args.fallback_ms)} if args.words else {}
        write_json_report(args.json, {**result, "table": rows, **extra})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
