"""What the caller hears of a reply comes at once: no leading silence from the voice, and no backlog of
quiet frames in front of it on the line."""

from __future__ import annotations

import numpy as np
import pytest

from telephony.sip.media import SILENCE_BACKLOG, CallMediaPort
from tts.factory import load_synthesizer
from tts.stream import LEAD_KEPT_MS, LEAD_QUIET_PEAK, speak, without_lead

RATE_HZ = 8000


def tone(ms: int, amplitude: float) -> np.ndarray:
    n = RATE_HZ * ms // 1000
    return (amplitude * np.sin(2 * np.pi * 440 * np.arange(n) / RATE_HZ)).astype(np.int16)


def test_a_reply_starts_ten_milliseconds_before_its_first_sound():
    audio = np.concatenate([tone(60, 20), tone(200, 8000)])  # 60 ms of near-silence, then speech
    trimmed = without_lead(audio, RATE_HZ)
    first_sound = int(np.flatnonzero(np.abs(audio.astype(np.int32)) > LEAD_QUIET_PEAK)[0])
    assert first_sound >= 480  # in the speech, after the 60 ms
    assert trimmed.size == audio.size - first_sound + LEAD_KEPT_MS * RATE_HZ // 1000
    assert without_lead(tone(100, 20), RATE_HZ).size == 0  # all silence: nothing to wait through
    loud = tone(100, 8000)
    assert without_lead(loud, RATE_HZ).size == loud.size  # sound from the start: untouched


@pytest.mark.models
def test_piper_replies_lose_their_leading_silence():
    piper = load_synthesizer("piper", "")
    first = next(speak(piper, "Your current account balance is twelve dollars.", RATE_HZ))
    lead_ms = np.flatnonzero(np.abs(first.astype(np.int32)) > LEAD_QUIET_PEAK)[0] * 1000 / RATE_HZ
    assert lead_ms >= 30  # the voice starts each sentence with silence...
    trimmed = without_lead(first, RATE_HZ)
    assert np.flatnonzero(np.abs(trimmed.astype(np.int32)) > LEAD_QUIET_PEAK)[0] * 1000 / RATE_HZ <= LEAD_KEPT_MS


def test_quiet_frames_do_not_queue_up_in_front_of_the_agent():
    port = CallMediaPort()
    speech, pause = tone(20, 3000).tobytes(), tone(20, 40).tobytes()  # a pause between words is not all zeros
    for _ in range(6):  # a burst after a stall: speech is always queued
        port.write(speech)
    assert port.queued_out == 6
    for _ in range(4):
        port.write(pause)  # ...but the quiet between words is not, while a backlog waits
    assert port.queued_out == 6
    port.reset()
    port.write(pause)
    port.write(pause)
    assert port.queued_out == SILENCE_BACKLOG  # without a backlog the quiet is kept
