"""Conversation intelligence on real models: spoken requests (Piper -> whisper tiny.en -> intent),
an account number given by voice and by keypad and read back, FAQ answers and misses in a call."""

from __future__ import annotations

import pytest

from asr.factory import load_recognizer
from dialog.nlu.slots import parse_digits
from ivr.call.events import DialogStep, FaqMiss, NluResult, Said
from ivr.call.services import Services
from ivr.config import AgentConfig
from ivr.simulate import caller_voice, simulate_call
from telephony.audio.audiofile import read_audio
from telephony.wavfile import CallerTurn

pytestmark = pytest.mark.models

SPOKEN_REQUESTS = [
    ("How much money do I have in my checking account?", "balance"),
    ("Could you tell me my current balance, please?", "balance"),
    ("Someone stole my wallet and my debit card.", "lost_card"),
    ("I think I lost my credit card yesterday.", "lost_card"),
    ("What time does the branch close on Saturday?", "hours"),
    ("Are you open on weekends?", "hours"),
    ("Can I please speak with a real person?", "agent"),
    ("Transfer me to a representative.", "agent"),
    ("Yeah, that's right.", "yes"),
    ("Nope, nothing else.", "no"),
]


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    return Services.load(AgentConfig(tts_cache_dir=str(tmp_path_factory.mktemp("prompt-cache"))))


@pytest.fixture(scope="module")
def whisper():
    return load_recognizer("whisper", "tiny.en")


def test_intents_of_spoken_requests_from_asr_transcripts(services, whisper):
    speak = caller_voice(services)
    right = []
    for text, intent in SPOKEN_REQUESTS:
        heard = whisper.transcribe(speak(text, 16000), 16000).text
        right.append(services.nlu.understand(heard).intent == intent)
    assert sum(right) >= 8, right


def heard_between(whisper, call, start_ms, end_ms):
    clip = read_audio(call.out_dir / "recording.wav")
    rate = clip.sample_rate_hz
    return whisper.transcribe(clip.channel(1)[int(start_ms * rate / 1000):int(end_ms * rate / 1000)], rate).text


@pytest.mark.parametrize("account", [CallerTurn(say="My account number is one two three four five six."),
                                     CallerTurn(dtmf="123456#")], ids=["voice", "keypad"])
def test_caller_gives_an_account_number_and_hears_it_read_back(services, whisper, tmp_path, account):
    call = simulate_call(services, [CallerTurn(say="I'd like a bank statement."), account,
                                    CallerTurn(say="Yes."), CallerTurn(say="No, thank you.")], out_dir=tmp_path)
    read_back = next(e for e in call.session.log.of_type(Said) if e["text"].startswith("I heard"))
    assert "1 2 3 4 5 6" in read_back["text"]
    assert parse_digits(heard_between(whisper, call, read_back["t_ms"], read_back["t_ms"] + 5000)) == "123456"
    nodes = [e["node"] for e in call.session.log.of_type(DialogStep)]
    assert "statement_sent" in nodes
    assert call.result.outcome == "completed"


def test_faq_question_is_answered_and_a_miss_is_logged(services, tmp_path):
    call = simulate_call(services, [CallerTurn(say="What is your daily cash withdrawal limit?"),
                                    CallerTurn(say="Yes, thanks."),
                                    CallerTurn(say="What will the weather be like on Mars?"),
                                    CallerTurn(say="Agent please.")], out_dir=tmp_path)
    says = [e["text"] for e in call.session.log.of_type(Said)]
    assert any("five hundred dollars a day" in s for s in says), says
    assert any("Did that answer your question?" in s for s in says)
    assert [e["faq"] for e in call.session.log.of_type(NluResult)][0] == "withdrawal_limit"
    assert len(call.session.log.of_type(FaqMiss)) == 1
    assert call.result.reason == "caller-request"
