"""Recognize the dev set with one recognizer setting and score it: WER, understanding, time per turn."""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from asr.base import RecognitionOptions, SpeechRecognizer, Transcript
from dialog.flow import Choice, Flow
from dialog.matching import match_choice
from dialog.nlu.slots import parse_digits, parse_yes_no
from ivr.asreval.devset import LINE_RATE_HZ, Turn, read_turn
from ivr.wer import edit_distance, normalize_words

NODE_OF = {"menu": "main_menu", "anything_else": "balance", "digits": "statement_account"}
"""The bank-flow node where each kind of dev turn is said ('confirm' is a yes/no question)."""


@dataclass
class Scored:
    turn: Turn
    text: str
    edits: int
    words: int
    understood: bool
    understood_ref: bool
    decode_ms: float
    alternatives: tuple[str, ...] = ()


@dataclass
class Report:
    setting: str
    scored: list[Scored] = field(default_factory=list)
    load_avg: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def wer(self, keep: Callable[[Scored], bool] = lambda s: True) -> float:
        chosen = [s for s in self.scored if keep(s)]
        return sum(s.edits for s in chosen) / max(1, sum(s.words for s in chosen))

    def rows(self) -> dict[str, Any]:
        by_voice: dict[str, list[Scored]] = defaultdict(list)
        by_node: dict[str, list[Scored]] = defaultdict(list)
        for s in self.scored:
            by_voice[s.turn.voice.name].append(s)
            by_node[s.turn.node].append(s)
        times = sorted(s.decode_ms for s in self.scored)
        return {
            "setting": self.setting,
            "turns": len(self.scored),
            "wer": round(self.wer(), 4),
            "understood": sum(s.understood for s in self.scored),
            "understood_ref": sum(s.understood_ref for s in self.scored),
            "lost_by_asr": sum(s.understood_ref and not s.understood for s in self.scored),
            "wer_by_voice": {v: round(sum(x.edits for x in xs) / max(1, sum(x.words for x in xs)), 4)
                             for v, xs in sorted(by_voice.items())},
            "understood_by_node": {n: f"{sum(x.understood for x in xs)}/{len(xs)}"
                                   for n, xs in sorted(by_node.items())},
            "wer_by_node": {n: round(sum(x.edits for x in xs) / max(1, sum(x.words for x in xs)), 4)
                            for n, xs in sorted(by_node.items())},
            "decode_ms_p50": round(times[len(times) // 2], 1) if times else 0.0,
            "decode_ms_p90": round(times[int(len(times) * 0.9)], 1) if times else 0.0,
            "decode_ms_mean": round(sum(times) / max(1, len(times)), 1),
            "load_avg": self.load_avg,
        }


class Judge:
    """Would the bank flow do what the caller meant with this text? Keywords and digits first, then the
    NLU (intent at the flow's threshold, else the FAQ), as the dialog does."""

    def __init__(self, flow: Flow, nlu: Any | None) -> None:
        self.flow = flow
        self.nlu = nlu

    def choices(self, node: str) -> tuple[Choice, ...]:
        return self.flow.node(NODE_OF[node]).expect + self.flow.global_choices

    def __call__(self, turn: Turn, text: str) -> bool:
        if turn.node == "digits":
            return parse_digits(text) == turn.means
        if turn.node == "confirm":
            return parse_yes_no(text) == (turn.means == "yes")
        choices = self.choices(turn.node)
        chosen = match_choice(text, choices)
        if chosen is not None:
            return chosen.label == turn.means
        if self.nlu is None:
            return False
        found = self.nlu.understand(text)
        if found.intent:
            by_intent = next((c for c in choices if c.intent == found.intent), None)
            if by_intent is not None and found.intent_confidence >= self.flow.settings.intent_threshold:
                return by_intent.label == turn.means
            return False
        return bool(found.faq_id) and f"faq:{found.faq_id}" == turn.means


OptionsFor = Callable[[Turn], RecognitionOptions]


def evaluate(recognizer: SpeechRecognizer, turns: list[Turn], judge: Judge, options_for: OptionsFor,
             setting: str, pick: Callable[[Turn, Transcript], str] | None = None) -> Report:
    """Every turn through `recognizer` (options per turn from `options_for`); `pick` may choose the text
    among the transcript's alternatives (N-best rescoring), else the best hypothesis is taken."""
    report = Report(setting)
    for turn in turns:
        samples = read_turn(turn)
        options = options_for(turn)
        t0 = time.perf_counter()
        result = recognizer.transcribe(samples, LINE_RATE_HZ, options)
        decode_ms = (time.perf_counter() - t0) * 1000
        text = pick(turn, result) if pick is not None else result.text
        ref, hyp = normalize_words(turn.text), normalize_words(text)
        alternatives = tuple(a.text for a in getattr(result, "alternatives", ()))
        report.scored.append(Scored(turn, text, edit_distance(ref, hyp), len(ref), judge(turn, text),
                                    judge(turn, turn.text), decode_ms, alternatives))
    report.load_avg = tuple(round(x, 2) for x in os.getloadavg())  # type: ignore[assignment]
    return report
