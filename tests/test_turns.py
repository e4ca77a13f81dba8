"""End-of-turn detection on real speech: onset timing, end after silence, clicks ignored, pre-roll kept."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from asr.turns import Paused, SpeechDropped, SpeechStarted, TurnConfig, TurnDetector, TurnEnded
from asr.vad import make_vad
from models.errors import AgentError
from telephony.audio.audiofile import read_audio
from telephony.audio.frame import FRAME_MS, Frame, split
from telephony.audio.resample import resample
from telephony.errors import FrameError

RATE_HZ = 16000
LEAD_MS = 1000
TAIL_MS = 1500
PROMPT = "speech/ivr-prompts/agent-pass.flac"  # "Please enter your password followed by the pound key."


def _true_bounds_ms(samples: np.ndarray, rate_hz: int) -> tuple[float, float]:
    """First and last 10 ms block whose RMS is above 5% of the loudest block: the speech itself."""
    block = rate_hz // 100
    n = samples.size // block
    rms = np.sqrt((samples[:n * block].astype(np.float64).reshape(n, block) ** 2).mean(axis=1))
    loud = np.flatnonzero(rms > 0.05 * rms.max())
    return 10.0 * loud[0], 10.0 * (loud[-1] + 1)


@pytest.fixture(scope="module")
def call_audio(shared_data):
    """(samples at 16 kHz: 1 s silence, the prompt, 1.5 s silence; true onset ms; true end ms)."""
    clip = read_audio(shared_data / PROMPT)
    speech = resample(clip.mono(), clip.sample_rate_hz, RATE_HZ)
    start_ms, end_ms = _true_bounds_ms(speech, RATE_HZ)
    samples = np.concatenate([np.zeros(LEAD_MS * RATE_HZ // 1000, dtype=np.int16), speech,
                              np.zeros(TAIL_MS * RATE_HZ // 1000, dtype=np.int16)])
    return samples, LEAD_MS + start_ms, LEAD_MS + end_ms


def run(detector: TurnDetector, samples: np.ndarray, rate_hz: int = RATE_HZ, start_ms: float = 0.0):
    """[(timestamp of the frame that raised it, event)] plus the audio fed while in_speech."""
    events, streamed = [], []
    for frame in split(samples, rate_hz, start_ms):
        for event in detector.process(frame):
            events.append((frame.timestamp_ms, event))
            if isinstance(event, SpeechStarted):
                streamed.append(event.audio)
        if detector.in_speech and not any(isinstance(e, SpeechStarted) and t == frame.timestamp_ms
                                          for t, e in events):
            streamed.append(frame.samples())
    return events, (np.concatenate(streamed) if streamed else np.zeros(0, dtype=np.int16))


@pytest.mark.parametrize("vad_name", ["webrtc", "silero"])
def test_one_turn_with_onset_near_the_true_onset_and_end_after_the_silence(call_audio, vad_name):
    samples, onset_true_ms, end_true_ms = call_audio
    config = TurnConfig()
    events, _ = run(TurnDetector(make_vad(vad_name), config, RATE_HZ), samples)
    kinds = [type(e) for _, e in events]
    assert kinds == [SpeechStarted, TurnEnded]
    (started_at, started), (ended_at, ended) = events
    assert abs(started.onset_ms - onset_true_ms) <= 100
    assert started_at - started.onset_ms <= config.start_speech_ms + 2 * FRAME_MS  # fast enough for barge-in
    assert ended.onset_ms == started.onset_ms
    assert abs(ended.end_ms - end_true_ms) <= 150  # the last word, not the VAD's hangover after it
    assert ended_at >= ended.end_ms + config.end_of_turn_silence_ms - FRAME_MS
    assert ended_at <= ended.end_ms + config.end_of_turn_silence_ms + 250  # and the VAD's own hangover
    vad_events, _ = run(TurnDetector(make_vad(vad_name), replace(config, quiet_level=0.0), RATE_HZ), samples)
    vad_end_ms = vad_events[-1][1].end_ms  # the silence counts from the VAD's end, to the frame
    assert vad_end_ms + config.end_of_turn_silence_ms - FRAME_MS <= ended_at
    assert ended_at <= vad_end_ms + config.end_of_turn_silence_ms + FRAME_MS
    assert not ended.forced


def test_a_shorter_end_of_turn_silence_answers_sooner(call_audio):
    samples, _, _ = call_audio
    config = TurnConfig(end_of_turn_silence_ms=300)
    events, _ = run(TurnDetector(make_vad("webrtc"), config, RATE_HZ), samples)
    ended_at, ended = next((t, e) for t, e in events if isinstance(e, TurnEnded))
    assert ended_at - ended.end_ms <= 300 + 250  # the silence, counted from the VAD's end (its hangover)


@pytest.mark.parametrize("noise", [0, 10])
def test_a_turn_ends_at_the_last_word_not_at_the_end_of_the_vads_hangover(call_audio, noise):
    """WebRTC calls speech for some 200 ms after the last syllable. The turn's end is stamped at the last
    word all the same (frames under `quiet_level` of the loudest are not the caller's voice), so a reply's
    wait is measured from there; when its pauses and its end come stays as the VAD hears them."""
    samples, _, end_true_ms = call_audio
    line = np.random.default_rng(7).integers(-noise, noise + 1, samples.size) if noise else 0
    samples = np.clip(samples.astype(np.int32) + line, -32768, 32767).astype(np.int16)
    heard = []
    for config in (TurnConfig(quiet_level=0.0, pause_ms=100), TurnConfig(pause_ms=100)):
        events, _ = run(TurnDetector(make_vad("webrtc"), config, RATE_HZ), samples)
        assert [type(e) for _, e in events][0] == SpeechStarted and type(events[-1][1]) is TurnEnded
        heard.append(([t for t, e in events if isinstance(e, Paused)][-1], *events[-1]))
    (vad_pause, vad_at, vad_end), (pause, at, end) = heard
    assert end_true_ms <= end.end_ms <= end_true_ms + 120 < vad_end.end_ms  # the recording's own fade-out
    assert pause == vad_pause and at == vad_at
    with pytest.raises(AgentError):
        TurnConfig(quiet_level=-0.1)


def test_pre_roll_and_streamed_audio_cover_the_whole_turn(call_audio):
    samples, _, _ = call_audio
    config = TurnConfig(pre_roll_ms=300)
    events, streamed = run(TurnDetector(make_vad("webrtc"), config, RATE_HZ), samples)
    started = next(e for _, e in events if isinstance(e, SpeechStarted))
    ended = next(e for _, e in events if isinstance(e, TurnEnded))
    first_sample = int((started.onset_ms - config.pre_roll_ms) * RATE_HZ / 1000)
    # The turn's audio starts pre_roll_ms before the onset, sample-exact, and is what was streamed.
    assert np.array_equal(ended.audio, samples[first_sample:first_sample + ended.audio.size])
    assert np.array_equal(streamed, ended.audio)
    assert started.audio.size >= (config.pre_roll_ms + config.start_speech_ms) * RATE_HZ // 1000
    assert started.sample_rate_hz == ended.sample_rate_hz == RATE_HZ


def test_a_50_ms_click_is_not_a_turn():
    rng = np.random.default_rng(7)
    silence = np.zeros(RATE_HZ, dtype=np.int16)
    click = (rng.standard_normal(RATE_HZ * 50 // 1000) * 12000).clip(-32768, 32767).astype(np.int16)
    samples = np.concatenate([silence, click, silence])
    for vad_name in ("webrtc", "silero"):
        events, _ = run(TurnDetector(make_vad(vad_name), TurnConfig(), RATE_HZ), samples)
        assert not [e for _, e in events if isinstance(e, TurnEnded)], vad_name
        if any(isinstance(e, SpeechStarted) for _, e in events):
            assert isinstance(events[-1][1], SpeechDropped)


def test_a_very_long_turn_is_cut_at_max_turn_ms(call_audio):
    samples, _, _ = call_audio
    events, _ = run(TurnDetector(make_vad("webrtc"), TurnConfig(max_turn_ms=1000), RATE_HZ), samples)
    forced = [e for _, e in events if isinstance(e, TurnEnded) and e.forced]
    assert forced and forced[0].end_ms - forced[0].onset_ms == pytest.approx(1000, abs=FRAME_MS)


def test_works_at_8_khz_and_reset_forgets_a_turn_in_progress(shared_data):
    clip = read_audio(shared_data / PROMPT)
    samples = np.concatenate([np.zeros(8000, dtype=np.int16), clip.mono(), np.zeros(8000, dtype=np.int16)])
    detector = TurnDetector(make_vad("webrtc"), TurnConfig(), 8000)
    events, _ = run(detector, samples, 8000, start_ms=5000.0)
    assert [type(e) for _, e in events] == [SpeechStarted, TurnEnded]
    assert events[0][1].onset_ms > 6000.0  # frame timestamps, not sample counts, date the onset
    half = samples[: samples.size // 2]
    run(detector, half, 8000)
    assert detector.in_speech
    detector.reset()
    assert not detector.in_speech


def test_bad_input_is_a_clear_error():
    detector = TurnDetector(make_vad("webrtc"), TurnConfig(), RATE_HZ)
    with pytest.raises(FrameError):
        detector.process(Frame.silence(8000))
    with pytest.raises(AgentError):
        TurnConfig(threshold=2.0)
