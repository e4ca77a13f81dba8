"""Frames, G.711, resampling and audio files: what the rest of the call relies on."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from telephony.audio import g711
from telephony.audio.audiofile import read_audio, write_wav
from telephony.audio.frame import Frame, FrameBuffer, check_same_rate, join, split
from telephony.audio.resample import Resampler, resample
from telephony.errors import AudioFileError, FrameError


def tone(freq_hz: float, rate_hz: int, seconds: float = 0.5, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate_hz * seconds)) / rate_hz
    return (amp * 32767 * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16)


def dominant_hz(samples: np.ndarray, rate_hz: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate_hz)[np.argmax(spectrum)])


def test_frame_states_its_rate_and_duration():
    f = Frame.silence(8000)
    assert f.num_samples == 160 and f.duration_ms == 20.0
    with pytest.raises(FrameError):
        Frame(b"\x00\x01\x02", 8000)


def test_mixed_rates_raise():
    with pytest.raises(FrameError, match="mixed sample rates"):
        check_same_rate([Frame.silence(8000), Frame.silence(16000)])
    with pytest.raises(FrameError):
        join([Frame.silence(8000), Frame.silence(16000)])


def test_split_and_join_round_trip_with_padding():
    x = tone(440, 8000, 0.05)
    frames = split(x, 8000)
    assert [f.timestamp_ms for f in frames] == [0, 20, 40]
    y = join(frames)
    assert np.array_equal(y[:x.size], x) and not y[x.size:].any()


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_g711_round_trip_keeps_speech_quality(codec):
    x = tone(1000, 8000, 1.0, 0.3)
    y = g711.roundtrip(x, codec)
    snr_db = 10 * np.log10(np.sum(x.astype(float) ** 2) / np.sum((x.astype(float) - y) ** 2))
    assert snr_db > 30  # G.711 gives about 38 dB on a loud tone
    assert len(g711.CODECS[codec][0](x)) == x.size  # one byte per sample


def test_g711_known_codes():
    assert g711.mulaw_encode(np.array([0], np.int16)) == b"\xff"
    assert g711.alaw_encode(np.array([0], np.int16)) == b"\xd5"
    assert g711.mulaw_decode(b"\x00")[0] == -32124
    assert g711.alaw_decode(b"\x80")[0] == -g711.alaw_decode(b"\x00")[0]
    every = bytes(range(256))
    assert g711.alaw_encode(g711.alaw_decode(every)) == every


@pytest.mark.parametrize(("src", "dst"), [(8000, 16000), (16000, 8000), (22050, 8000), (48000, 16000)])
def test_resample_keeps_pitch_and_length(src, dst):
    x = tone(440, src, 1.0)
    y = resample(x, src, dst)
    assert y.dtype == np.int16 and abs(y.size - dst) <= 2
    assert abs(dominant_hz(y, dst) - 440) < 3


def test_streaming_resampler_matches_rate_and_buffer_gives_exact_frames():
    r = Resampler(8000, 16000)
    buf = FrameBuffer(16000)
    for f in split(tone(300, 8000, 1.0), 8000):
        buf.push(r.process(f).samples())
    buf.push(r.flush())
    frames = []
    while (f := buf.pop()) is not None:
        frames.append(f)
    assert all(f.num_samples == 320 for f in frames)
    assert abs(len(frames) - 50) <= 1
    with pytest.raises(FrameError):
        r.process(Frame.silence(16000))


def test_read_audio_any_format_and_channels(tmp_path):
    stereo = np.stack([tone(440, 44100), tone(880, 44100)], axis=1)
    p = tmp_path / "s.flac"
    sf.write(p, stereo, 44100)
    clip = read_audio(p)
    assert clip.channels == 2 and clip.sample_rate_hz == 44100
    assert clip.mono().ndim == 1 and clip.mono().size == stereo.shape[0]
    w = write_wav(tmp_path / "m.wav", tone(440, 8000), 8000)
    assert read_audio(w).channels == 1


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty"),
    (b"this is a text file, not audio\n" * 10, "not a readable audio file"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", "not a readable audio file"),
])
def test_bad_files_give_one_clear_error(tmp_path, content, message):
    p = tmp_path / "bad.wav"
    p.write_bytes(content)
    with pytest.raises(AudioFileError, match=message) as err:
        read_audio(p)
    assert "\n" not in str(err.value) and str(p) in str(err.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(AudioFileError, match="no such file"):
        read_audio(tmp_path / "nope.wav")
    with pytest.raises(AudioFileError, match="directory"):
        read_audio(tmp_path)


def test_the_call_recording_keeps_every_tick_and_is_readable_while_the_call_goes_on(tmp_path):
    """Caller left, agent right, sample for sample (a short agent frame padded with silence), and the file
    on disk already holds all but about the last second while the call is still up (a crash loses no more)."""
    from telephony.audio.recorder import SYNC_EVERY_MS, StereoRecorder

    rate = 8000
    rng = np.random.default_rng(7)
    recorder = StereoRecorder(tmp_path / "recording.wav", rate)
    callers, agents = [], []
    ticks = 2 * SYNC_EVERY_MS // 20 + 10
    for i in range(ticks):
        caller = rng.integers(-3000, 3000, 160).astype(np.int16)
        agent = rng.integers(-3000, 3000, 80 if i == 5 else 160).astype(np.int16)
        recorder.write(Frame.from_samples(caller, rate, i * 20), Frame.from_samples(agent, rate, i * 20))
        callers.append(caller)
        agents.append(np.concatenate([agent, np.zeros(160 - agent.size, np.int16)]))
    so_far, _ = sf.read(tmp_path / "recording.wav", dtype="int16")
    assert so_far.shape[0] >= (ticks * 20 - SYNC_EVERY_MS - 20) * rate // 1000
    assert np.array_equal(so_far[:, 0], np.concatenate(callers)[:so_far.shape[0]])
    recorder.close()
    data, got_rate = sf.read(tmp_path / "recording.wav", dtype="int16")
    assert got_rate == rate and data.shape == (ticks * 160, 2)
    assert np.array_equal(data[:, 0], np.concatenate(callers))
    assert np.array_equal(data[:, 1], np.concatenate(agents))
    assert recorder.duration_ms == ticks * 20
