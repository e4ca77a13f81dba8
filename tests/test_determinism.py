"""The same input gives the same result in every run: resampling, end of turn, Piper speech,
`ivr call --fast` and `ivr transcribe`.

What used to differ between runs of the same caller script:
- soxr's int16 stream dithered, with a new dither sequence per stream: up to 43% of samples +-2;
- without dither, soxr's single-precision stream still rounded differently depending on where the
  audio fell in the stream (the caller's turn starts after as much silence as compute time left);
- the turn detector picked its pre-roll by frame timestamps, which jump with the resampler's blocks;
- Piper drew its voice noise from onnxruntime's generator, seeded from the time once per process and
  advanced by every sentence.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soxr

from asr.turns import TurnConfig, TurnDetector, TurnEnded
from asr.vad import make_vad
from telephony.audio.frame import Frame, samples_per_frame
from telephony.audio.pcm import to_int16
from telephony.audio.resample import STREAM_QUALITY, Resampler, resample

REPO = Path(__file__).resolve().parents[1]

TIMING_FIELDS = {"t_ms", "onset_ms", "end_ms", "stopped_ms", "reaction_ms", "latency_ms", "turn_end_ms", "early"}
"""Fields that depend on how fast the machine ran the models (`early`: whether the decode made at a pause
was in before the silence timeout; --fast pays real compute time)."""
"""Event fields that carry call time: on the virtual clock compute time is paid in full, so they move
with the machine's load. Everything else in events.jsonl must be the same in every run."""


def speech_like(rate_hz: int, seconds: float = 1.5, seed: int = 7) -> np.ndarray:
    """A voiced, noisy, loudness-varying int16 signal (no silence, so dither would show everywhere)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate_hz * seconds)) / rate_hz
    voiced = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((140, 280, 420, 900, 2300), 1))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 3.0 * t)
    signal = 6000 * envelope * voiced + 800 * rng.standard_normal(t.size)
    return np.clip(np.round(signal), -32768, 32767).astype(np.int16)


def stream(resampler: Resampler, samples: np.ndarray) -> np.ndarray:
    """Feed 20 ms frames through the resampler; all output including the flush."""
    return streams([resampler], samples)[0]


def streams(resamplers: list[Resampler], samples: np.ndarray) -> list[np.ndarray]:
    """Feed the same 20 ms frames to each resampler in turn (all alive at once, like the streams of
    concurrent calls); each one's output including the flush."""
    rate = resamplers[0].from_rate_hz
    n = samples_per_frame(rate)
    outs: list[list[np.ndarray]] = [[] for _ in resamplers]
    for i in range(0, samples.size - samples.size % n, n):
        frame = Frame.from_samples(samples[i:i + n], rate, 1000.0 * i / rate)
        for out, resampler in zip(outs, resamplers, strict=True):
            out.append(resampler.process(frame).samples())
    return [np.concatenate([*out, r.flush()]) for out, r in zip(outs, resamplers, strict=True)]


@pytest.mark.parametrize(("src", "dst"), [(8000, 16000), (16000, 8000), (22050, 16000)])
def test_fresh_resamplers_give_identical_output(src, dst):
    samples = speech_like(src)
    first, *others = streams([Resampler(src, dst) for _ in range(3)], samples)
    assert first.dtype == np.int16
    assert abs(first.size - samples.size * dst / src) <= 2
    for other in others:
        changed = np.count_nonzero(first != other)
        assert changed == 0, f"{changed} of {first.size} samples differ between two resamplers"


@pytest.mark.parametrize(("src", "dst"), [(8000, 16000), (16000, 8000), (22050, 16000)])
def test_resampler_output_does_not_depend_on_where_the_audio_starts(src, dst):
    """In a call the caller's turn starts after as much silence as the models' compute time left: the
    same audio after any whole number of silent frames must give the same samples."""
    samples = speech_like(src, seconds=4.0)
    n_in, n_out = samples_per_frame(src), samples_per_frame(dst)
    reference = stream(Resampler(src, dst), samples)
    for lead in (1, 7, 50, 133):
        shifted = stream(Resampler(src, dst), np.concatenate([np.zeros(lead * n_in, np.int16), samples]))
        shifted = shifted[lead * n_out:]
        k = min(reference.size, shifted.size)
        changed = np.count_nonzero(reference[:k] != shifted[:k])
        assert changed == 0, f"{changed} of {k} samples differ after {lead} silent frames"


def test_stream_resampler_is_soxr_rounded_without_dither_like_one_shot():
    """The stream is soxr's float output with the one-shot's rounding (half to even, clipped)."""
    samples = speech_like(8000)
    expected = soxr.ResampleStream(8000, 16000, 1, dtype="float64", quality=STREAM_QUALITY)
    n = samples_per_frame(8000)
    floats = [expected.resample_chunk(samples[i:i + n] / 32768.0) for i in range(0, samples.size, n)]
    floats.append(expected.resample_chunk(np.zeros(0, dtype=np.float64), last=True))
    assert np.array_equal(stream(Resampler(8000, 16000), samples), to_int16(np.concatenate(floats)))
    one_shot = soxr.resample(samples.astype(np.float32) / 32768.0, 8000, 16000, quality="HQ")
    assert np.array_equal(resample(samples, 8000, 16000), to_int16(one_shot))
    halves = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 40000.0, -40000.0]) / 32768.0
    rounded = np.array([0, 2, 2, 0, -2, 32767, -32768], dtype=np.int16)
    assert np.array_equal(to_int16(halves), rounded)
    assert np.array_equal(to_int16(halves.astype(np.float32)), rounded)


def test_a_turn_is_the_same_audio_whatever_the_frame_times():
    """Frames from the inbound resampler come in blocks, so their timestamps jump by up to ~100 ms,
    in a pattern that depends on where the turn starts in the stream. The pre-roll and the turn audio
    (what Whisper and the emotion model get) must not depend on those times, only on the frames."""
    speech = speech_like(16000, seconds=1.2)

    def turn_audio(lead_frames: int, stamp) -> np.ndarray:
        samples = np.concatenate([np.zeros(320 * lead_frames, np.int16), speech, np.zeros(16000, np.int16)])
        detector = TurnDetector(make_vad("webrtc"), TurnConfig(), 16000)
        for i in range(samples.size // 320):
            for event in detector.process(Frame.from_samples(samples[320 * i:320 * (i + 1)], 16000, stamp(i))):
                if isinstance(event, TurnEnded):
                    return event.audio
        raise AssertionError("no turn")

    def regular(i: int) -> float:
        return 20.0 * i

    def in_blocks(i: int) -> float:
        return 20.0 * i + (0.0, 35.0, 70.0, 105.0, 17.5)[i // 5 % 5] - 3.5 * (i % 5)

    reference = turn_audio(50, regular)
    for lead in range(50, 56):
        audio = turn_audio(lead, in_blocks)
        assert audio.size == reference.size and np.array_equal(audio, reference), f"{lead} frames of silence first"


def test_seeded_noise_graph_tiles_and_cuts_to_the_requested_shape():
    """A RandomNormalLike node, rewritten, takes its noise from the new input: cut when longer, tiled
    when shorter, and the same feed gives the same output."""
    import onnxruntime
    from onnx import TensorProto, helper

    from tts.piper_noise import noise_feeds, seed_noise_inputs

    graph = helper.make_graph(
        [helper.make_node("RandomNormalLike", ["x"], ["noise"], dtype=TensorProto.FLOAT),
         helper.make_node("Add", ["x", "noise"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "t"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, "t"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    inputs = seed_noise_inputs(model)
    assert [i.name for i in inputs] == ["seeded_noise_0"]
    assert not [n for n in model.graph.node if n.op_type == "RandomNormalLike"]
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    noise = np.arange(4 * 5, dtype=np.float32).reshape(1, 4, 5)
    x = np.zeros((1, 3, 12), dtype=np.float32)
    (y,) = session.run(None, {"x": x, "seeded_noise_0": noise})
    assert y.shape == (1, 3, 12)
    assert np.array_equal(y, np.tile(noise, (1, 1, 3))[:, :3, :12])
    scales = np.array([0.667, 1.0, 0.8], dtype=np.float32)
    feeds = noise_feeds(inputs, [1, 5, 9], scales, None)
    assert np.array_equal(feeds["seeded_noise_0"], noise_feeds(inputs, [1, 5, 9], scales, None)["seeded_noise_0"])
    assert not np.array_equal(feeds["seeded_noise_0"], noise_feeds(inputs, [1, 5, 8], scales, None)["seeded_noise_0"])


# ---- with the real models ------------------------------------------------------------------------

PIPER_SCRIPT = """
import hashlib, sys
from tts.piper_tts import PiperSynthesizer
print(hashlib.sha256(PiperSynthesizer().synthesize(sys.argv[1]).samples.tobytes()).hexdigest())
"""


def digest(samples: np.ndarray) -> str:
    return hashlib.sha256(samples.astype("<i2").tobytes()).hexdigest()


@pytest.mark.models
def test_piper_speaks_a_text_the_same_in_every_run_and_order():
    from tts.piper_tts import PiperSynthesizer

    text = "Your account number is 4 8 1 5 1 6. Is that right?"
    voice = PiperSynthesizer()
    first = voice.synthesize(text).samples
    voice.synthesize("Please hold while I connect you to one of our agents.")
    assert digest(voice.synthesize(text).samples) == digest(first), "same voice, later sentence"
    assert digest(PiperSynthesizer().synthesize(text).samples) == digest(first), "another voice instance"
    other = subprocess.run([sys.executable, "-c", PIPER_SCRIPT, text], cwd=REPO, capture_output=True, text=True,
                           timeout=120, env={**_env(), "PYTHONPATH": str(REPO)})
    assert other.returncode == 0, other.stderr
    assert other.stdout.strip() == digest(first), "another process"


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1"}


CALLER_SCRIPT = """\
turns:
  - say: "What is my account balance?"
  - say: "No, that's all, thank you."
"""


def run_call(tmp_path: Path, name: str, script: Path) -> Path:
    """`ivr call --fast` in its own process (as a user runs it), with its own empty prompt cache."""
    out = tmp_path / name
    config = tmp_path / f"{name}.yaml"
    config.write_text(f"tts_cache_dir: {tmp_path / (name + '-prompts')}\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "ivr", "call", "--script", str(script), "--fast", "--out", str(out),
                           "--config", str(config), "--no-store", "-q"],
                          cwd=REPO, capture_output=True, text=True, timeout=300, env=_env())
    assert proc.returncode == 0, proc.stderr
    return out


def untimed_events(out: Path) -> list[dict]:
    events = [json.loads(line) for line in (out / "events.jsonl").read_text(encoding="utf-8").splitlines()]
    return [{k: v for k, v in e.items() if k not in TIMING_FIELDS and k != "call_id"} for e in events]


def untimed_transcript(out: Path) -> list[dict]:
    lines = json.loads((out / "transcript.json").read_text(encoding="utf-8"))
    return [{k: v for k, v in line.items() if k not in ("start_ms", "end_ms")} for line in lines]


@pytest.mark.models
def test_ivr_call_fast_twice_gives_the_same_call(tmp_path):
    script = tmp_path / "caller.yaml"
    script.write_text(CALLER_SCRIPT, encoding="utf-8")
    first, second = run_call(tmp_path, "run1", script), run_call(tmp_path, "run2", script)

    nodes = [e["node"] for e in untimed_events(first) if e["type"] == "dialog"]
    assert nodes == [e["node"] for e in untimed_events(second) if e["type"] == "dialog"]
    assert "balance" in nodes
    assert untimed_transcript(first) == untimed_transcript(second)
    assert untimed_events(first) == untimed_events(second)
    summaries = [json.loads((out / "summary.json").read_text(encoding="utf-8")) for out in (first, second)]
    for key in ("outcome", "reason", "transfer_target", "barge_ins"):
        assert summaries[0][key] == summaries[1][key], key
    assert summaries[0]["outcome"] == "completed"


def all_files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.mark.models
def test_ivr_transcribe_twice_gives_byte_identical_outputs(shared_data, tmp_path):
    """Every file in --out, the job summary included, is the same bytes for the same inputs."""
    from ivr.cli import main

    src = tmp_path / "recordings"
    src.mkdir()
    for name in ("agent-pass.flac", "auth-incorrect.flac", "basic-pbx-ivr-main.flac"):
        shutil.copy(shared_data / "speech" / "ivr-prompts" / name, src / name)
    args = ["transcribe", str(src), "--format", "jsonl,srt,vtt,txt", "--workers", "1", "--diarize", "--emotion", "-q"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    assert main([*args, "--out", str(tmp_path / "two")]) == 0
    one, two = all_files(tmp_path / "one"), all_files(tmp_path / "two")
    assert len(one) == 3 * 5 + 1  # 4 formats and a done marker per file, and the summary
    assert one.keys() == two.keys()
    assert [name for name in one if one[name] != two[name]] == []
    assert b"password" in one["agent-pass.txt"].lower()
