"""What Whisper is told before a caller's turn: its initial prompt, chosen by what the dialog expects.

Whisper continues the text of its prompt (`<|startofprev|>` ...), so a prompt that reads like what came
just before the turn makes the expected words and their spelling likelier. Which prompt helps depends
on the turn (see `BiasSettings` for the measured choices): a menu gains from its vocabulary, a digit
string from a prompt written in digits (Whisper then writes "oh" as 0 instead of leaving it out), and
short free answers may lose from any prompt (tiny.en invents words that are in it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from asr.base import RecognitionOptions

MenuPrompt = Literal["off", "phrases", "question", "both"]
MAX_PROMPT_CHARS = 300
"""Whisper's prompt is limited to half its 448-token context; a long prompt is cut (from its start)."""
DIGITS_PROMPT = "My account number is 4 0 7 1 9 3. Thank you. And the other one is 2 0 5 8 8 6."
"""A digit string written digit by digit, twice: the style Whisper then keeps for the caller's turn."""
YES_NO_PROMPT = "Yes. No. Yes, that's right. No, that's wrong."


@dataclass(frozen=True)
class BiasSettings:
    """How each kind of turn is prompted. Defaults are the measured best on the dev set (ivr.asreval)."""

    menu: MenuPrompt = "off"
    """expect='choice': 'phrases' (the node's keywords), 'question' (what the agent asked), 'both', 'off'."""
    yes_no: bool = False
    """expect='yes_no': prompt with YES_NO_PROMPT."""
    digits: bool = False
    """expect='digits': prompt with `digits_prompt`."""
    digits_prompt: str = DIGITS_PROMPT
    digits_unprompted: bool = False
    """expect='digits' with a prompt: decode a second time without it (same encoder output) and add its
    hypotheses after the prompted ones, so the N-best choice can take the one with the wanted length.
    The prompt brings "oh" back as 0 but sometimes drops a digit the plain decode keeps."""
    digit_grammar: bool = False
    """expect='digits': only digit tokens, digit words and the phrases (global choices) may be decoded
    (asr.grammar)."""


def initial_prompt(options: RecognitionOptions, settings: BiasSettings) -> str:
    """The text to put before the turn ('' for none)."""
    if options.expect == "digits":
        return settings.digits_prompt if settings.digits else ""
    if options.expect == "yes_no":
        return YES_NO_PROMPT if settings.yes_no else ""
    if options.expect != "choice" or settings.menu == "off":
        return ""
    phrases = ", ".join(p.strip() for p in options.phrases if p.strip())
    phrases = f"{phrases[:1].upper()}{phrases[1:]}." if phrases else ""
    parts = {"phrases": [phrases], "question": [options.prompt.strip()],
             "both": [options.prompt.strip(), phrases]}[settings.menu]
    text = " ".join(p for p in parts if p)
    return text[-MAX_PROMPT_CHARS:]
