"""Diarization of a conversation built from real speech (TESS: an older and a younger woman taking turns,
known turn boundaries): the torch-free MFCC backend's DER, the pyannote backend's where it is installed (a
venv of its own), and the DER computation itself."""

from __future__ import annotations

import pytest

from asr.diarize import Segment, diarization_error_rate, load_diarizer
from models.errors import AgentError
from tests.diarization_support import RATE_HZ, conversation


def test_der_counts_miss_false_alarm_and_confusion_with_a_collar():
    ref = [Segment(0.0, 10.0, "A"), Segment(10.0, 20.0, "B")]
    assert diarization_error_rate(ref, [Segment(0, 10, "x"), Segment(10, 20, "y")]).der == 0.0
    swapped = diarization_error_rate(ref, [Segment(0, 20, "x")])  # B called A: 10 s, less 0.25 s at each end
    assert swapped.confusion_s == pytest.approx(9.5, abs=0.02) and swapped.missed_s == 0.0
    half = diarization_error_rate(ref, [Segment(0, 10, "x")], collar_s=0.0)
    assert half.der == pytest.approx(0.5, abs=0.01) and half.missed_s == pytest.approx(10.0, abs=0.02)
    extra = diarization_error_rate([Segment(0, 10, "A")], [Segment(0, 15, "x")], collar_s=0.0)
    assert extra.false_alarm_s == pytest.approx(5.0, abs=0.02)


def test_mfcc_diarizer_on_two_real_speakers(shared_data):
    audio, reference = conversation(shared_data)
    hypothesis = load_diarizer("auto").diarize(audio, RATE_HZ, num_speakers=2)
    result = diarization_error_rate(reference, hypothesis, collar_s=0.25)
    print(f"DER {result.der:.3f} (missed {result.missed_s:.2f} s, false alarm {result.false_alarm_s:.2f} s, "
          f"confusion {result.confusion_s:.2f} s of {result.total_s:.1f} s speech)")
    assert result.der < 0.10
    assert len({s.speaker for s in hypothesis}) == 2


def test_pyannote_backend_says_what_it_lacks(tmp_path, monkeypatch):
    from asr.diarize.pyannote_backend import SEGMENTATION_ENV, installed

    monkeypatch.delenv(SEGMENTATION_ENV, raising=False)
    if not installed():  # the project's own .venv and CI: no torch
        with pytest.raises(AgentError, match=r"not installed.*pip install -e '\.\[pyannote\]'"):
            load_diarizer("pyannote")
        return
    with pytest.raises(AgentError, match="needs the segmentation-3.0 checkpoint: set IVR_PYANNOTE_SEGMENTATION"):
        load_diarizer("pyannote")
    with pytest.raises(AgentError, match="checkpoint not found"):
        load_diarizer("pyannote", tmp_path)


@pytest.mark.models
@pytest.mark.slow
def test_pyannote_diarizer_on_two_real_speakers(shared_data):
    from asr.diarize.pyannote_backend import installed

    if not installed():
        pytest.skip("pyannote.audio is not installed: it needs torch 2.9.1 (an 8 GB venv, ~15 min to install), so "
                    "it is kept out of .venv and CI; pip install -e '.[pyannote]' in a venv of its own (README)")
    checkpoint = shared_data.parent / "models" / "pyannote-segmentation-3.0"
    if not checkpoint.is_dir():
        pytest.skip(f"no segmentation-3.0 checkpoint at {checkpoint}")
    audio, reference = conversation(shared_data, turns=6)
    hypothesis = load_diarizer("pyannote", checkpoint).diarize(audio, RATE_HZ, num_speakers=2)
    result = diarization_error_rate(reference, hypothesis, collar_s=0.25)
    print(f"pyannote DER {result.der:.3f} (missed {result.missed_s:.2f} s, false alarm {result.false_alarm_s:.2f} s, "
          f"confusion {result.confusion_s:.2f} s of {result.total_s:.1f} s speech)")
    assert result.der < 0.10
    assert len({s.speaker for s in hypothesis}) == 2


def test_long_recordings_cluster_a_spread_of_windows_and_stay_accurate(shared_data, monkeypatch):
    from asr.diarize import mfcc

    audio, reference = conversation(shared_data)
    monkeypatch.setattr(mfcc, "MAX_CLUSTER_WINDOWS", 40)  # as if the recording were hours long
    hypothesis = load_diarizer("auto").diarize(audio, RATE_HZ, num_speakers=2)
    result = diarization_error_rate(reference, hypothesis, collar_s=0.25)
    print(f"DER {result.der:.3f} with 40 clustered windows")
    assert result.der < 0.10
    assert len({s.speaker for s in hypothesis}) == 2
