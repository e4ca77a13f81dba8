"""The `ivr` command: bad input gets one clear line on stderr and exit status 1, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.errors import AsrError
from dialog.errors import DialogError, FlowError
from ivr.cli import error_line, main
from ivr.errors import IvrError
from models.errors import AgentError, ModelMissingError
from telephony.errors import AudioFileError, TelephonyError
from tts.errors import TtsError

REPO = Path(__file__).resolve().parents[1]


def ivr(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ivr", *args], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=600)


def one_line_error(proc: subprocess.CompletedProcess[str], part: str) -> str:
    """The one line on stderr, which names the `part` of the agent that failed."""
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"ivr: {part}: "), lines[0]
    return lines[0]


@pytest.mark.parametrize(("error", "line"), [
    (AsrError("decoder crashed"), "ivr: speech recognition: decoder crashed"),
    (TtsError("no voice"), "ivr: speech synthesis: no voice"),
    (FlowError("flow.yaml, line 2: bad"), "ivr: call flow: flow.yaml, line 2: bad"),
    (DialogError("bad FAQ file"), "ivr: dialog: bad FAQ file"),
    (AudioFileError("x.wav: empty"), "ivr: telephony: x.wav: empty"),
    (TelephonyError("port in use"), "ivr: telephony: port in use"),
    (ModelMissingError("run setup"), "ivr: model: run setup"),
    (IvrError("--repeat must be at least 1"), "ivr: error: --repeat must be at least 1"),
    (AgentError("other"), "ivr: error: other"),
])
def test_each_part_names_itself_in_the_error_line(error, line):
    assert error_line(error) == line


def test_main_prints_the_error_line_and_returns_1(monkeypatch, capsys):
    def fail(args):
        raise AsrError("decoder crashed")

    monkeypatch.setattr("ivr.cli.cmd_call", fail)
    assert main(["call", "x.wav"]) == 1
    assert capsys.readouterr().err == "ivr: speech recognition: decoder crashed\n"


def test_non_audio_file(tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("hello, this is not audio\n" * 20)
    assert "not a readable audio file" in one_line_error(ivr("call", str(bad)), "telephony")


def test_empty_file(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    assert "empty" in one_line_error(ivr("call", str(empty)), "telephony")


def test_missing_caller_file(tmp_path):
    assert "no such file" in one_line_error(ivr("call", str(tmp_path / "nope.wav")), "telephony")


def test_flow_with_unknown_state(tmp_path):
    wav = tmp_path / "x.wav"
    sf.write(wav, np.zeros(8000, dtype=np.int16), 8000)
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        "name: broken\nstart: welcome\nnodes:\n  welcome:\n    say: Hello.\n    next: nowhere\n")
    message = one_line_error(ivr("call", str(wav), "--flow", str(flow)), "call flow")
    assert "nowhere" in message


@pytest.mark.models
def test_missing_model_names_what_to_do(tmp_path):
    wav = tmp_path / "x.wav"
    sf.write(wav, np.zeros(8000, dtype=np.int16), 8000)
    message = one_line_error(ivr("call", str(wav), "--asr-model", str(tmp_path / "no-model")), "model")
    assert "no-model" in message and "tiny.en" in message


def test_bad_script(tmp_path):
    script = tmp_path / "caller.yaml"
    script.write_text("turns:\n  - sya: hello\n")
    assert "unknown key" in one_line_error(ivr("call", "--script", str(script)), "telephony")


@pytest.mark.models
def test_stereo_44k_caller_runs_a_whole_call(tmp_path, shared_data):
    """A stereo 44.1 kHz recording of a real request is handled like any other caller."""
    from telephony.audio.audiofile import read_audio
    from telephony.audio.resample import resample

    clip = read_audio(shared_data / "speech" / "fsdd" / "0_jackson_0.flac")  # "zero": talk to an agent
    mono = resample(clip.mono(), clip.sample_rate_hz, 44100)
    wav = tmp_path / "stereo.wav"
    sf.write(wav, np.stack([mono, mono], axis=1), 44100)
    out = tmp_path / "out"
    proc = ivr("call", str(wav), "--fast", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "agent:" in proc.stdout and "caller:" in proc.stdout
    assert (out / "recording.wav").exists()
