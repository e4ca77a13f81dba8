"""When the caller's turn ends: decoded ahead at a short pause, ended there when the words settle it,
never while the caller is still talking."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from asr.factory import load_recognizer
from dialog.flow import load_default_flow
from dialog.machine import Machine
from ivr.call.events import DialogStep, ReplyStarted, Said, SpeechPaused, SpeechStopped
from ivr.call.events import Transcript as TranscriptEvent
from ivr.call.services import Services
from ivr.config import AgentConfig, CallConfig
from ivr.serve.bench import trim_silence
from ivr.simulate import simulate_call
from telephony.audio.audiofile import write_wav
from telephony.wavfile import CallerTurn
from tests.fakes import TimedRecognizer
from tts.factory import load_synthesizer
from tts.stream import speak

pytestmark = pytest.mark.models

RATE_HZ = 8000
FRAMES = 40
"""Two 20 ms frames: a turn's end is stamped on the caller's tick, its speech on the 16 kHz frames."""


@pytest.fixture(scope="module")
def piper():
    return load_synthesizer("piper", "")


def voice(piper, text: str) -> np.ndarray:
    return trim_silence(np.concatenate(list(speak(piper, text, RATE_HZ))))


def paused_turn(piper, tmp_path, first: str, second: str, pause_ms: int) -> tuple[str, float]:
    """A WAV of `first`, `pause_ms` of silence, then `second`; and the length of `first` in seconds."""
    a, b = voice(piper, first), voice(piper, second)
    gap = np.zeros(RATE_HZ * pause_ms // 1000, dtype=np.int16)
    path = tmp_path / "turn.wav"
    write_wav(path, np.concatenate([a, gap, b]), RATE_HZ)
    return str(path), a.size / RATE_HZ


def services_with(recognizer, piper, **call) -> Services:
    config = AgentConfig(call=dataclasses.replace(CallConfig(), **call))
    return Services(config, recognizer, piper, Machine(load_default_flow()))


def reply_to_first_turn(call) -> tuple[SpeechStopped, ReplyStarted]:
    stopped = call.session.log.of_type(SpeechStopped)[0]
    reply = next(r for r in call.session.log.of_type(ReplyStarted) if r.turn_end_ms == stopped.end_ms)
    return stopped, reply


def test_settled_words_end_the_turn_at_the_pause_not_after_the_silence(piper):
    services = services_with(TimedRecognizer("What is my balance?"), piper)
    call = simulate_call(services, [CallerTurn(say="What is my balance?")], fast=True)
    stopped, reply = reply_to_first_turn(call)
    assert stopped.early
    assert "balance" in [e.node for e in call.session.log.of_type(DialogStep)]

    slow = services_with(TimedRecognizer("What is my balance?"), piper, decode_ahead_ms=0)
    before, reply_before = reply_to_first_turn(simulate_call(slow, [CallerTurn(say="What is my balance?")], fast=True))
    assert not before.early and before.t_ms - before.end_ms >= slow.config.call.end_of_turn_silence_ms - FRAMES
    assert reply.turn_end_ms == stopped.end_ms and reply_before.turn_end_ms == before.end_ms
    # the reply could start sooner, by much of the silence it did not wait out (500 - 300 ms): both waits are
    # from the last word, but the two calls' frames fall differently and the VAD's hangover after the word
    # varies by a few frames (a 140 ms gap was seen)
    call_cfg = services.config.call
    assert (before.t_ms - before.end_ms) - (stopped.t_ms - stopped.end_ms) >= \
        (call_cfg.end_of_turn_silence_ms - call_cfg.complete_timeout_ms) / 2


@pytest.mark.parametrize(("text", "confidence"), [("I would like to", 0.95), ("What is my balance?", 0.4)])
def test_words_that_do_not_settle_the_turn_wait_for_the_silence(piper, text, confidence):
    """Nothing the menu acts on yet, or the keyword heard unsurely: the turn ends by silence, and the
    transcript decoded ahead is still the one taken (one decode for the turn)."""
    recognizer = TimedRecognizer(text, word_confidence=confidence)
    services = services_with(recognizer, piper)
    call = simulate_call(services, [CallerTurn(say="What is my balance?")], fast=True)
    stopped = call.session.log.of_type(SpeechStopped)[0]
    assert not stopped.early
    assert stopped.t_ms - stopped.end_ms >= services.config.call.end_of_turn_silence_ms - FRAMES
    assert len(recognizer.decoded_s) == 1


def test_a_caller_who_goes_on_after_a_short_pause_is_not_cut_off(piper, tmp_path):
    """The decode made at the pause is dropped when the caller speaks again; the turn's transcript is
    decoded from the whole sentence, and the agent does not answer the first half."""
    wav, first_s = paused_turn(piper, tmp_path, "What is my balance", "on my savings account", pause_ms=320)
    recognizer = TimedRecognizer("What is my balance on my savings account?", delay_s=0.2)
    call = simulate_call(services_with(recognizer, piper), [CallerTurn(wav=wav)], fast=True)
    stopped = call.session.log.of_type(SpeechStopped)
    paused = call.session.log.of_type(SpeechPaused)
    assert len(stopped) == 1
    assert len(paused) == 2 and paused[0].end_ms < stopped[0].end_ms - 300  # mid-sentence, then at the end
    assert recognizer.decoded_s[-1] > first_s + 0.5  # the transcript taken is of the whole sentence
    assert len(recognizer.decoded_s) <= 2


def test_real_caller_pausing_mid_sentence_gets_one_whole_transcript(piper, tmp_path):
    """Whisper and a Piper caller: "I lost ... my card" with a pause between; the turn is one, its
    transcript holds both halves, and no reply starts before the caller has finished."""
    wav, first_s = paused_turn(piper, tmp_path, "I think I lost", "my debit card", pause_ms=320)
    services = services_with(load_recognizer("whisper", "tiny.en"), piper)
    call = simulate_call(services, [CallerTurn(wav=wav)], fast=True)
    stopped = call.session.log.of_type(SpeechStopped)
    transcripts = call.session.log.of_type(TranscriptEvent)
    assert len(stopped) == 1
    assert "lost" in transcripts[0].text.lower() and "card" in transcripts[0].text.lower()
    replies = [s for s in call.session.log.of_type(Said) if s.t_ms > stopped[0].onset_ms]
    assert replies and min(s.t_ms for s in replies) >= stopped[0].end_ms
    assert stopped[0].end_ms - stopped[0].onset_ms > first_s * 1000 + 300


SMALL_FLOW = """
name: small
start: menu
settings:
  no_match_prefix: Sorry, I missed that.
nodes:
  menu:
    say: Say balance, or press one.
    expect:
      - {keywords: [balance], digits: "1", goto: balance}
  balance:
    say: Your balance is {balance}. Goodbye.
    hangup: {reason: completed}
"""


def test_the_flows_fixed_prompts_are_synthesized_into_the_cache_before_any_call(piper, tmp_path):
    from dialog.flow import parse_flow, spoken_texts
    from tts.cache import CachedSynthesizer, PromptCache

    flow = parse_flow(SMALL_FLOW)
    texts = spoken_texts(flow)
    assert "Say balance, or press one." in texts and "Sorry, I missed that." in texts
    assert not any("{" in t for t in texts)  # said with values: synthesized when said
    cache = PromptCache(tmp_path / "prompts")
    services = Services(AgentConfig(), TimedRecognizer("balance"), CachedSynthesizer(piper, cache),
                        Machine(flow))
    made = services.presynthesize()
    assert made >= 2
    rate = piper.capabilities.sample_rate_hz
    assert cache.get(PromptCache.key(piper.engine, piper.voice, "Say balance, or press one.", rate)) is not None
    assert services.presynthesize() == 0  # already there: nothing to do on the next start
