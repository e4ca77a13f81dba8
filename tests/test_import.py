"""`ivr import`: a stereo recording takes speakers from its channels, a mono one is diarized; both are
transcribed (Whisper tiny.en) and stored like a live call (redacted, encrypted, searchable)."""

from __future__ import annotations

import numpy as np
import pytest

from ivr.importer import import_recording, speaker_segments
from ivr.store import CallFilter, Store
from telephony.audio.audiofile import write_wav
from tests.diarization_support import RATE_HZ, conversation
from tests.fakes import CannedRecognizer
from tests.test_store_support import store_config

COUNTING = CannedRecognizer("piece of {seconds:.1f} seconds account 12345678")
"""Says how long each piece is, so turns can be checked without a model."""


def _stereo(shared_data, tmp_path):
    audio, reference = conversation(shared_data, turns=4)
    left = np.zeros_like(audio)
    right = np.zeros_like(audio)
    for seg in reference:  # first speaker on the right (the agent), the other on the left (the caller)
        target = right if seg.speaker == reference[0].speaker else left
        a, b = int(seg.start_s * RATE_HZ), int(seg.end_s * RATE_HZ)
        target[a:b] = audio[a:b]
    return write_wav(tmp_path / "stereo.wav", np.stack([left, right], axis=1), RATE_HZ), reference


def test_stereo_takes_speakers_from_channels(shared_data, tmp_path):
    path, reference = _stereo(shared_data, tmp_path)
    from telephony.audio.audiofile import read_audio

    clip = read_audio(path)
    segments, how = speaker_segments(clip.samples, clip.sample_rate_hz, None)
    assert how == "channels"
    assert [s.speaker for s in segments] == ["agent", "caller", "agent", "caller"]
    for seg, ref in zip(segments, reference, strict=True):
        assert abs(seg.start_s - ref.start_s) < 0.3


def test_mono_import_is_diarized_and_stored(shared_data, tmp_path):
    audio, reference = conversation(shared_data, turns=12)
    path = write_wav(tmp_path / "mono.wav", audio, RATE_HZ)
    store = Store(store_config(tmp_path))
    try:
        call_id, how, turns = import_recording(store, path, COUNTING)
        assert how == "mfcc" and turns == 12
        call = store.get_call(call_id)
        assert [t["speaker"] for t in call["turns"]] == ["agent", "caller"] * 6
        for turn, ref in zip(call["turns"], reference, strict=True):
            assert abs(turn["start_ms"] / 1000 - ref.start_s) < 0.5
        assert all("12345678" not in t["text"] for t in call["turns"])  # redacted like a live call
        assert call["source"] == "import" and call["outcome"] == "imported"
        assert call["recordings"][0]["encrypted"] is True and store.read_recording(call_id)[:4] == b"RIFF"
        assert [c["id"] for c in store.list_calls(CallFilter(text="piece"))] == [call_id]
        again, _, _ = import_recording(store, path, COUNTING)
        assert again == call_id and store.count_calls() == 1  # importing again replaces the call
    finally:
        store.close()


def _call_recording(shared_data, tmp_path):
    """A stereo call recorded at a desk (its date in the file name): the agent (right) speaks TESS utterances,
    the caller (left, espeak-ng) asks about a lost card, then says they are angry."""
    import shutil

    import librosa

    from telephony.audio.resample import resample

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng; scripts/setup.sh does)")
    from tts.espeak import EspeakSynthesizer

    voice = EspeakSynthesizer()
    agent = [librosa.load(p, sr=RATE_HZ)[0] for p in sorted((shared_data / "emotion/tess/OAF").glob("*neutral*"))[:2]]
    caller = [resample(a.samples, a.sample_rate_hz, RATE_HZ).astype(np.float32) / 32768
              for a in map(voice.synthesize, ("I lost my card.", "I am really angry, this is the third time."))]
    left, right, gap = [np.zeros(RATE_HZ // 2)], [np.zeros(RATE_HZ // 2)], np.zeros(int(0.7 * RATE_HZ))
    for said, heard in zip(agent, caller, strict=True):
        right += [said, np.zeros(len(heard)), gap, gap]
        left += [np.zeros(len(said)), heard, gap, gap]
    return write_wav(tmp_path / "desk-20260304-050607.wav",
                     np.stack([np.concatenate(left), np.concatenate(right)], axis=1), RATE_HZ)


@pytest.mark.models
def test_ivr_import_transcribes_and_reads_emotion_and_intent_like_a_live_call(shared_data, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from ivr.console.app import create_app
    from ivr.console.auth import Users
    from tests.console_client import PASSWORD, login

    path = _call_recording(shared_data, tmp_path)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "IVR_RECORDING_KEY": "00" * 32}
    done = subprocess.run([sys.executable, "-m", "ivr", "import", str(path), "--db", f"sqlite:///{tmp_path}/i.db",
                           "--data-dir", str(tmp_path / "data")], capture_output=True, text=True, env=env,
                          cwd=Path(__file__).resolve().parents[1], timeout=300)
    assert done.returncode == 0, done.stderr
    assert "speakers from channels; emotion from voice and words, intent from intent model" in done.stdout
    store = Store.open(f"sqlite:///{tmp_path}/i.db", tmp_path / "data")
    try:
        (listed,) = store.list_calls(CallFilter())
        call = store.get_call(listed["id"])
        assert call["started_at"].strftime("%Y-%m-%d %H:%M:%S") == "2026-03-04 05:06:07"  # the recording's
        agent = [t for t in call["turns"] if t["speaker"] == "agent"]
        caller = [t for t in call["turns"] if t["speaker"] == "caller"]
        assert "say the word" in " ".join(t["text"].lower() for t in agent)  # TESS: "Say the word ..."
        assert not any(t["emotion"] or t["intent"] for t in agent)  # the agent's turns are not the caller's
        assert "lost my card" in caller[0]["text"].lower() and caller[0]["intent"] == "lost_card"
        assert "angry" in caller[1]["text"].lower() and caller[1]["emotion"] == "angry"
        assert all(t["emotion_scores"] for t in caller)
        assert (listed["intent"], listed["emotion"]) == ("lost_card", "angry")  # the call list's columns
        Users(store).add("sam", "supervisor", PASSWORD)
        client, _ = login(create_app(store), "sam")
        page = client.get(f"/calls/{call['id']}").text
        assert 'id="intent">lost_card<' in page and 'id="emotion-plot"' in page and "without" not in page
    finally:
        store.close()
