"""Emotion: text model on typical caller phrases, features at line and wideband rates, fusion,
and the dialog's use of it (smoothing, upset prompts, escalation with its reason)."""

from __future__ import annotations

import numpy as np
import pytest

from dialog.actions import Say, Transfer
from dialog.emotion.acoustic import AcousticEmotionModel
from dialog.emotion.features import extract, feature_count
from dialog.emotion.fusion import fuse
from dialog.emotion.policy import EmotionEscalation, EmotionTrack, update
from dialog.emotion.text import TextEmotionModel
from dialog.errors import FlowError
from dialog.events import Utterance
from dialog.flow import parse_flow
from dialog.machine import Machine
from telephony.audio.resample import resample

ESCALATION = EmotionEscalation(turns=2, threshold=0.6)

FLOW = """
name: t
start: menu
settings:
  escalate_on_negative_emotion: {turns: 2, threshold: 0.6}
  upset_threshold: 0.5
nodes:
  menu:
    say: Say balance, lost card, or agent.
    say_upset: I'm sorry about the trouble. Say balance or agent.
    expect:
      - {keywords: [balance], goto: balance}
  balance:
    say: Your balance is ten dollars.
    say_upset: I understand. Your balance is ten dollars.
    next: menu
"""


@pytest.fixture(scope="module")
def text_model():
    return TextEmotionModel()


@pytest.mark.parametrize("text, label", [
    ("this is ridiculous i am so angry you people are useless", "anger"),
    ("thank you so much that is great", "joy"),
    ("i am so sad my husband died", "sadness"),
])
def test_text_emotion_names_the_feeling_in_asr_style_text(text_model, text, label):
    assert text_model.predict(text).label == label


def test_angry_words_are_more_negative_than_thanks_or_a_plain_request(text_model):
    angry = text_model.predict("This is ridiculous! I have called five times and you still have not "
                               "fixed it. I am furious.")
    plain = text_model.predict("what is my account balance")
    thanks = text_model.predict("thanks a lot, that's great")
    assert angry.valence < 0 < thanks.valence
    assert angry.negativity > 0.5 > plain.negativity > thanks.negativity


def test_text_model_files_are_small_and_not_pickles(text_model):
    from dialog.emotion.text import default_model_dir
    for name in ("text-emotion.json", "text-emotion.npz", "acoustic-emotion.json", "acoustic-emotion.npz"):
        path = default_model_dir() / name
        assert path.stat().st_size < 5_000_000
        np.load(path, allow_pickle=False) if name.endswith(".npz") else None
    assert text_model.meta["figures"]["test_macro_f1"] > 0.5


def test_a_model_trained_on_other_features_is_refused_with_a_clear_message(tmp_path, caplog):
    """Weights trained on another feature version would read the wrong features without a sign."""
    import json
    import shutil

    from dialog.emotion.analyzer import EmotionAnalyzer
    from dialog.emotion.features import FEATURE_VERSION
    from dialog.emotion.text import default_model_dir
    from models.errors import ModelMissingError

    assert AcousticEmotionModel().meta["feature_version"] == FEATURE_VERSION  # the shipped model is current
    for name in ("acoustic-emotion.json", "acoustic-emotion.npz", "text-emotion.json", "text-emotion.npz"):
        shutil.copy(default_model_dir() / name, tmp_path / name)
    meta_path = tmp_path / "acoustic-emotion.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    for stale in ("tel8k-v2", None):
        meta["feature_version"] = stale
        meta_path.write_text(json.dumps(meta), encoding="utf-8")
        with pytest.raises(ModelMissingError, match=f"{stale!r}.*{FEATURE_VERSION!r}.*retrain"):
            AcousticEmotionModel(tmp_path)
    with caplog.at_level("WARNING"):
        analyzer = EmotionAnalyzer.load(tmp_path)  # a call goes on with the words alone, and says why
    assert analyzer is not None and analyzer.acoustic is None and analyzer.text_model is not None
    assert "trained on features None" in caplog.text


def _voice(rate_hz: int, seconds: float = 1.5) -> np.ndarray:
    """A vowel-like tone with a gliding pitch and syllable-rate loudness."""
    t = np.arange(int(rate_hz * seconds)) / rate_hz
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.8 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate_hz
    wave = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    return (wave * envelope * 6000).astype(np.int16)


def test_features_at_8_and_16_khz_agree_on_the_same_voice():
    n = feature_count()
    low, wide = extract(_voice(8000), 8000), extract(_voice(16000), 16000, resample)
    assert low.shape == wide.shape == (n,)
    assert np.all(np.isfinite(low)) and np.all(np.isfinite(wide))
    assert abs(low[0] - wide[0]) < 0.05  # mean log2 pitch, same voice at either rate
    assert abs(low[0] - np.log2(140)) < 0.3


def test_a_line_turn_gives_the_same_features_read_at_8_khz_or_through_the_16_khz_session():
    """Calls hand the model 16 kHz audio (the session's rate); training clips are read at 8 kHz. The
    resampler's anti-alias filter removes 3.8-4 kHz on the way up and down, so without the 3.5 kHz
    low-pass the two paths disagreed on unvoiced levels by 15 dB."""
    from telephony.audio.g711 import roundtrip

    rng = np.random.default_rng(1)
    line = roundtrip((_voice(8000, 2.0) + rng.standard_normal(16000) * 300).astype(np.int16), "PCMU")
    direct, session = extract(line, 8000), extract(resample(line, 8000, 16000), 16000, resample)
    assert np.allclose(direct, session, rtol=0.05, atol=0.1)
    model = AcousticEmotionModel()
    d_direct, d_session = model.ood_distance(direct), model.ood_distance(session)
    assert d_direct is not None and d_session is not None
    assert abs(float(d_direct[0]) - float(d_session[0])) < 0.05


def test_features_survive_silence_and_very_short_audio():
    assert np.all(np.isfinite(extract(np.zeros(800, dtype=np.int16), 8000)))
    assert np.all(np.isfinite(extract(np.zeros(16000, dtype=np.int16), 16000, resample)))


def test_acoustic_model_gives_four_class_probabilities():
    """(Its speed is measured by `ivr train acoustic-emotion` and in the model card, not here.)"""
    model = AcousticEmotionModel()
    result = model.predict(_voice(8000, 3.0), 8000)
    assert set(result.scores) == {"neutral", "happy", "sad", "angry"}
    assert abs(sum(result.scores.values()) - 1) < 1e-3


def test_fusion_weighs_voice_over_words(text_model):
    from dialog.emotion.acoustic import VoiceEmotion
    angry_voice = VoiceEmotion("angry", {"neutral": 0.02, "happy": 0.02, "sad": 0.01, "angry": 0.95}, 0.95, 2.0)
    words = text_model.predict("kids are talking by the door")
    fused = fuse(angry_voice, words)
    assert fused.label == "angry" and fused.negativity > 0.6
    assert fuse(None, words).negativity == words.negativity
    assert fuse(None, None).label == ""


@pytest.mark.parametrize("said", ["I've been charged twice and I'm absolutely furious about it",
                                  "honestly this is a complete joke, nobody ever calls back",
                                  "i am so fed up with your bank",
                                  "Your service is shocking."])
def test_angry_words_in_a_calm_voice_are_not_averaged_away(text_model, said):
    """A caller who says outright that they are angry, in an even voice, counts as upset: the words raise the
    turn's negativity, the calm voice cannot pull it back down, and the label follows the words."""
    from dialog.emotion.acoustic import VoiceEmotion
    calm = VoiceEmotion("neutral", {"neutral": 0.97, "happy": 0.01, "sad": 0.01, "angry": 0.01}, 0.01, 2.0)
    words = text_model.predict(said)
    fused = fuse(calm, words)
    assert words.negativity >= 0.7 and fused.negativity == words.negativity and fused.label == "angry", fused
    track = update(update(EmotionTrack(), fused.label, fused.negativity, 0.5, ESCALATION), fused.label,
                   fused.negativity, 0.5, ESCALATION)
    assert track.negative_run == 2  # two such turns: the caller is offered a person


@pytest.mark.parametrize("said", ["I'm not angry, I just want my balance", "is it too late to cancel a payment",
                                  "my card was stolen this morning", "no", "angry birds is a game on my phone"])
def test_plain_requests_and_negated_anger_do_not_count_as_stated_anger(text_model, said):
    from dialog.emotion.text import stated_anger

    assert stated_anger(said) == 0.0 and text_model.predict(said).negativity < 0.6


def test_a_voice_out_of_distribution_abstains_and_the_words_decide(text_model):
    from dialog.emotion.acoustic import VoiceEmotion
    scores = {"neutral": 0.0, "happy": 0.0, "sad": 0.0, "angry": 1.0}
    words = text_model.predict("what is my account balance")
    abstained = fuse(VoiceEmotion("angry", scores, 1.0, 2.0, ood=9.0, weight=0.0), words)
    assert abstained.negativity == words.negativity and abstained.voice_weight == 0.0
    half = fuse(VoiceEmotion("angry", scores, 1.0, 2.0, ood=2.0, weight=0.5), words)
    full = fuse(VoiceEmotion("angry", scores, 1.0, 2.0, ood=1.0, weight=1.0), words)
    assert words.negativity < half.negativity < full.negativity
    assert fuse(VoiceEmotion("angry", scores, 1.0, 2.0, weight=0.0), None).label == ""


def test_shipped_model_has_calibrated_ood_thresholds_and_a_smooth_weight():
    model = AcousticEmotionModel()
    ood = model.meta["ood"]
    assert 0 < ood["low"] < ood["high"]
    assert model.voice_weight(ood["low"] * 0.9) == 1.0
    assert model.voice_weight(ood["high"]) == 0.0
    assert 0 < model.voice_weight((ood["low"] + ood["high"]) / 2) < 1
    # held-out human speakers in the nested evaluation: the voice rarely abstains
    assert model.meta["figures"]["ood_heldout"]["abstained"] < 0.05
    distance = model.ood_distance(extract(_voice(8000), 8000))
    assert distance is not None and distance[0] > ood["high"]  # a synthetic buzz is far from any speaker


def test_smoothing_starts_at_the_first_turn_and_moves_halfway():
    track = update(EmotionTrack(), "angry", 0.9, 0.5, None)
    assert track.negativity == 0.9
    assert update(track, "neutral", 0.1, 0.5, None).negativity == pytest.approx(0.5)


def _run(machine, turns):
    state, _ = machine.start()
    actions = []
    for emotion, negativity in turns:
        state, actions = machine.step(state, Utterance("kids are talking by the door", emotion=emotion,
                                                       negativity=negativity))
    return state, actions


def test_sustained_negative_emotion_escalates_with_its_reason():
    state, actions = _run(Machine(parse_flow(FLOW)), [("angry", 0.9), ("angry", 0.8)])
    assert state.ended and state.end_reason == "negative-emotion"
    assert isinstance(actions[-1], Transfer) and actions[-1].reason == "negative-emotion"


def test_one_angry_turn_does_not_escalate_but_shortens_the_menu():
    state, actions = _run(Machine(parse_flow(FLOW)), [("angry", 0.9)])
    assert not state.ended
    said = " ".join(a.text for a in actions if isinstance(a, Say))
    assert "I'm sorry about the trouble" in said and "lost card" not in said


def test_calm_caller_is_reprompted_not_escalated():
    state, actions = _run(Machine(parse_flow(FLOW)), [("neutral", 0.1), ("neutral", 0.2)])
    assert not state.ended and state.emotion.negative_run == 0
    assert "lost card" in " ".join(a.text for a in actions if isinstance(a, Say))


def test_turns_without_emotion_leave_the_track_alone():
    state, _ = _run(Machine(parse_flow(FLOW)), [("", 0.0), ("", 0.0)])
    assert state.emotion == EmotionTrack()


def test_escalation_setting_is_checked():
    with pytest.raises(FlowError, match="threshold"):
        parse_flow(FLOW.replace("threshold: 0.6", "threshold: 3"))
    assert parse_flow(FLOW.replace("{turns: 2, threshold: 0.6}", "null")).settings.escalate_on_negative_emotion is None


def test_training_ood_calibration_matches_what_the_shipped_model_computes():
    """The trainer's out-of-distribution statistics and thresholds, loaded into a model, give the
    same distances and voice weights at run time; synthetic voices never count as held-out speakers."""
    from dialog.emotion.acoustic import AcousticEmotionModel
    from ivr.train.emotion.train_acoustic import AUGMENT_VARIANTS, calibrate_ood, fit_ood, ood_distances

    rng = np.random.default_rng(3)
    groups = np.array([f"spk-{i % 6}" for i in range(240)] + ["synthetic-piper"] * 40)
    feats = {v: rng.normal(size=(groups.size, 12)) for v in AUGMENT_VARIANTS}
    feats["mulaw"][-40:] += 8.0  # the synthetic voice is far from everyone
    columns = np.arange(10)
    rows = np.arange(groups.size)
    ood = calibrate_ood(feats, groups, rows, columns, folds=3)
    assert ood["calibration_clips"] == 240 and 0 < ood["low"] < ood["high"]
    stats = fit_ood(feats, rows[:240], columns)
    arrays = {"columns": columns, "mean": np.zeros(10), "scale": np.ones(10), "m0_w0": np.zeros((10, 4)),
              "m0_b0": np.zeros(4), **stats}
    model = AcousticEmotionModel.from_arrays(arrays, {"labels": ["neutral", "happy", "sad", "angry"], "layers": 1,
                                                      "members": 1, "ood": ood})
    expected = ood_distances(stats, feats["mulaw"], columns)
    assert np.allclose(model.ood_distance(feats["mulaw"]), expected, atol=1e-4)
    typical = int(np.argsort(expected[:240])[120])  # the median human clip
    assert model.voice_weight(float(expected[typical])) == 1.0  # a typical human clip counts fully
    assert all(model.voice_weight(float(d)) == 0.0 for d in expected[-40:])  # the far synthetic voice abstains
