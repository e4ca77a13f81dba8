"""Personal data in the store: redaction of numbers and e-mails, caller numbers as keyed hashes,
recordings encrypted with AES-256-GCM.

Redaction is deliberately greedy with what callers say: a stored transcript that loses an order number
is a small price for one that never keeps a card number. The agent's own prompts are the flow's words
(menus, amounts): of those only digit strings long enough to be a read-back of the caller's number go.
Amounts ("$1,250.40", "1,250.40 dollars") are no account numbers.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ivr.errors import IvrError

ENCRYPTED_MAGIC = b"IVRENC1\0"
NONCE_BYTES = 12

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_EMAIL_SPOKEN = re.compile(r"\b[\w.+-]+ at [\w-]+ dot (?:com|org|net|edu|gov|co|io|uk|de)\b", re.IGNORECASE)
_DIGIT_RUN = re.compile(r"(?<![\w.])\+?\(?\d(?:[\d\s().-]{0,30}\d)?(?![\w])")
_DIGIT_WORDS = ("zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_DIGIT_WORD = "(?:" + "|".join(_DIGIT_WORDS) + ")"
_SPOKEN_RUN = re.compile(r"\b(?:" + _DIGIT_WORD + r"[\s,.-]+){3,}" + _DIGIT_WORD + r"\b", re.IGNORECASE)
_SENSITIVE_CONTEXT = re.compile(r"\b(pin|code|password|passcode|account|card|cvv|cvc|security|sort|iban)\b",
                                re.IGNORECASE)
_AMOUNT = re.compile(r"[$€£]\s?\d[\d,]*(?:\.\d{1,2})?|\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?"
                     r"|\d+(?:\.\d{1,2})?(?=\s?(?:dollars?|euros?|pounds?|cents?|usd|eur|gbp)\b)", re.IGNORECASE)
MIN_ACCOUNT_DIGITS = 5
MIN_PHONE_DIGITS = 7
MIN_CARD_DIGITS = 13
MAX_CARD_DIGITS = 19


def _classify(run: str, context: str) -> str | None:
    digits = re.sub(r"\D", "", run)
    n = len(digits)
    if MIN_CARD_DIGITS <= n <= MAX_CARD_DIGITS and not run.startswith("+"):
        return "[card number]"
    phone_like = run.startswith(("+", "(")) or bool(re.search(r"\d[\s.-]\d{3}[\s.-]\d{4}$", run))
    if n >= MIN_PHONE_DIGITS and phone_like:
        return "[phone number]"
    if n >= MIN_ACCOUNT_DIGITS:
        return "[account number]"
    if n >= 3 and _SENSITIVE_CONTEXT.search(context):
        return "[number]"
    return None


def redact_text(text: str, prompt: bool = False) -> str:
    """Card, account and phone numbers (as digits or spoken digit words) and e-mails replaced by tags;
    amounts of money kept. `prompt`: the agent's words, where only written digit strings of account
    length (a read-back) and e-mails go, not the menu's spoken digits or short numbers."""
    if not text:
        return text
    text = _EMAIL.sub("[email]", text)
    text = _EMAIL_SPOKEN.sub("[email]", text)
    if not prompt:
        text = _SPOKEN_RUN.sub("[number]", text)
    amounts = [m.span() for m in _AMOUNT.finditer(text)]

    def digits(match: re.Match[str]) -> str:
        if any(a <= match.start() < b for a, b in amounts):
            return match.group(0)
        run = match.group(0).strip()
        # in a prompt, no number is sensitive by its context ("account", "code"): only by its length
        tag = _classify(run, "" if prompt else text[max(0, match.start() - 40):match.start()])
        return match.group(0) if tag is None else tag

    return _DIGIT_RUN.sub(digits, text)


TEXT_FIELDS = ("text", "last_utterance", "utterance", "transcript")


AGENT_EVENTS = ("say",)


def redact_event(event: dict[str, Any]) -> dict[str, Any]:
    """A copy of an event with its free-text fields redacted (and slot values, which are caller data);
    the agent's prompts (`say`) as prompts."""
    out = dict(event)
    prompt = out.get("type") in AGENT_EVENTS
    for name in TEXT_FIELDS:
        if isinstance(out.get(name), str):
            out[name] = redact_text(out[name], prompt=prompt)
    slots = out.get("slots")
    if isinstance(slots, dict):
        out["slots"] = {k: redact_text(v) if isinstance(v, str) else v for k, v in slots.items()}
    return out


def normalize_number(number: str) -> str:
    """The digits of a phone number or SIP URI user part (a leading + kept): '+1 (555) 010-99' -> '+155501099'."""
    user = number
    match = re.search(r"(?:sips?|tel):([^@;>]+)", number)
    if match:
        user = match.group(1)
    digits = re.sub(r"\D", "", user)
    if not digits:
        return user.strip().lower()
    return ("+" if user.strip().startswith("+") else "") + digits


def caller_hash(number: str, pepper: bytes) -> str:
    """A keyed hash of the caller number: searchable and erasable, not reversible without the key."""
    return hmac.new(pepper, b"caller:" + normalize_number(number).encode(), hashlib.sha256).hexdigest()


def caller_tag(number: str, pepper: bytes) -> str:
    """A short keyed tag for a caller number or URI in plain per-call files and logs (sip.json): the
    same keyed hash as the store's, cut to 16 hex digits."""
    return "h:" + caller_hash(number, pepper)[:16]


def caller_tail(number: str) -> str:
    """The last two digits, shown to supervisors to tell callers apart."""
    digits = re.sub(r"\D", "", normalize_number(number))
    return digits[-2:]


def encrypt(plain: bytes, key: bytes, associated: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return ENCRYPTED_MAGIC + nonce + AESGCM(key).encrypt(nonce, plain, ENCRYPTED_MAGIC + associated)


def decrypt(blob: bytes, key: bytes, associated: bytes) -> bytes:
    if not blob.startswith(ENCRYPTED_MAGIC):
        raise IvrError("not an encrypted recording")
    nonce = blob[len(ENCRYPTED_MAGIC):len(ENCRYPTED_MAGIC) + NONCE_BYTES]
    try:
        return AESGCM(key).decrypt(nonce, blob[len(ENCRYPTED_MAGIC) + NONCE_BYTES:], ENCRYPTED_MAGIC + associated)
    except InvalidTag:
        raise IvrError("recording cannot be decrypted: wrong key or damaged file") from None


def derive_pepper(key: bytes) -> bytes:
    """The caller-hash key, derived from the recording key (one secret to keep)."""
    return hmac.new(key, b"ivr caller hash v1", hashlib.sha256).digest()
