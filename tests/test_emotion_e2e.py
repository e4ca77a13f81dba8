"""Simulated calls with real acted speech: an angry caller is handed to a person for negative
emotion; the same sentences spoken calmly are re-prompted without escalation.

The clips are RAVDESS actor 03's ("Kids are talking by the door", "Dogs are sitting by the door"),
played at 8 kHz into the bank flow with escalation on negative emotion turned on. Actor 03 is held
out of the shipped acoustic model's
training (`ivr train acoustic-emotion --hold-out 3`, the default), so the model has never heard this
voice. To be honest about the choice: these are the actor's strong-intensity angry takes, which the
model classifies as angry, and calm takes it classifies as neutral. With the shipped model (feature
version 2) all 8 of the actor's angry takes are heard as angry (one normal-intensity take only just,
negativity 0.50) and 7 of the 8 calm takes as neutral (one as happy); the first model missed one
angry take. Other actors' clips would not all be classified right: the model's speaker-independent
4-class accuracy is about 70%. The sentences match no menu choice, so every
turn is a no-match: escalation can only come from the caller's emotion.
"""

from __future__ import annotations

import pytest
import yaml

from dialog.flow import default_flow_path
from ivr.config import AgentConfig
from ivr.services import Services
from ivr.simulate import simulate_call
from telephony.wavfile import CallerTurn

pytestmark = pytest.mark.models

ANGRY = ("03-01-05-02-01-01-03.flac", "03-01-05-02-02-01-03.flac")
CALM = ("03-01-02-01-01-01-03.flac", "03-01-02-01-02-01-03.flac")


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    """The bank flow with escalation on negative emotion turned on (it ships turned off)."""
    flow = yaml.safe_load(default_flow_path().read_text(encoding="utf-8"))
    flow["settings"]["escalate_on_negative_emotion"] = {"turns": 2, "threshold": 0.6}
    flow_path = tmp_path_factory.mktemp("flow") / "bank-escalating.yaml"
    flow_path.write_text(yaml.safe_dump(flow), encoding="utf-8")
    config = AgentConfig(tts_cache_dir=str(tmp_path_factory.mktemp("prompt-cache")), flow=str(flow_path))
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
    emotions = call.session.log.of_type("emotion")
    assert len(emotions) == 2 and all(e["voice"] == "angry" and e["negativity"] >= 0.6 for e in emotions)
    ended = call.session.log.of_type("call_ended")[-1]
    assert ended["reason"] == "negative-emotion"
    said = " ".join(e["text"] for e in call.session.log.of_type("say"))
    assert "sorry for the trouble" in said.lower()  # the upset caller heard the shorter menu
    assert (tmp_path / "events.jsonl").read_text().count('"type": "emotion"') == 2


def test_same_sentences_spoken_calmly_are_reprompted_without_escalation(services, shared_data, tmp_path):
    call = simulate_call(services, [*_clips(shared_data, CALM), CallerTurn(hangup=True)], out_dir=tmp_path)
    assert call.result.reason != "negative-emotion"
    assert call.result.outcome == "caller-hangup"
    emotions = call.session.log.of_type("emotion")
    assert len(emotions) == 2 and all(e["negativity"] < 0.5 for e in emotions)
    said = [e["text"] for e in call.session.log.of_type("say")]
    assert sum("didn't catch that" in text for text in said) == 2
