"""`ivr transcribe` with the real tiny.en model on real speech from ../shared/data.

Covers: good files transcribed with the expected words while a corrupt and an empty file are
listed with reasons (exit 1); a job killed half-way and rerun ends with the same outputs as a clean
run; stereo split into caller/agent; SRT and VTT well formed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ivr.cli import main
from ivr.wer import wer
from telephony.audio.audiofile import read_audio, write_wav
from tests.transcribe_support import PROMPTS, check_srt, check_vtt, joined_recording, manifest, outputs

pytestmark = pytest.mark.models

REPO = Path(__file__).resolve().parents[1]
def test_folder_with_good_corrupt_and_empty_files(shared_data, tmp_path, capsys):
    src = tmp_path / "recordings"
    (src / "day1").mkdir(parents=True)
    texts = manifest(shared_data)
    for name in PROMPTS:
        shutil.copy(shared_data / "speech" / "ivr-prompts" / name, src / "day1" / name)
    (src / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage" * 8)
    (src / "empty.flac").write_bytes(b"")
    out = tmp_path / "out"
    prom = tmp_path / "textfile" / "ivr_transcribe.prom"
    code = main(["transcribe", str(src), "--out", str(out), "--format", "jsonl,srt,vtt,txt", "--workers", "1",
                 "--metrics-file", str(prom)])
    err = capsys.readouterr().err
    assert code == 1
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for m in text_string_to_metric_families(prom.read_text()) for s in m.samples}
    assert samples[("ivr_transcribe_files_total", (("result", "done"),))] == 5
    assert samples[("ivr_transcribe_files_total", (("result", "failed"),))] == 2
    assert samples[("ivr_transcribe_input_files", ())] == 7
    assert samples[("ivr_transcribe_audio_seconds_total", ())] > 5 and samples[("ivr_transcribe_running", ())] == 0
    assert "failed 2 of 7" in err and "corrupt.wav" in err and "empty.flac: the file is empty" in err
    summary = json.loads((out / "transcribe-summary.json").read_text())
    assert summary["done"] == 5 and {Path(f["file"]).name for f in summary["failed"]} == {"corrupt.wav", "empty.flac"}
    assert all(f["reason"] for f in summary["failed"])
    refs, hyps = [], []
    for name, word in PROMPTS.items():
        stem = out / "day1" / Path(name).stem
        text = stem.with_suffix(".txt").read_text()
        assert word in text.lower()
        refs.append(texts[name])
        hyps.append(text)
        lines = [json.loads(x) for x in stem.with_suffix(".jsonl").read_text().splitlines()]
        assert lines[0]["type"] == "file" and lines[0]["duration_s"] > 1
        words = [w for seg in lines[1:] for w in seg["words"]]
        assert words and all(0 <= w["start_s"] <= w["end_s"] <= lines[0]["duration_s"] for w in words)
        assert all(0 < w["confidence"] <= 1 for w in words)
        assert check_srt(stem.with_suffix(".srt").read_text()) == len(lines) - 1
        assert check_vtt(stem.with_suffix(".vtt").read_text()) == len(lines) - 1
    assert wer(refs, hyps) < 0.15
    assert not (out / "corrupt.jsonl").exists() and not (out / "empty.jsonl").exists()

    # A rerun skips what is done and still reports the bad files.
    assert main(["transcribe", str(src), "--out", str(out), "--workers", "1", "--format", "jsonl,srt,vtt,txt"]) == 1
    assert "done 0, skipped 5" in capsys.readouterr().err


def test_stereo_split_labels_caller_and_agent(shared_data, tmp_path):
    base = shared_data / "speech" / "ivr-prompts"
    left = read_audio(base / "agent-pass.flac").mono()
    right = read_audio(base / "conf-getchannel.flac").mono()
    n = len(left) + len(right) + 8000
    stereo = np.zeros((n, 2), np.int16)
    stereo[:len(left), 0] = left
    stereo[len(left) + 8000:, 1] = right
    write_wav(tmp_path / "call.wav", stereo, 8000)
    out = tmp_path / "out"
    assert main(["transcribe", str(tmp_path / "call.wav"), "--out", str(out), "--workers", "1",
                 "--channels", "split", "--format", "txt,jsonl"]) == 0
    segs = [json.loads(x) for x in (out / "call.jsonl").read_text().splitlines()[1:]]
    caller = " ".join(s["text"] for s in segs if s["speaker"] == "caller").lower()
    agent = " ".join(s["text"] for s in segs if s["speaker"] == "agent").lower()
    assert "password" in caller and "channel" in agent
    assert [s["start_s"] for s in segs] == sorted(s["start_s"] for s in segs)
    assert min(s["start_s"] for s in segs if s["speaker"] == "agent") > len(left) / 8000


def test_killed_job_resumes_to_the_same_outputs(shared_data, tmp_path):
    names = sorted(manifest(shared_data))
    src = tmp_path / "archive"
    src.mkdir()
    for i in range(8):  # eight ~15 s recordings
        joined_recording(shared_data, names[i * 6:(i + 1) * 6], src / f"rec{i}.wav")
    args = ["transcribe", str(src), "--format", "jsonl,srt,txt", "--workers", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "ivr", *args, "--out", str(killed)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            if list((killed / ".ivr-transcribe").glob("*.done.json")):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the job finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    first = outputs(killed)
    done_before = len([k for k in first if k.endswith(".done.json")])
    assert 1 <= done_before < 8
    for rel, data in first.items():  # whatever is there is complete
        if rel.endswith(".jsonl"):
            header = json.loads(data.decode().splitlines()[0])
            assert header["type"] == "file"
    assert main([*args, "--out", str(killed), "-q"]) == 0
    resumed = outputs(killed)
    assert not [p for p in killed.rglob("*.tmp")]
    summary = json.loads((killed / "transcribe-summary.json").read_text())
    assert summary["skipped"] == done_before and summary["done"] == 8 - done_before
    clean = tmp_path / "clean"
    assert main([*args, "--out", str(clean), "-q"]) == 0
    assert resumed.keys() == outputs(clean).keys()
    assert {k: v for k, v in resumed.items() if not k.endswith(".done.json")} == \
        {k: v for k, v in outputs(clean).items() if not k.endswith(".done.json")}


def test_transcribe_bench_prints_the_throughput_row_and_writes_json(shared_data, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["transcribe-bench", "--shared", str(shared_data.parent), "--sets", "ivr-prompts", "--archives", "1",
                 "--archive-s", "12", "--repeat", "1", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "throughput ratio (ivr transcribe / sequential)" in printed
    result = json.loads(out.read_text())
    rows = result["sets"][0]["rows"]
    assert [r["path"].split(" (")[0] for r in rows] == ["sequential faster-whisper", "ivr transcribe"]
    assert result["ratio"] == pytest.approx(rows[0]["wall_s"] / rows[1]["wall_s"], rel=0.02)
    assert all(r["wer"] < 0.25 and r["wer_min"] <= r["wer"] <= r["wer_max"] for r in rows)
