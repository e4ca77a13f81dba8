"""Phonetic matching: which expected keyword a misheard stretch of a transcript sounds like.

Words become IPA phonemes with espeak-ng (in process through Piper's bundled espeak-ng when piper-tts is
installed, else the `espeak-ng --ipa` command), and are compared by a weighted edit distance over
phonemes, where close sounds (two vowels, a voiced and an unvoiced consonant of one place, two nasals,
l and r) cost half a substitution. `PhoneticMatcher(["balance", "representative"]).find("melon")` gives
the keyword whose phonemes are nearest to a run of the transcript's words, when the distance per
phoneme of the keyword is at most `max_distance`.

    >>> m = PhoneticMatcher(["balance", "opening hours"])
    >>> m.best("check my melons")
    PhoneticHit(keyword='balance', start=2, end=3, distance=...)
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

VOICE = "en-us"
MAX_DISTANCE = 0.34
"""Default largest distance per keyword phoneme that still counts as a match (see the README figures)."""
SHORT_KEYWORD_PHONEMES = 4
SHORT_MAX_DISTANCE = 0.2
"""A keyword of at most 4 phonemes ("open", "card") must come nearer: "pin" is 0.31 from "open", "cost"
0.25 from "lost"."""
_STRIP = re.compile("[\u02c8\u02cc\u02d0\u0361\u035c\u0329\u032f\\-]")
"""Stress marks, length marks, tie bars and syllabic marks: not what tells words apart on a phone line."""
_DIPHTHONGS = ("aɪ", "aʊ", "eɪ", "oʊ", "ɔɪ", "tʃ", "dʒ", "ɪə", "eə", "ʊə", "əʊ")
_EQUIVALENT = {"ᵻ": "ɪ", "ɚ": "əɹ", "ɝ": "ɜɹ", "ɾ": "t", "r": "ɹ", "ɐ": "ə", "ɒ": "ɑ", "ɔ": "ɑ", "ʌ": "ə",
               "ɬ": "l", "x": "k", "ʔ": "t", "e": "eɪ", "o": "oʊ", "əʊ": "oʊ", "ɜ": "ə"}
"""espeak-ng's reduced and regional symbols mapped onto one en-us inventory."""
_VOWELS = frozenset("aeiouæɑɒɔəɛɜɪʊʌᵻɚɐ")
_CLOSE_PAIRS = [("p", "b"), ("t", "d"), ("k", "ɡ"), ("f", "v"), ("s", "z"), ("θ", "ð"), ("ʃ", "ʒ"), ("tʃ", "dʒ"),
                ("m", "n"), ("n", "ŋ"), ("m", "b"), ("l", "ɹ"), ("θ", "f"), ("ð", "d"), ("s", "ʃ"), ("w", "v"),
                ("θ", "t"), ("j", "i"), ("w", "u"), ("ɡ", "k")]
_CLOSE = frozenset(_CLOSE_PAIRS) | frozenset((b, a) for a, b in _CLOSE_PAIRS)
HALF = 0.5
_WORD = re.compile(r"[a-z0-9']+")


@dataclass(frozen=True)
class PhoneticHit:
    keyword: str
    start: int
    """Index of the first transcript word of the match."""
    end: int
    """Index after its last word."""
    distance: float
    """Weighted phoneme edits per keyword phoneme (0: sounds the same)."""


def words_of(text: str) -> list[str]:
    """Lower-case words, apostrophes kept inside them ("what's")."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'"))


def _is_vowel(phoneme: str) -> bool:
    return phoneme[0] in _VOWELS


def split_phonemes(ipa: str) -> tuple[str, ...]:
    """IPA text -> phonemes, with marks dropped, diphthongs and affricates kept as one, and regional
    variants mapped to one symbol."""
    ipa = _STRIP.sub("", unicodedata.normalize("NFC", ipa)).replace(" ", "")
    out: list[str] = []
    i = 0
    while i < len(ipa):
        two = ipa[i:i + 2]
        symbol = two if two in _DIPHTHONGS else ipa[i]
        i += len(symbol)
        mapped = _EQUIVALENT.get(symbol, symbol)
        out.extend(mapped if mapped in ("əɹ", "ɜɹ") else (mapped,))
    return tuple(p for p in out if p.strip())


def substitution_cost(a: str, b: str) -> float:
    if a == b:
        return 0.0
    if _is_vowel(a) and _is_vowel(b):
        return HALF
    if (a, b) in _CLOSE:
        return HALF
    return 1.0


VOWEL_INDEL = 0.75


def _indel(p: str) -> float:
    return VOWEL_INDEL if _is_vowel(p) else 1.0


def distance(a: Sequence[str], b: Sequence[str], limit: float = float("inf")) -> float:
    """Weighted edit distance between two phoneme sequences (insertions and deletions cost 1, vowels
    0.75: unstressed vowels come and go between accents). Past `limit` it stops early and returns a
    value above it."""
    prev = [0.0]
    for q in b:
        prev.append(prev[-1] + _indel(q))
    for p in a:
        cur = [prev[0] + _indel(p)]
        for j, q in enumerate(b, 1):
            cur.append(min(prev[j] + _indel(p), cur[j - 1] + _indel(q), prev[j - 1] + substitution_cost(p, q)))
        if min(cur) > limit:
            return min(cur)
        prev = cur
    return prev[-1]


class _Phonemizer:
    """espeak-ng text -> IPA; one at a time (espeak-ng keeps global state)."""

    def __init__(self) -> None:
        self._bridge: object | None = None
        self._lock: threading.Lock | None = None
        self._binary = shutil.which("espeak-ng")
        try:
            from piper import voice as piper_voice
            from piper.phonemize_espeak import EspeakPhonemizer

            self._lock = piper_voice._ESPEAK_PHONEMIZER_LOCK  # the lock Piper's own phonemizing takes
            with self._lock:
                if piper_voice._ESPEAK_PHONEMIZER is None:
                    piper_voice._ESPEAK_PHONEMIZER = EspeakPhonemizer(piper_voice.ESPEAK_DATA_DIR)
                self._bridge = piper_voice._ESPEAK_PHONEMIZER
        except (ImportError, AttributeError, RuntimeError):
            self._bridge = None
        if self._lock is None:
            self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return self._bridge is not None or self._binary is not None

    def ipa(self, text: str) -> str:
        assert self._lock is not None
        if self._bridge is not None:
            with self._lock:
                groups = self._bridge.phonemize(VOICE, text)  # type: ignore[attr-defined]
            return "".join("".join(g) for g in groups)
        if self._binary is None:
            return ""
        with self._lock:
            done = subprocess.run([self._binary, "-q", "--ipa", "-v", VOICE], input=text.encode("utf-8"),
                                  capture_output=True, timeout=10, check=False)
        return done.stdout.decode("utf-8", "replace")


@functools.cache
def _phonemizer() -> _Phonemizer:
    return _Phonemizer()


def phonemizer_available() -> bool:
    return _phonemizer().available


@functools.lru_cache(maxsize=8192)
def phonemes(word_or_phrase: str) -> tuple[str, ...]:
    """The phonemes of a word or phrase (empty when no espeak-ng is available)."""
    text = " ".join(words_of(word_or_phrase))
    if not text:
        return ()
    return split_phonemes(_phonemizer().ipa(text))


class PhoneticMatcher:
    """Finds keywords in a transcript by how they sound. Keywords are phonemized once."""

    def __init__(self, keywords: Iterable[str], max_distance: float = MAX_DISTANCE,
                 min_phonemes: int = 3) -> None:
        self.max_distance = max_distance
        self._keywords: list[tuple[str, tuple[str, ...], int]] = []
        for keyword in dict.fromkeys(k.strip().lower() for k in keywords if k.strip()):
            sounds = phonemes(keyword)
            if len(sounds) >= min_phonemes:  # "no", "yes", "open": too short to be told from chance
                self._keywords.append((keyword, sounds, len(words_of(keyword))))

    def find(self, text: str, doubtful: Sequence[bool] | None = None) -> list[PhoneticHit]:
        """Every keyword that sounds like a run of the text's words (up to one word more or less than
        the keyword has), nearest first; overlapping hits are all listed. `doubtful`, one flag per word
        of `words_of(text)`: only runs with at least one doubtful word are considered (a recognizer
        sure of "cost" did not mishear "lost")."""
        words = words_of(text)
        if doubtful is not None and len(doubtful) != len(words):
            doubtful = None
        hits: list[PhoneticHit] = []
        for keyword, sounds, n_words in self._keywords:
            best: PhoneticHit | None = None
            for n in range(max(1, n_words - 1), n_words + 2):
                for start in range(0, len(words) - n + 1):
                    if doubtful is not None and not any(doubtful[start:start + n]):
                        continue
                    heard = phonemes(" ".join(words[start:start + n]))
                    most = self.max_distance if len(sounds) > SHORT_KEYWORD_PHONEMES else \
                        min(self.max_distance, SHORT_MAX_DISTANCE)
                    limit = most * len(sounds)
                    if not heard or VOWEL_INDEL * abs(len(heard) - len(sounds)) > limit:
                        continue  # the lengths alone are too far apart
                    d = distance(heard, sounds, limit) / len(sounds)
                    if d <= most and (best is None or d < best.distance):
                        best = PhoneticHit(keyword, start, start + n, round(d, 3))
            if best is not None:
                hits.append(best)
        return sorted(hits, key=lambda h: (h.distance, -len(h.keyword)))

    def best(self, text: str, doubtful: Sequence[bool] | None = None) -> PhoneticHit | None:
        hits = self.find(text, doubtful)
        return hits[0] if hits else None

    def correct(self, text: str, doubtful: Sequence[bool] | None = None) -> str | None:
        """The text with its nearest phonetic hit replaced by the keyword ("check my melons" ->
        "check my balance"), or None when nothing is near enough."""
        hit = self.best(text, doubtful)
        if hit is None:
            return None
        words = words_of(text)
        return " ".join([*words[:hit.start], hit.keyword, *words[hit.end:]])
