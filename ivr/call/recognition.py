"""One caller turn through a recognizer stream, on the call's ASR lane (one thread, in order), and what
the recognizer is told about the turn before it (`listen_options`)."""

from __future__ import annotations

import threading
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from asr.base import Alternative, Expect, RecognitionOptions, RecognizerStream, SpeechRecognizer, Transcript
from asr.bias import BiasSettings
from asr.phonetic import PhoneticMatcher, words_of
from dialog.actions import Listen
from dialog.flow import Choice, Flow
from dialog.matching import match_choice
from dialog.nlu.slots import parse_digits, parse_yes_no
from ivr.call.work import Work
from ivr.config import AsrConfig
from ivr.errors import IvrError
from telephony.clock import Clock

YES_NO_PHRASES = ("yes", "no")
"""The phrases of the Listen the dialog sends after "Did you mean ...?" and read-backs."""
YES_NO_KINDS = ("confirm", "yes_no", "faq")
"""Listen kinds that wait for a yes or a no (dialog.actions.Listen.kind)."""
PROMPTS = BiasSettings(menu="question", yes_no=True, digits=True, digits_unprompted=True)
"""The prompts `asr.prompts: true` turns on (the measured choice, see README)."""
NO_PROMPTS = BiasSettings(menu="off", yes_no=False, digits=False)
WINDOWS = {"fit": 0.0, "full": 30.0}
"""asr.window -> WhisperRecognizer's window_s."""


DIGITS_END_OF_TURN_SILENCE_MS = 1000
"""A caller reading out a number pauses between groups ("four two seven ... one nine three"): in a node
collecting digits the turn ends after this much silence, not the call's usual 500 ms."""


def end_of_turn_silence_ms(options: RecognitionOptions, default_ms: int) -> int:
    """How much silence ends the turn the recognizer is about to hear."""
    return max(default_ms, DIGITS_END_OF_TURN_SILENCE_MS) if options.expect == "digits" else default_ms


def whisper_settings(config: AsrConfig) -> dict[str, Any]:
    """load_recognizer's Whisper settings for the agent's `asr:` configuration."""
    if config.window not in WINDOWS:
        raise IvrError(f"asr.window must be one of {', '.join(WINDOWS)}, not {config.window!r}")
    bias = replace(PROMPTS if config.prompts else NO_PROMPTS, digit_grammar=config.digit_grammar)
    return {"window_s": WINDOWS[config.window], "bias": bias}


def listen_options(listen: Listen, node_name: str | None, flow: Flow, agent_said: str = "",
                   alternatives: int = 0) -> RecognitionOptions:
    """What the coming turn is expected to be, from the dialog's Listen and the node that listens:
    a digit string in a `collect` node of digits (its first ask and its reprompts), yes/no after a
    question (did you mean, a read-back, did that answer), else one of the node's choices (its keywords
    and the flow's global ones, as `listen.phrases`). `agent_said`: the prompt the caller answers."""
    node = flow.nodes.get(node_name) if node_name else None
    collect = node.collect if node is not None else None
    kind = getattr(listen, "kind", "")
    if kind in YES_NO_KINDS or listen.phrases == YES_NO_PHRASES:
        return RecognitionOptions(phrases=YES_NO_PHRASES, expect="yes_no", prompt=agent_said,
                                  alternatives=alternatives)
    if collect is not None and collect.type == "digits":
        keep = tuple(dict.fromkeys(k for choice in flow.global_choices for k in choice.keywords))
        return RecognitionOptions(phrases=keep, expect="digits", prompt=agent_said, digits=collect.length or 0,
                                  alternatives=alternatives)
    if listen.phrases:
        return RecognitionOptions(phrases=listen.phrases, expect="choice", prompt=agent_said,
                                  alternatives=alternatives)
    return RecognitionOptions(prompt=agent_said, alternatives=alternatives)


def expectation(listen: Listen, node_name: str | None, flow: Flow, agent_said: str = "",
                config: AsrConfig | None = None) -> tuple[RecognitionOptions, TurnContext]:
    """What the session gives TurnRecognition for a turn heard while `listen` waits in `node_name`
    (`config`: the agent's `asr:` settings for N-best and phonetic matching)."""
    config = config or AsrConfig()
    options = listen_options(listen, node_name, flow, agent_said, config.alternatives)
    return options, TurnContext.of(options, flow, node_name, config.phonetic)


@dataclass(frozen=True)
class TurnContext:
    """What a turn's hypotheses are judged against: the node's choices, the digits it collects."""

    expect: Expect = ""
    choices: tuple[Choice, ...] = ()
    digits: int = 0
    matcher: PhoneticMatcher | None = None
    """Recovers the choices' keywords by sound (None: off)."""

    @classmethod
    def of(cls, options: RecognitionOptions, flow: Flow, node_name: str | None,
           phonetic: bool = False) -> TurnContext:
        choices = _choices(flow, node_name)
        matcher = _matcher(_keywords(choices)) if phonetic and options.expect in ("choice", "") else None
        return cls(options.expect, choices, options.digits, matcher)


def _choices(flow: Flow, node_name: str | None) -> tuple[Choice, ...]:
    node = flow.nodes.get(node_name) if node_name else None
    return (node.expect if node is not None else ()) + flow.global_choices


def _keywords(choices: tuple[Choice, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(k for choice in choices for k in choice.keywords))


@lru_cache(maxsize=64)
def _matcher(keywords: tuple[str, ...]) -> PhoneticMatcher:
    return PhoneticMatcher(keywords)


def warm_matchers(flow: Flow) -> int:
    """Phonemizes every node's keywords now (the phonemizer's first use loads espeak-ng through Piper: about
    a second, which the first caller's first turn would otherwise wait through in each worker). Returns the
    number of nodes' keyword sets made ready."""
    sets = {_keywords(_choices(flow, name)) for name in flow.nodes}
    for keywords in sets:
        _matcher(keywords)
    return len(sets)


def hypothesis_score(text: str, context: TurnContext) -> float:
    """How well one hypothesis fits the turn (the scoring hook for N-best): 1.0 when it says what the
    node can act on (a choice's keyword or spoken key, a yes/no, a digit string of the wanted length,
    or a global choice anywhere), else 0.0."""
    if context.expect == "digits":
        digits = parse_digits(text)
        if digits is not None and (not context.digits or len(digits) == context.digits):
            return 1.0
    elif context.expect == "yes_no" and parse_yes_no(text) is not None:
        return 1.0
    return 1.0 if match_choice(text, context.choices) is not None else 0.0


DOUBTFUL_BELOW = 0.7
"""A word the recognizer gave a probability under this may have been misheard (phonetic matching)."""


def doubtful_words(result: Transcript) -> list[bool] | None:
    """One flag per word of asr.phonetic.words_of(result.text): was it recognized with a probability
    under DOUBTFUL_BELOW? None when the transcript has no word probabilities."""
    if not result.words:
        return None
    flags: list[bool] = []
    for word in result.words:
        flags.extend([word.confidence < DOUBTFUL_BELOW] * len(words_of(word.text)))
    return flags


def lowest_confidence(result: Transcript) -> float:
    """The lowest word probability of the transcript (1.0 without word probabilities or words)."""
    return min((word.confidence for word in result.words), default=1.0)


def settled(result: Transcript, context: TurnContext, sure_above: float = DOUBTFUL_BELOW) -> bool:
    """Whether the turn heard so far already gives the node what it acts on, heard surely: the best
    hypothesis itself fits (not a next-best one or a keyword recovered by sound) and no word of it was
    recognized with a probability under `sure_above`. A turn that is settled may end at a short pause."""
    return hypothesis_score(result.text, context) > 0 and lowest_confidence(result) >= sure_above


def understand_hypotheses(result: Transcript, context: TurnContext) -> Transcript:
    """The transcript whose text is the first hypothesis (best first) that fits the turn; failing that,
    the best with a keyword recovered by sound from words it was unsure of (when the context has a
    matcher); failing that, as it was. A replaced best hypothesis is kept first among the alternatives."""
    hypotheses = result.hypotheses()
    chosen = next((h for h in hypotheses if hypothesis_score(h, context) > 0), None)
    if chosen is None and context.matcher is not None:
        chosen = context.matcher.correct(result.text, doubtful_words(result))
    if chosen is None or chosen == result.text:
        return result
    kept = (Alternative(result.text, result.log_prob), *(a for a in result.alternatives if a.text != chosen))
    return replace(result, text=chosen, alternatives=kept)


class TurnRecognition:
    """Opens a stream at the start of speech, feeds it as audio arrives, finishes at end of turn.

    Every step runs on `lane` (a single worker thread), so the audio path never waits for the model.
    Partial transcripts collect in `partials` for the session to log. With a `context`, the final
    transcript's text is the hypothesis that fits the turn best (`understand_hypotheses`).
    """

    def __init__(self, recognizer: SpeechRecognizer, lane: Executor, clock: Clock,
                 sample_rate_hz: int, options: RecognitionOptions, context: TurnContext | None = None) -> None:
        self._recognizer = recognizer
        self._context = context
        self._lane = lane
        self._clock = clock
        self._stream: RecognizerStream | None = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._partials: list[Transcript] = []
        self.result: Work[Transcript] | None = None
        self.received: list[Transcript] = []
        """Final transcripts polled from `result` so far (the session's side)."""
        self._options = options
        self._sample_rate_hz = sample_rate_hz
        self._audio = bytearray()
        self.ahead: Work[Transcript] | None = None
        """The turn decoded ahead, at a pause (`decode_ahead`); dropped when the caller speaks again."""
        self._ahead_text: list[Transcript] = []
        lane.submit(self._open, sample_rate_hz, options)

    def _open(self, sample_rate_hz: int, options: RecognitionOptions) -> None:
        try:
            self._stream = self._recognizer.stream(sample_rate_hz, options)
        except BaseException as exc:  # noqa: BLE001 - reported at finish()
            self._error = exc

    def _accept(self, pcm: bytes) -> None:
        if self._stream is None or self._error is not None:
            return
        try:
            partial = self._stream.accept(pcm)
        except BaseException as exc:  # noqa: BLE001
            self._error = exc
            return
        if partial is not None and partial.text:
            with self._lock:
                self._partials.append(partial)

    def feed(self, pcm: bytes, speech: bool = True) -> None:
        """Audio of the turn; `speech`: the VAD heard speech in it (drops a decode made ahead)."""
        if not pcm:
            return
        self._audio.extend(pcm)
        if speech and self.ahead is not None:
            self.ahead.cancel()
            self.ahead, self._ahead_text = None, []
        self._lane.submit(self._accept, pcm)

    @property
    def can_decode_ahead(self) -> bool:
        """Decoding ahead pays where the recognizer decodes a turn at its end (Whisper), not where it
        decodes as the audio comes (Vosk, whose partials already tell what was said)."""
        return not self._recognizer.capabilities.streaming

    def decode_ahead(self) -> None:
        """Decode the turn so far, on the lane, as if it ended now (the caller paused). If the caller
        does not speak again, `finish` takes this result instead of decoding again."""
        if self.ahead is not None or self.result is not None or not self._audio:
            return
        audio = bytes(self._audio)

        def produce(emit: object) -> None:
            stream = self._recognizer.stream(self._sample_rate_hz, self._options)
            stream.accept(audio)
            result = stream.finish()
            if self._context is not None:
                result = understand_hypotheses(result, self._context)
            emit(result)  # type: ignore[operator]

        self.ahead = Work(self._lane, self._clock, produce, name="asr-ahead")

    def settles(self, heard: Transcript, sure_above: float = DOUBTFUL_BELOW) -> bool:
        """Whether `heard` (the turn so far) already gives the node what it acts on, heard surely."""
        return self._context is not None and settled(heard, self._context, sure_above)

    def heard_ahead(self) -> Transcript | None:
        """The transcript decoded ahead, once it is in (None before, or when it failed or was dropped)."""
        ahead = self.ahead
        if ahead is None or self.result is not None:
            return None
        self._ahead_text.extend(ahead.poll())
        if not ahead.finished or ahead.error is not None or not self._ahead_text:
            return None
        return self._ahead_text[0]

    def take_partials(self) -> list[Transcript]:
        with self._lock:
            out, self._partials = self._partials, []
        return out

    def finish(self) -> Work[Transcript]:
        """The turn's final transcript: the decode made ahead when the caller has not spoken since, else
        the stream's."""
        if self.ahead is not None and self.ahead.error is None:
            self.result = self.ahead
            self.received.extend(self._ahead_text)
            return self.result

        def produce(emit: object) -> None:
            if self._error is not None:
                raise self._error
            assert self._stream is not None
            result = self._stream.finish()
            if self._context is not None:
                result = understand_hypotheses(result, self._context)
            emit(result)  # type: ignore[operator]

        self.result = Work(self._lane, self._clock, produce, name="asr")
        return self.result
