"""faster-whisper backend: buffers one turn, decodes it at finish() (no partials).

The model is loaded from a local CTranslate2 directory (`models.registry.whisper_model_dir`), never
from a model hub. One `WhisperRecognizer` is shared by all calls; CTranslate2 serialises or spreads
concurrent decodes itself, so separate streams may finish from separate threads.

Confidence of a transcript is the mean word probability (Whisper's per-word token probability);
with no words it is 0.0.

Phrase biasing (RecognitionOptions.phrases as faster-whisper `hotwords`) is off by default because it
hurts tiny.en: with the bank flow's 46 menu keywords as hotwords, WER on 15 IVR prompts went from 2.5%
to 6.7%, and spoken digits (FSDD) fell into loops ("one, one, one, ...", "bye bye, bye bye, ...").
`bias_vocabulary=True` turns it on (for larger models); `capabilities` then says "hotwords".
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from asr._audio import mono_int16
from asr.base import (
    Alternative,
    AsrCapabilities,
    RecognitionOptions,
    RecognizerStream,
    SpeechRecognizer,
    Transcript,
    Word,
)
from asr.bias import BiasSettings, initial_prompt
from asr.errors import AsrError
from models.errors import ModelMissingError
from telephony.audio.pcm import to_float32
from telephony.audio.resample import resample

log = logging.getLogger(__name__)

WHISPER_RATE_HZ = 16000
DEFAULT_BEAM_SIZE = 1
"""Greedy decoding. On 30 IVR prompts (8 kHz, 84 s) with tiny.en int8, 2 threads: beam 1 WER 4.1%,
RTF 0.13; beam 5 WER 3.2%, RTF 0.16. Latency matters more on a shared 2-core box."""
TEMPERATURES = (0.0,)
"""Temperature 0 only, no sampling fallback: the fallback made results differ between runs on the same
audio (and looped on short turns); a call should behave the same every time, in a bounded time."""
MAX_TOKENS_PER_S = 8
"""Cap on decoded tokens per second of audio (speech runs at 3-5): stops runaway repetition."""
MIN_MAX_TOKENS = 16
DIGIT_TOKENS_EACH = 1
DIGIT_TOKENS_MORE = 10
MAX_HOTWORDS_CHARS = 200
"""Whisper's prompt is limited; a long phrase list is cut to this many characters."""
WINDOW_S = 30
N_WINDOW_FRAMES = 3000
"""Whisper's encoder window: 30 s of 10 ms log-mel frames."""
FRAMES_PER_S = 100
SHORT_WINDOW_FRAMES = 1000
SHORT_TURN_FRAMES = 400
"""window_s=0: a turn of up to 4 s is encoded in a 10 s window, a longer one in the full 30 s. tiny.en
needs some 6 s of padding after speech to see where it ends: on 42 dev turns a 6 s window repeated 5 of
them ("balance balance balance ..."), 8 s 3, 10 s none, with the WER of 30 s (0.44 vs 0.46) at a sixth of
the time; on 5-9 s turns a window of the turn plus 7 s lost words (WER 0.29 vs 0.22). A digit string
always gets 30 s: in 10 s a single spoken digit came out repeated ("8 8 8"; FSDD digits right 11/60 vs 26/60)."""
MIN_PAD_S = 6
"""Silence tiny.en needs after the speech in its window to see where the speech ends (see above)."""
MAX_LENGTH = 448
"""Whisper's decoder context in tokens (prompt + output)."""
NO_SPEECH_THRESHOLD = 0.6
LOG_PROB_THRESHOLD = -1.0
"""faster-whisper's defaults: a window with no-speech probability above 0.6 and an average log probability
below -1 is silence (a cough, line noise), and gives an empty transcript."""
PREPEND_PUNCTUATION = "\"'\u201c\u00bf([{-"
APPEND_PUNCTUATION = "\"'.\u3002,\uff0c!\uff01?\uff1f:\uff1a\u201d)]}\u3001"
"""Punctuation joined to the word before or after it in word timings (faster-whisper's defaults)."""


def load_whisper_model(path: str | os.PathLike[str], compute_type: str = "int8", cpu_threads: int = 0,
                       num_workers: int = 1, user: str = "Whisper") -> Any:
    """A faster-whisper WhisperModel from a local CTranslate2 directory (never from a model hub), on the CPU.

    `num_workers` threads of the process may decode at the same time (the weights are shared). `user` names
    what needs the model in the error raised when faster-whisper is not installed; a directory that holds no
    model raises ModelMissingError too."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from faster_whisper import WhisperModel
    except ImportError:
        raise ModelMissingError(f"{user} needs faster-whisper: run `pip install faster-whisper`") from None
    t0 = time.perf_counter()
    try:
        model = WhisperModel(str(path), device="cpu", compute_type=compute_type, cpu_threads=cpu_threads,
                             num_workers=num_workers, local_files_only=True)
    except (RuntimeError, ValueError, OSError) as exc:
        raise ModelMissingError(f"cannot load the Whisper model at {path} ({exc}): give a CTranslate2 "
                                "Whisper model directory or use 'tiny.en'") from None
    log.info("whisper model %s loaded in %.2f s", os.path.basename(path), time.perf_counter() - t0)
    return model


class WhisperRecognizer(SpeechRecognizer):
    name = "whisper"
    capabilities = AsrCapabilities(streaming=False, partials=False, sample_rates_hz=(WHISPER_RATE_HZ,),
                                   vocabulary_biasing="hotwords")

    def __init__(self, model: str = "tiny.en", compute_type: str = "int8", cpu_threads: int = 0,
                 beam_size: int = DEFAULT_BEAM_SIZE, language: str = "en",
                 bias_vocabulary: bool = False, bias: BiasSettings | None = None,
                 turn_decoder: bool = True, window_s: float = 30.0, middle_window_s: float = 0.0,
                 digits_window_s: float = WINDOW_S, workers: int = 1) -> None:
        from models.registry import whisper_model_dir

        path = whisper_model_dir(model or "tiny.en")
        self._model = load_whisper_model(path, compute_type, cpu_threads, num_workers=workers,
                                         user="the Whisper backend")
        self.model_path = path
        self.beam_size = beam_size
        self.language = language
        self.bias_vocabulary = bias_vocabulary
        """Pass expected phrases as hotwords. Off by default: on short 8 kHz answers tiny.en then invents
        words ("2 will be updated." for "two"; 10 of 12 spoken digits wrong, 0 of 12 without)."""
        self.bias = bias or BiasSettings()
        """Initial prompts by what the dialog expects (asr.bias)."""
        self.turn_decoder = turn_decoder
        """Decode turns of up to 30 s in one window here (prompts, N-best); False: faster-whisper's loop."""
        self.window_s = window_s
        """Encoder window for a turn: 30 s as Whisper was trained; 0: fitted to the turn (faster)."""
        self.middle_window_s = middle_window_s
        """With window_s=0: a turn too long for the short window but with MIN_PAD_S of room in this one is
        encoded in it instead of the full 30 s (0: no middle window)."""
        self.digits_window_s = digits_window_s
        """The window of a turn in a node collecting digits, when the turn leaves MIN_PAD_S of room in it."""
        self._tokenizers: dict[str, tuple[Any, list[int]]] = {}
        self._grammars: dict[tuple[str, tuple[str, ...]], list[int]] = {}
        self.capabilities = AsrCapabilities(streaming=False, partials=False, sample_rates_hz=(WHISPER_RATE_HZ,),
                                            vocabulary_biasing="hotwords" if bias_vocabulary else "")

    def stream(self, sample_rate_hz: int, options: RecognitionOptions | None = None) -> WhisperStream:
        if sample_rate_hz <= 0:
            raise AsrError(f"invalid sample rate {sample_rate_hz}")
        return WhisperStream(self, sample_rate_hz, options or RecognitionOptions())

    def transcribe(self, samples: np.ndarray, sample_rate_hz: int,
                   options: RecognitionOptions | None = None) -> Transcript:
        """A whole recording: int16 or float, mono or (n, channels), any rate."""
        return super().transcribe(mono_int16(samples), sample_rate_hz, options)

    def decode(self, audio_16k: np.ndarray, options: RecognitionOptions) -> Transcript:
        """float32 mono 16 kHz audio -> final transcript (blocking; run it off the event loop).

        A turn of up to 30 s is one window, decoded here (`_decode_window`: prompt by what the dialog
        expects, N-best on request); longer audio goes through faster-whisper's own segment loop."""
        language = options.language or self.language
        if audio_16k.size == 0:
            return Transcript("", 0.0, (), True, language)
        if audio_16k.size <= WINDOW_S * WHISPER_RATE_HZ and self.turn_decoder:
            return self._decode_window(audio_16k, options, language)
        return self._decode_long(audio_16k, options, language)

    def _decode_long(self, audio_16k: np.ndarray, options: RecognitionOptions, language: str) -> Transcript:
        phrases = options.phrases if self.bias_vocabulary else ()
        hotwords = ", ".join(p.strip() for p in phrases if p.strip())[:MAX_HOTWORDS_CHARS] or None
        max_tokens = _max_tokens(audio_16k.size)
        segments, info = self._model.transcribe(
            audio_16k, language=language or None, beam_size=self.beam_size, temperature=list(TEMPERATURES),
            condition_on_previous_text=False, vad_filter=False, word_timestamps=True, hotwords=hotwords,
            initial_prompt=initial_prompt(options, self.bias) or None, max_new_tokens=max_tokens)
        duration_s = audio_16k.size / WHISPER_RATE_HZ
        texts: list[str] = []
        words: list[Word] = []
        for segment in segments:
            texts.append(segment.text.strip())
            words.extend(_words(segment.words or (), duration_s, words[-1].end_s if words else 0.0))
        text = " ".join(t for t in texts if t).strip()
        confidence = float(np.mean([w.confidence for w in words])) if words and text else 0.0
        detected = getattr(info, "language", "") or language
        return Transcript(text, confidence, tuple(words), True, detected)

    def _decode_window(self, audio_16k: np.ndarray, options: RecognitionOptions, language: str) -> Transcript:
        """One window: log-mel, encoder once, beam search for 1 + options.alternatives hypotheses, then
        word timings of the best by cross-attention alignment (as faster-whisper does per segment)."""
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens, merge_punctuations

        model = self._model
        key = language or "en"
        if key not in self._tokenizers:  # a race only builds the same tokenizer twice
            tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=key)
            self._tokenizers[key] = (tokenizer, list(get_suppressed_tokens(tokenizer, (-1,)) or ()))
        tokenizer, suppress = self._tokenizers[key]
        if options.expect == "digits" and self.bias.digit_grammar:
            suppress = self._digit_suppression(key, tokenizer, suppress, options.phrases)
        features = model.feature_extractor(audio_16k)
        content_frames = min(features.shape[-1] - 1, N_WINDOW_FRAMES)
        window = self._digits_window(content_frames) if options.expect == "digits" else self._window_frames(
            content_frames)
        encoder_output = model.encode(pad_or_trim(features[:, :content_frames], window))
        prompt_text = initial_prompt(options, self.bias)
        prompts = [self._prompt_tokens(tokenizer, prompt_text)]
        if options.expect == "digits" and prompt_text and self.bias.digits_unprompted:
            prompts.append(self._prompt_tokens(tokenizer, ""))
        hypotheses = max(1, 1 + options.alternatives)
        beam = max(self.beam_size, hypotheses)
        scored = []
        no_speech_prob = 0.0
        for i, prompt in enumerate(prompts):
            result = model.model.generate(
                encoder_output, [prompt], beam_size=beam, num_hypotheses=hypotheses, length_penalty=1.0,
                max_length=len(prompt) + _max_tokens(audio_16k.size, options, unprompted=i > 0), return_scores=True,
                return_no_speech_prob=True, suppress_blank=True, suppress_tokens=suppress)[0]
            if i == 0:
                no_speech_prob = result.no_speech_prob
            for tokens, score in zip(result.sequences_ids, result.scores, strict=True):
                tokens = [t for t in tokens if t < tokenizer.eot]
                log_prob = float(score) * len(tokens) / (len(tokens) + 1)  # faster-whisper's average log prob
                scored.append((tokens, tokenizer.decode(tokens).strip(), log_prob))
        best_tokens, text, log_prob = scored[0]
        if options.expect != "digits":  # "5 1 5 1 5 1" is what a caller may say
            collapsed = collapse_repeats(text)
            if collapsed != text:
                text, best_tokens = collapsed, _tokens_of(tokenizer, best_tokens, collapsed)
        if no_speech_prob > NO_SPEECH_THRESHOLD and log_prob < LOG_PROB_THRESHOLD:
            return Transcript("", 0.0, (), True, language)
        words: list[Word] = []
        if text:
            alignment = model.find_alignment(tokenizer, [best_tokens], encoder_output, content_frames)[0]
            merge_punctuations(alignment, PREPEND_PUNCTUATION, APPEND_PUNCTUATION)
            words = _words((_Timing(a) for a in alignment if a["word"]), audio_16k.size / WHISPER_RATE_HZ, 0.0)
        confidence = float(np.mean([w.confidence for w in words])) if words and text else 0.0
        alternatives = tuple(dict.fromkeys(Alternative(t, round(p, 4)) for _, t, p in scored[1:] if t and t != text))
        return Transcript(text, confidence, tuple(words), True, language, alternatives, round(log_prob, 4))

    def _digit_suppression(self, key: str, tokenizer: Any, base: list[int], keep: tuple[str, ...]) -> list[int]:
        """The tokens suppressed for a digit string (asr.grammar), built once per language and phrases."""
        from asr.grammar import digit_suppression

        cache_key = (key, keep)
        if cache_key not in self._grammars:
            self._grammars[cache_key] = sorted(set(base) | set(digit_suppression(tokenizer, keep)))
        return self._grammars[cache_key]

    def _window_frames(self, content_frames: int) -> int:
        """Encoder frames for a turn: the full 30 s, or (window_s=0) SHORT_WINDOW_FRAMES for a turn of
        up to SHORT_TURN_FRAMES: the encoder's cost grows faster than its length, so a 10 s window costs
        a sixth of 30 s."""
        if self.window_s > 0:
            return min(N_WINDOW_FRAMES, int(self.window_s * FRAMES_PER_S))
        if content_frames <= SHORT_TURN_FRAMES:
            return SHORT_WINDOW_FRAMES
        middle = int(self.middle_window_s * FRAMES_PER_S)
        if middle and content_frames + MIN_PAD_S * FRAMES_PER_S <= middle:
            return min(middle, N_WINDOW_FRAMES)
        return N_WINDOW_FRAMES

    def _digits_window(self, content_frames: int) -> int:
        window = min(N_WINDOW_FRAMES, int(self.digits_window_s * FRAMES_PER_S))
        return window if content_frames + MIN_PAD_S * FRAMES_PER_S <= window else N_WINDOW_FRAMES

    def _prompt_tokens(self, tokenizer: Any, text: str) -> list[int]:
        prompt: list[int] = []
        if text:
            previous = tokenizer.encode(" " + text.strip())
            prompt = [tokenizer.sot_prev, *previous[-(MAX_LENGTH // 2 - 1):]]
        return [*prompt, *tokenizer.sot_sequence, tokenizer.no_timestamps]


_WORD_KEY = re.compile(r"[^\w']+")


def collapse_repeats(text: str) -> str:
    """A transcript whose end repeats itself ("Are you open? Are you open?", "balance balance balance")
    cut to its first round: Whisper loops when it does not see where speech ends, and stops at its token
    limit, often inside a round. The run must come again after itself, whole or for at least 3 words
    ("I need a bank statement. I need a"); a single word three times in all; two words twice."""
    words = text.split()
    keys = [_WORD_KEY.sub("", w.lower()) for w in words]
    n = len(keys)
    for start in range(n):
        for unit in range(1, n - start):
            repeated = n - start - unit
            if repeated < (2 if unit == 1 else min(unit, 3)) or not keys[start]:
                continue
            tail = keys[start:]
            if all(tail[i] == tail[i % unit] for i in range(len(tail))):
                return " ".join(words[:start + unit]).rstrip(",")
    return text


def _tokens_of(tokenizer: Any, tokens: list[int], text: str) -> list[int]:
    """The shortest start of `tokens` that reads `text` (a transcript cut by collapse_repeats), so the word
    timings and probabilities are those of the words kept; all of them when none does."""
    want = text.strip().rstrip(",")
    for end in range(1, len(tokens) + 1):
        if tokenizer.decode(tokens[:end]).strip().rstrip(",") == want:
            return tokens[:end]
    return tokens


def _max_tokens(samples_16k: int, options: RecognitionOptions | None = None, unprompted: bool = False) -> int:
    """The longest output for a turn: by its length, and for a digit string of known length at most
    DIGIT_TOKENS_EACH per digit and DIGIT_TOKENS_MORE more (a loop, "5 1 5 1 5 1 5 1 ...", stops there).
    Without the digit prompt Whisper writes "4, 0, 6, 2, 1, 5": twice the tokens per digit."""
    by_audio = MIN_MAX_TOKENS + int(MAX_TOKENS_PER_S * samples_16k / WHISPER_RATE_HZ)
    if options is not None and options.expect == "digits" and options.digits:
        each = DIGIT_TOKENS_EACH * (2 if unprompted else 1)
        return min(by_audio, DIGIT_TOKENS_MORE + each * options.digits)
    return by_audio


class _Timing:
    """A word of faster-whisper's alignment, shaped like its Word (word, start, end, probability)."""

    def __init__(self, timing: dict[str, Any]) -> None:
        self.word = str(timing["word"])
        self.start = float(timing["start"])
        self.end = float(timing["end"])
        self.probability = float(timing["probability"])


def _words(timings: Iterable[Any], duration_s: float, previous_end_s: float) -> list[Word]:
    """Words (anything with word, start, end, probability) with times clamped into [previous end,
    duration] so they never go back."""
    out = []
    last = previous_end_s
    for w in timings:
        text = w.word.strip()
        if not text:
            continue
        start = min(max(float(w.start), last), duration_s)
        end = min(max(float(w.end), start), duration_s)
        out.append(Word(text, round(start, 3), round(end, 3), float(w.probability)))
        last = end
    return out


class WhisperStream(RecognizerStream):
    """Collects PCM16 mono at the stream's rate; finish() resamples to 16 kHz and decodes."""

    def __init__(self, recognizer: WhisperRecognizer, sample_rate_hz: int,
                 options: RecognitionOptions) -> None:
        self._recognizer = recognizer
        self.sample_rate_hz = sample_rate_hz
        self._options = options
        self._chunks: list[bytes] = []
        self._done = False
        self._lock = threading.Lock()

    def accept(self, pcm: bytes) -> Transcript | None:
        if len(pcm) % 2:
            raise AsrError(f"PCM16 audio has an odd byte count ({len(pcm)})")
        with self._lock:
            if self._done:
                raise AsrError("whisper stream already finished")
            self._chunks.append(bytes(pcm))
        return None

    def finish(self) -> Transcript:
        with self._lock:
            if self._done:
                raise AsrError("whisper stream already finished")
            self._done = True
            pcm, self._chunks = b"".join(self._chunks), []
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.int16)
        samples = resample(samples, self.sample_rate_hz, WHISPER_RATE_HZ)
        audio = to_float32(samples)
        return self._recognizer.decode(audio, self._options)
