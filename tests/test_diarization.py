"""Diarization of a conversation built from real speech (TESS: an older and a younger woman taking turns,
known turn boundaries): the torch-free MFCC backend's DER, and the DER computation itself."""

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


def test_pyannote_backend_says_why_it_cannot_run():
    with pytest.raises(AgentError, match="torchaudio"):
        load_diarizer("pyannote")


def test_long_recordings_cluster_a_spread_of_windows_and_stay_accurate(shared_data, monkeypatch):
    from asr.diarize import mfcc

    audio, reference = conversation(shared_data)
    monkeypatch.setattr(mfcc, "MAX_CLUSTER_WINDOWS", 40)  # as if the recording were hours long
    hypothesis = load_diarizer("auto").diarize(audio, RATE_HZ, num_speakers=2)
    result = diarization_error_rate(reference, hypothesis, collar_s=0.25)
    print(f"DER {result.der:.3f} with 40 clustered windows")
    assert result.der < 0.10
    assert len({s.speaker for s in hypothesis}) == 2
