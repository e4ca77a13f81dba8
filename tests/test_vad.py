"""Voice activity detection on real speech padded with silence, at 8 kHz and at 16 kHz."""

from __future__ import annotations

import numpy as np
import pytest

from asr.vad import SileroVad, WebRtcVad, make_vad
from models.errors import AgentError
from telephony.audio.audiofile import read_audio
from telephony.audio.frame import FRAME_MS, split
from telephony.audio.resample import resample

PAD_S = 1.0
PROMPT = "speech/ivr-prompts/agent-pass.flac"  # "Please enter your password followed by the pound key."


@pytest.fixture(scope="module")
def padded_8k(shared_data):
    clip = read_audio(shared_data / PROMPT)
    assert clip.sample_rate_hz == 8000
    silence = np.zeros(int(PAD_S * 8000), dtype=np.int16)
    return np.concatenate([silence, clip.mono(), silence])


def _speech_flags(vad, samples, rate_hz):
    return np.array([vad.speech_probability(f.pcm, rate_hz) >= 0.5 for f in split(samples, rate_hz)])


@pytest.mark.parametrize("rate_hz", [8000, 16000])
@pytest.mark.parametrize("name", ["webrtc", "silero"])
def test_vad_finds_speech_inside_and_none_in_the_silence(padded_8k, name, rate_hz):
    samples = resample(padded_8k, 8000, rate_hz)
    flags = _speech_flags(make_vad(name), samples, rate_hz)
    pad_frames = int(PAD_S * 1000 / FRAME_MS)
    lead, speech, tail = flags[:pad_frames], flags[pad_frames:-pad_frames], flags[-pad_frames + 10:]
    assert not lead.any(), f"{name} heard speech in the leading silence"
    assert not tail.any(), f"{name} heard speech in the trailing silence"
    assert speech.mean() > 0.6, f"{name} found speech in only {speech.mean():.0%} of the prompt"


def test_silero_buffers_20_ms_frames_and_reset_forgets(padded_8k):
    vad = SileroVad()
    frames = split(resample(padded_8k, 8000, 16000), 16000)
    probs = [vad.speech_probability(f.pcm, 16000) for f in frames]
    assert all(0.0 <= p <= 1.0 for p in probs)
    speech_at = next(i for i, p in enumerate(probs) if p >= 0.5)
    vad.reset()
    # After a reset the first frame has no complete 512-sample window yet.
    assert vad.speech_probability(frames[speech_at].pcm, 16000) == 0.0


def test_webrtc_gives_hard_decisions():
    vad = WebRtcVad(aggressiveness=3)
    assert vad.speech_probability(bytes(320), 8000) == 0.0


def test_unknown_vad_or_rate_is_a_clear_error():
    with pytest.raises(AgentError, match="webrtc, silero"):
        make_vad("nonsense")
    with pytest.raises(AgentError, match="resample"):
        WebRtcVad().speech_probability(bytes(2 * 441 * 2), 44100)
    with pytest.raises(AgentError, match="resample"):
        SileroVad().speech_probability(bytes(2 * 441 * 2), 44100)
