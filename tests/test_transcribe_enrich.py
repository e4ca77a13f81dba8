"""`ivr transcribe --diarize` and `--emotion` on real speech (tiny.en, the shipped emotion models).

- A two-speaker conversation (TESS: an older and a younger woman taking turns, known turn times)
  recorded as one 8 kHz mono file: the words come back with the right speaker, and the same file
  transcribed without --diarize first is redone (not skipped) when --diarize is asked.
- A recording of RAVDESS actor 03 (held out of the acoustic model's training) saying the same two
  sentences angrily and calmly: the angry segments come back angry, the calm ones not; on a
  two-worker local Dask cluster the outputs are the same as in one process.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from asr.base import Word
from ivr.cli import main
from ivr.transcribe.engine import Segment
from ivr.transcribe.enrich import relabel
from telephony.audio.audiofile import read_audio, write_wav
from telephony.audio.resample import resample
from tests.diarization_support import RATE_HZ, conversation

pytestmark = pytest.mark.models

ANGRY = ("03-01-05-02-01-01-03.flac", "03-01-05-02-02-01-03.flac")
CALM = ("03-01-02-01-01-01-03.flac", "03-01-02-01-02-01-03.flac")


def segments(jsonl: Path) -> list[dict]:
    return [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()[1:]]


def test_words_are_split_where_the_speaker_changes():
    words = (Word("hello", 0.0, 0.4, 0.9), Word("there", 0.5, 0.9, 0.8), Word("hi", 1.4, 1.6, 0.7),
             Word("back", 1.65, 1.7, 0.6))
    turns = [(0.0, 1.0, "spk_b"), (1.3, 2.0, "spk_a")]
    out = relabel([Segment(0.0, 1.7, "hello there hi back", 0.75, words)], turns)
    assert [(s.speaker, s.text) for s in out] == [("S1", "hello there"), ("S2", "hi back")]
    assert out[0].confidence == pytest.approx(0.85) and out[1].start_s == 1.4
    # a word between turns goes to the nearest one
    gap = relabel([Segment(1.1, 1.2, "um", 0.5, (Word("um", 1.1, 1.2, 0.5),))], turns)
    assert gap[0].speaker == "S1" and gap[0].text == "um"


def test_diarize_gives_each_word_its_speaker(shared_data, tmp_path):
    audio, reference = conversation(shared_data)
    wav = tmp_path / "calls" / "conversation.wav"
    wav.parent.mkdir()
    write_wav(wav, resample((audio * 32767).astype(np.int16), RATE_HZ, 8000), 8000)
    out = tmp_path / "out"
    assert main(["transcribe", str(wav.parent), "--out", str(out), "-q"]) == 0
    assert all(s["speaker"] is None for s in segments(out / "conversation.jsonl"))

    assert main(["transcribe", str(wav.parent), "--out", str(out), "--diarize", "-q"]) == 0
    found = segments(out / "conversation.jsonl")
    assert {s["speaker"] for s in found} == {"S1", "S2"}
    words = [(w, s["speaker"]) for s in found for w in s["words"]]
    assert sum("word" in w["text"].lower() for w, _ in words) >= 20  # TESS: "Say the word ..."
    pairs = []
    for word, speaker in words:
        middle = (word["start_s"] + word["end_s"]) / 2
        truth = [r.speaker for r in reference if r.start_s - 0.3 <= middle <= r.end_s + 0.3]
        if len(set(truth)) == 1:
            pairs.append((truth[0], speaker))
    mapping = {hyp: max({"OAF", "YAF"}, key=lambda ref: sum(p == (ref, hyp) for p in pairs))
               for hyp in ("S1", "S2")}
    assert set(mapping.values()) == {"OAF", "YAF"}
    right = sum(mapping[hyp] == ref for ref, hyp in pairs)
    print(f"{right} of {len(pairs)} words with the right speaker")
    assert len(pairs) >= 60 and right / len(pairs) >= 0.9
    txt = (out / "conversation.txt").read_text(encoding="utf-8").splitlines()
    assert txt and all(line.startswith(("S1: ", "S2: ")) for line in txt)


def _emotion_recording(shared_data: Path, path: Path) -> list[tuple[str, float, float]]:
    """Angry, calm, angry, calm takes with 1.5 s pauses at 8 kHz, the two sentences alternating; returns
    (kind, start_s, end_s)."""
    folder = shared_data / "emotion" / "ravdess" / "Actor_03"
    pieces, spans, t = [np.zeros(8000, np.int16)], [], 1.0
    for kind, name in (("angry", ANGRY[0]), ("calm", CALM[1]), ("angry", ANGRY[1]), ("calm", CALM[0])):
        clip = read_audio(folder / name)
        samples = resample(clip.mono(), clip.sample_rate_hz, 8000)
        pieces += [samples, np.zeros(12000, np.int16)]
        spans.append((kind, t, t + samples.size / 8000))
        t += (samples.size + 12000) / 8000
    write_wav(path, np.concatenate(pieces), 8000)
    return spans


def test_emotion_per_segment_and_same_on_dask(shared_data, tmp_path):
    wav = tmp_path / "in" / "actor03.wav"
    wav.parent.mkdir()
    spans = _emotion_recording(shared_data, wav)
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["transcribe", str(wav.parent), "--out", str(one), "--emotion", "--format", "jsonl,txt",
                 "--workers", "1", "-q"]) == 0
    found = segments(one / "actor03.jsonl")
    by_kind: dict[str, list[dict]] = {"angry": [], "calm": []}
    for kind, start, end in spans:
        inside = [s for s in found if start - 0.3 <= (s["start_s"] + s["end_s"]) / 2 <= end + 0.3]
        assert inside, (kind, start, end, found)
        by_kind[kind] += [s["emotion"] for s in inside]
    print({k: [(e["label"], e["negativity"]) for e in v] for k, v in by_kind.items()})
    assert all(e["label"] == "angry" and e["negativity"] >= 0.5 for e in by_kind["angry"])
    assert all(e["label"] != "angry" and e["negativity"] < 0.5 for e in by_kind["calm"])
    assert all(set(e) == {"label", "negativity", "voice", "text"} for v in by_kind.values() for e in v)
    assert any(line.startswith("[angry ") for line in (one / "actor03.txt").read_text().splitlines())

    assert main(["transcribe", str(wav.parent), "--out", str(two), "--emotion", "--format", "jsonl,txt",
                 "--workers", "2", "-q"]) == 0
    for name in ("actor03.jsonl", "actor03.txt"):
        assert (two / name).read_bytes() == (one / name).read_bytes()


def test_emotion_per_channel_of_a_stereo_call(shared_data, tmp_path):
    """--channels split --emotion: each segment's voice is taken from its own channel (the angry caller
    on the left, a calm agent on the right, talking at different times)."""
    folder = shared_data / "emotion" / "ravdess" / "Actor_03"
    angry, calm = (read_audio(folder / name) for name in (ANGRY[0], CALM[1]))
    angry_8k = resample(angry.mono(), angry.sample_rate_hz, 8000)
    calm_8k = resample(calm.mono(), calm.sample_rate_hz, 8000)
    gap = np.zeros(8000, np.int16)
    left = np.concatenate([gap, angry_8k, gap, np.zeros(calm_8k.size, np.int16), gap])
    right = np.concatenate([gap, np.zeros(angry_8k.size, np.int16), gap, calm_8k, gap])
    wav = tmp_path / "in" / "call.wav"
    wav.parent.mkdir()
    write_wav(wav, np.stack([left, right], axis=1), 8000)
    out = tmp_path / "out"
    assert main(["transcribe", str(wav.parent), "--out", str(out), "--channels", "split", "--emotion",
                 "--workers", "1", "-q"]) == 0
    found = segments(out / "call.jsonl")
    by_speaker = {s["speaker"]: s["emotion"] for s in found}
    assert set(by_speaker) == {"caller", "agent"}, found
    assert by_speaker["caller"]["label"] == "angry" and by_speaker["caller"]["voice"] == "angry"
    assert by_speaker["agent"]["label"] != "angry" and by_speaker["agent"]["negativity"] < 0.5
