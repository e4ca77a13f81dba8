"""A failing component never strands a caller: the call falls back, then goes to a human."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dialog.flow import load_default_flow
from dialog.machine import Machine
from ivr.call.events import AsrFailed, Said, TtsFailed
from ivr.call.services import Services
from ivr.config import AgentConfig, CallConfig
from ivr.simulate import simulate_call
from telephony.wavfile import CallerTurn
from tests.fakes import BrokenRecognizer, BrokenSynthesizer
from tts.factory import load_synthesizer

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def piper():
    return load_synthesizer("piper", "")


def services_with(recognizer, synthesizer, fallback=None, **call):
    config = AgentConfig(call=dataclasses.replace(CallConfig(), **call))
    return Services(config, recognizer, synthesizer, Machine(load_default_flow()), fallback)


def test_broken_recognizer_ends_in_a_transfer_not_a_dead_line(piper):
    services = services_with(BrokenRecognizer(), piper)
    turns = [CallerTurn(say="What is my balance?")] * 3
    call = simulate_call(services, turns, fast=True)
    assert len(call.session.log.of_type(AsrFailed)) == 3
    assert call.result.outcome == "transferred" and call.result.reason == "asr-failure"
    assert len(call.session.log.of_type(Said)) >= 4  # the caller heard re-prompts and the handover


def test_broken_voice_falls_back_to_espeak(piper):
    espeak = load_synthesizer("espeak-ng", "")
    from asr.factory import load_recognizer

    services = services_with(load_recognizer("whisper", "tiny.en"), BrokenSynthesizer(), fallback=espeak)
    call = simulate_call(services, [CallerTurn(dtmf="0")], fast=True)
    assert not call.session.log.of_type(TtsFailed)
    agent = np.concatenate([f.samples() for f in call.caller.agent_frames]).astype(np.float64)
    assert np.sqrt(np.mean(agent ** 2)) > 100  # the caller heard the fallback voice
    assert call.result.outcome == "transferred" and call.result.reason == "caller-request"


def test_no_voice_at_all_transfers_the_caller():
    services = services_with(BrokenRecognizer(), BrokenSynthesizer())
    call = simulate_call(services, [CallerTurn(dtmf="1")], fast=True)
    assert call.session.log.of_type(TtsFailed)
    assert call.result.outcome == "transferred" and call.result.reason == "tts-failure"


def test_maximum_call_length_closes_the_call(piper):
    from asr.factory import load_recognizer

    services = services_with(load_recognizer("whisper", "tiny.en"), piper, max_call_ms=5000)
    call = simulate_call(services, [CallerTurn(silence_ms=60_000)], fast=True)
    assert call.result.reason == "max-duration"
    assert call.result.duration_ms < 15_000
