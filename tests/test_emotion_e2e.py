"""Simulated calls with real acted speech: an angry caller is handed to a person for negative
emotion; the same sentences spoken calmly are re-prompted without escalation.

The clips are RAVDESS actor 03's ("Kids are talking by the door", "Dogs are sitting by the door"),
played at 8 kHz into the default bank flow (escalation on negative emotion is on by default). Actor 03
is held out of the shipped acoustic model's training (`ivr train acoustic-emotion --hold-out 3`, the
default), so the model has never heard this voice. To be honest about the choice: these are the
actor's strong-intensity angry takes, which the model classifies as angry, and calm takes it
classifies as neutral. With the shipped model (feature version 3) the 4 strong-intensity angry takes
are heard as angry (voice negativity 0.97-0.99); of the 4 normal-intensity ones, 3 as angry
(0.45-0.79) and one as neutral (0.32); all 8 calm takes as neutral (at most 0.06). Other actors'
clips would not all be classified right: the model's speaker-independent 4-class accuracy is about
70%. The sentences match no menu choice, so every turn is a no-match: escalation can only come from
the caller's emotion.

The other way round: simulated callers speak with Piper, a voice unlike any training speaker. The
model abstains on such turns when they are out of its training distribution (most of them: OOD
distance 1.9-4.3 against thresholds 1.87/2.25), and has been taught that synthetic voices are
neutral (ivr/train/emotion/synthetic.py, whose sentences exclude the turns checked here; the voice alone
gives them at most 0.07), so calm synthetic callers are not escalated: every Piper turn of the call
tests fuses to at most 0.36 negativity ("I lost my card.", from the words).
"""

from __future__ import annotations

import numpy as np
import pytest

from dialog.flow import default_flow_path, load_flow
from ivr.call.events import CallEnded, Emotion, Said
from ivr.call.services import Services
from ivr.config import AgentConfig
from ivr.simulate import simulate_call
from telephony.wavfile import CallerTurn

pytestmark = pytest.mark.models

ANGRY = ("03-01-05-02-01-01-03.flac", "03-01-05-02-02-01-03.flac")
CALM = ("03-01-02-01-01-01-03.flac", "03-01-02-01-02-01-03.flac")


PIPER_TURNS = ("What is my account balance?", "No, that's all, thank you.", "I want to talk to an agent.",
               "Representative, please.", "I lost my card.", "What are your opening hours?",
               "my account number is one two three four five six", "Yes.",
               "Hi, what is my account balance?", "What is my balance?", "I need to speak to an agent.",
               "Agent please.", "I'd like a bank statement.", "My account number is one two three four five six.",
               "No, thank you.", "Yes, thanks.", "What is your daily cash withdrawal limit?",
               "What will the weather be like on Mars?")
"""The caller turns the call tests (test_call_e2e, test_call_nlu, test_session_failures, test_sip_call)
speak with Piper."""


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    """The default bank flow, which escalates on sustained negative emotion."""
    escalation = load_flow(default_flow_path()).settings.escalate_on_negative_emotion
    assert escalation is not None and escalation.turns == 2 and escalation.threshold == 0.6
    config = AgentConfig(tts_cache_dir=str(tmp_path_factory.mktemp("prompt-cache")))
    services = Services.load(config)
    assert services.emotion is not None and services.emotion.acoustic is not None
    assert "ravdess-03" in services.emotion.acoustic.meta["figures"]["held_out_speakers"]
    return services


def _clips(shared_data, names):
    return [CallerTurn(wav=str(shared_data / "emotion" / "ravdess" / "Actor_03" / name)) for name in names]


def test_angry_caller_is_escalated_for_negative_emotion(services, shared_data, tmp_path):
    call = simulate_call(services, _clips(shared_data, ANGRY), out_dir=tmp_path)
    assert call.result.outcome == "transferred"
    assert call.result.reason == "negative-emotion"
    emotions = call.session.log.of_type(Emotion)
    assert len(emotions) == 2 and all(e["voice"] == "angry" and e["negativity"] >= 0.6 for e in emotions)
    assert all(e["voice_weight"] > 0.5 for e in emotions)  # a human voice: the model does not abstain
    ended = call.session.log.of_type(CallEnded)[-1]
    assert ended["reason"] == "negative-emotion"
    said = " ".join(e["text"] for e in call.session.log.of_type(Said))
    assert "sorry for the trouble" in said.lower()  # the upset caller heard the shorter menu
    assert (tmp_path / "events.jsonl").read_text().count('"type": "emotion"') == 2


def test_same_sentences_spoken_calmly_are_reprompted_without_escalation(services, shared_data, tmp_path):
    call = simulate_call(services, [*_clips(shared_data, CALM), CallerTurn(hangup=True)], out_dir=tmp_path)
    assert call.result.reason != "negative-emotion"
    assert call.result.outcome == "caller-hangup"
    emotions = call.session.log.of_type(Emotion)
    assert len(emotions) == 2 and all(e["negativity"] < 0.5 for e in emotions)
    said = [e["text"] for e in call.session.log.of_type(Said)]
    assert sum("didn't catch that" in text for text in said) == 2


def test_calm_piper_callers_get_low_negativity(services):
    from ivr.train.emotion.synthetic import HELD_OUT_TURNS, SENTENCES, plain_words
    from telephony.audio.g711 import roundtrip
    from tts.factory import load_synthesizer
    from tts.stream import speak

    # not trained on: a held-out check (synthetic.py refuses to train on these turns)
    assert set(PIPER_TURNS) <= set(HELD_OUT_TURNS)
    assert not {plain_words(t) for t in PIPER_TURNS} & {plain_words(t) for t in SENTENCES}
    synth = load_synthesizer("piper", "")
    emotion = services.emotion
    for text in PIPER_TURNS:
        audio = roundtrip(np.concatenate(list(speak(synth, text, 8000))), "PCMU")
        fused = emotion.fuse(emotion.voice(audio, 8000), emotion.text(text))
        assert fused.negativity < 0.5, (text, fused)


def test_calm_piper_caller_who_is_not_understood_is_not_escalated_for_emotion(services, tmp_path):
    """Through the whole call path (Piper -> 8 kHz G.711 line -> the session at 16 kHz): two turns that
    match no choice in a row, the most a calm caller gives the emotion policy to go on."""
    turns = [CallerTurn(say="What will the weather be like on Mars?"),
             CallerTurn(say="Tell me a story about a dragon."), CallerTurn(hangup=True)]
    call = simulate_call(services, turns, out_dir=tmp_path)
    assert call.result.reason != "negative-emotion"
    emotions = call.session.log.of_type(Emotion)
    assert len(emotions) >= 2 and all(e["negativity"] < 0.5 for e in emotions), emotions
    # the log says how far the voice was from the model's training speakers, and how much it counted
    assert all(e["voice_ood"] is not None and 0.0 <= e["voice_weight"] <= 1.0 for e in emotions)
