"""Recognizer settings compared on the dev set, named by their levers joined with '+':

    baseline        as calls ran before this work (faster-whisper's loop, no prompts)
    turn            the one-window turn decoder (asr.whisper._decode_window), 30 s window
    fit             ... with the encoder window fitted to the turn (window_s=0)
    menu=MODE       menu prompt: phrases | question | both
    yesno, digits   the yes/no and the digit-string prompts
    grammar         the digit-string grammar (asr.grammar)
    beamN           beam search of width N (default greedy)
    nbestN          N-1 alternatives, rescored by what the node expects (ivr.call.recognition.pick_hypothesis)
    phonetic        node keywords recovered by sound (ivr.call.recognition.correct_keywords)
    base            Whisper base instead of tiny.en

e.g. `fit+menu=phrases+digits`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from asr.base import RecognitionOptions, SpeechRecognizer, Transcript
from asr.bias import DIGITS_PROMPT, BiasSettings
from dialog.actions import Listen
from dialog.flow import Flow, load_default_flow
from ivr.asreval.devset import Turn
from ivr.asreval.run import NODE_OF

DIGIT_PROMPTS = {
    "ordered": "0 1 2 3 4 5 6 7 8 9.",
    "groups": "Account number: 5 9 3, 8 6 8. Thank you. And the other one is 1 5 0 2 6 4.",
    "short": "5 9 3 8 6 8.",
    "spread": "My account number is 3 8 1 5 0 6. Thank you. And the other one is 9 2 7 4 1 8.",
}
AGENT_SAID = {"confirm": "Is that right?", "anything_else": "Is there anything else I can help you with?"}


@dataclass
class Setting:
    recognizer: SpeechRecognizer
    options_for: Callable[[Turn], RecognitionOptions]
    pick: Callable[[Turn, Transcript], str] | None = None


@cache
def _whisper(model: str, turn_decoder: bool, window_s: float, beam: int, bias: BiasSettings,
             middle_window_s: float = 0.0, digits_window_s: float = 30.0) -> SpeechRecognizer:
    from asr.whisper import WhisperRecognizer

    return WhisperRecognizer(model, beam_size=beam, turn_decoder=turn_decoder, window_s=window_s, bias=bias,
                             middle_window_s=middle_window_s, digits_window_s=digits_window_s)


@cache
def _flow() -> Flow:
    return load_default_flow()


def listen_for(turn: Turn, flow: Flow) -> tuple[Listen, str | None, str]:
    """The Listen the bank flow sends where this turn is said, its node, and what the agent said."""
    if turn.node == "confirm":
        return Listen(phrases=("yes", "no"), max_digits=1), NODE_OF["menu"], AGENT_SAID["confirm"]
    node = flow.node(NODE_OF[turn.node])
    if node.collect is not None:
        return Listen(max_digits=node.collect.length or 32), node.name, " ".join(node.say)
    phrases = tuple(dict.fromkeys(k for c in node.expect + flow.global_choices for k in c.keywords))
    said = AGENT_SAID.get(turn.node, " ".join(node.say))
    return Listen(phrases=phrases), node.name, said


def make(name: str) -> Setting:
    from ivr.call.recognition import listen_options

    levers = name.split("+")
    if levers == ["baseline"]:
        return Setting(_whisper("tiny.en", False, 30.0, 1, BiasSettings()), lambda turn: RecognitionOptions())
    model, window_s, beam, n_best, menu, middle_s, digits_s = "tiny.en", 30.0, 1, 1, "off", 0.0, 30.0
    yes_no = digits = grammar = phonetic = unprompted = False
    digits_prompt = DIGITS_PROMPT
    for lever in levers:
        if lever == "turn":
            pass
        elif lever == "fit":
            window_s = 0.0
        elif lever.startswith("dwin"):  # dwin20: a digit string in a 20 s window (when it leaves 6 s of room)
            digits_s = float(lever[4:])
        elif lever.startswith("fit"):  # fit20: 10 s, then a 20 s window for turns of up to 14 s, then 30 s
            window_s, middle_s = 0.0, float(lever[3:])
        elif lever.startswith("menu="):
            menu = lever.split("=", 1)[1]
        elif lever == "yesno":
            yes_no = True
        elif lever == "digits":
            digits = True
        elif lever.startswith("dprompt="):
            digits_prompt = DIGIT_PROMPTS[lever.split("=", 1)[1]]
        elif lever == "unprompted":
            unprompted = True
        elif lever == "grammar":
            grammar = True
        elif lever.startswith("beam"):
            beam = int(lever[4:])
        elif lever.startswith("nbest"):
            n_best = int(lever[5:])
        elif lever == "phonetic":
            phonetic = True
        elif lever == "base":
            model = "base"
        else:
            raise ValueError(f"unknown lever {lever!r} in {name!r}")
    bias = BiasSettings(menu=menu, yes_no=yes_no, digits=digits, digit_grammar=grammar,  # type: ignore[arg-type]
                        digits_prompt=digits_prompt, digits_unprompted=unprompted)
    recognizer = _whisper(model, True, window_s, beam, bias, middle_s, digits_s)
    flow = _flow()

    def options_for(turn: Turn) -> RecognitionOptions:
        listen, node, said = listen_for(turn, flow)
        return listen_options(listen, node, flow, said, alternatives=n_best - 1)

    pick = None
    if n_best > 1 or phonetic:
        from ivr.call.recognition import TurnContext, understand_hypotheses

        def pick(turn: Turn, result: Transcript) -> str:
            listen, node, said = listen_for(turn, flow)
            options = listen_options(listen, node, flow, said, alternatives=n_best - 1)
            context = TurnContext.of(options, flow, node, phonetic=phonetic)
            return understand_hypotheses(result, context).text

    return Setting(recognizer, options_for, pick)
