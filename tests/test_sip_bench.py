"""`ivr bench-sip` end to end, on its smallest setting: one call, then a ramp of one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sip.sipp import require_sipp

pytestmark = [pytest.mark.models, pytest.mark.sip, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]


def test_bench_sip_measures_voice_to_voice_from_the_caller_side(tmp_path):
    require_sipp()
    out = tmp_path / "bench-sip.json"
    proc = subprocess.run([sys.executable, "-m", "ivr", "bench-sip", "--calls", "1", "--ramp", "1", "--json", str(out)],
                          cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True,
                          timeout=420)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "SIP voice-to-voice (caller side)" in proc.stdout and "most concurrent calls" in proc.stdout
    report = json.loads(out.read_text())
    single = report["single"]
    assert single["completed"] == 1 and single["samples"] == 2, single
    assert 100 < single["p50_ms"] < 5000, single  # end-of-turn silence alone is 500 ms
    assert report["ramp"][0]["concurrency"] == 1
    assert report["agent_side"]["samples"] >= 2
    before, now = (report["settings"][name]["stages"] for name in ("before: silence, no cache", "now: ahead, presynth"))
    assert "per stage" in proc.stdout and "end_of_turn" in proc.stdout and "transport" in proc.stdout
    for stages in (before, now):
        assert {"end_of_turn", "asr", "nlu", "tts", "total", "transport"} <= set(stages), stages
    assert before["end_of_turn"]["p50"] >= 480  # the old agent waited out 500 ms of silence
    assert now["end_of_turn"]["p50"] <= before["end_of_turn"]["p50"] + 40
