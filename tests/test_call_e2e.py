"""Whole simulated calls on the real models: what a caller would hear and where the call goes."""

from __future__ import annotations

import numpy as np
import pytest

from asr.factory import load_recognizer
from ivr.call.events import BargeIn, CallEnded, DialogStep, Dtmf, NoInput, Said, Transcript
from ivr.call.services import Services
from ivr.config import AgentConfig
from ivr.simulate import simulate_call
from telephony.audio.audiofile import read_audio
from telephony.wavfile import CallerTurn

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    cache = tmp_path_factory.mktemp("prompt-cache")
    return Services.load(AgentConfig(tts_cache_dir=str(cache)))


@pytest.fixture(scope="module")
def whisper():
    return load_recognizer("whisper", "tiny.en")


def nodes(call):
    return [e["node"] for e in call.session.log.of_type(DialogStep)]


def heard(whisper, call, start_ms=0.0, end_ms=None) -> str:
    """What a caller hears: ASR on the agent channel of the call's stereo recording."""
    clip = read_audio(call.out_dir / "recording.wav")
    rate = clip.sample_rate_hz
    stop = None if end_ms is None else int(end_ms * rate / 1000)
    return whisper.transcribe(clip.channel(1)[int(start_ms * rate / 1000):stop], rate).text.lower()


def test_caller_asking_for_balance_hears_the_balance(services, whisper, tmp_path):
    call = simulate_call(services, [CallerTurn(say="What is my account balance?"),
                                    CallerTurn(say="No, that's all, thank you.")], out_dir=tmp_path)
    assert "balance" in nodes(call)
    answer = next(e for e in call.session.log.of_type(Said) if "balance is" in e["text"])
    assert "balance" in heard(whisper, call, answer["t_ms"], answer["t_ms"] + 6000)
    assert call.result.outcome == "completed"
    assert call.latencies_ms() and all(lat < 5000 for lat in call.latencies_ms())


@pytest.mark.parametrize("request_text", ["I want to talk to an agent.", "Representative, please."])
def test_caller_asking_for_a_human_is_transferred(services, tmp_path, request_text):
    call = simulate_call(services, [CallerTurn(say=request_text)], out_dir=tmp_path)
    assert call.result.outcome == "transferred"
    assert call.result.reason == "caller-request"
    assert call.caller.outcome == "transferred" and call.caller.transfer_target


def test_silent_caller_is_reprompted_then_handed_off(services, tmp_path):
    call = simulate_call(services, [CallerTurn(silence_ms=60_000)], out_dir=tmp_path)
    no_inputs = call.session.log.of_type(NoInput)
    assert len(no_inputs) >= 2
    says = call.session.log.of_type(Said)
    assert len(says) >= 3  # greeting, at least one re-prompt, and a closing line
    assert call.result.outcome in ("transferred", "completed")
    assert call.result.reason == "no-input"


def test_barge_in_stops_the_prompt_within_200_ms(services, whisper, tmp_path):
    call = simulate_call(services, [CallerTurn(say="I need to speak to an agent.", barge_in_after_ms=1500)],
                         out_dir=tmp_path)
    barge = call.session.log.of_type(BargeIn)
    assert len(barge) == 1
    assert barge[0]["reaction_ms"] <= 200
    # The agent's channel really goes quiet right after the barge-in.
    clip = read_audio(call.out_dir / "recording.wav")
    rate = clip.sample_rate_hz
    stop = int((barge[0]["stopped_ms"] + 20) * rate / 1000)
    after = clip.channel(1)[stop:stop + rate // 2].astype(np.float64)
    assert np.sqrt(np.mean(after ** 2)) < 50
    assert call.result.reason == "caller-request"


def test_keypad_choice_changes_the_dialog(services, tmp_path):
    call = simulate_call(services, [CallerTurn(dtmf="1"), CallerTurn(dtmf="0")], out_dir=tmp_path)
    assert "balance" in nodes(call)
    assert len(call.session.log.of_type(Dtmf)) == 2
    assert call.result.outcome == "transferred"


def test_real_recorded_caller_at_8khz(services, shared_data, tmp_path):
    """A human recording from the shared telephone-speech set (a spoken digit 'one' picks option 1)."""
    wav = shared_data / "speech" / "fsdd" / "1_jackson_0.flac"
    call = simulate_call(services, [CallerTurn(wav=str(wav)), CallerTurn(dtmf="0")], out_dir=tmp_path)
    transcripts = [e["text"].lower() for e in call.session.log.of_type(Transcript)]
    assert transcripts and ("one" in transcripts[0] or "1" in transcripts[0])
    assert "balance" in nodes(call)


def test_call_outputs_are_written(services, tmp_path):
    call = simulate_call(services, [CallerTurn(say="Agent please.")], out_dir=tmp_path)
    for name in ("recording.wav", "agent.wav", "transcript.txt", "transcript.json", "events.jsonl",
                 "summary.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    rec = read_audio(tmp_path / "recording.wav")
    assert rec.channels == 2 and rec.sample_rate_hz == 8000
    assert rec.duration_s * 1000 == pytest.approx(call.result.duration_ms, abs=40)
    text = (tmp_path / "transcript.txt").read_text()
    assert "caller:" in text and "agent:" in text


def test_caller_hanging_up_ends_the_call(services, tmp_path):
    call = simulate_call(services, [CallerTurn(say="What are your opening hours?"), CallerTurn(hangup=True)],
                         out_dir=tmp_path)
    assert "hours" in nodes(call)
    assert call.result.outcome == "caller-hangup"
    assert call.session.log.of_type(CallEnded)[-1]["outcome"] == "caller-hangup"
