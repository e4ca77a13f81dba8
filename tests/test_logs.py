"""`ivr --log-format json`: one JSON object per line with time, level, logger, call id and event; text stays
the default."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading

from ivr.logs import configure
from ivr.serve.children import Child


def _lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line]


def test_json_lines_carry_the_call_id_of_the_calls_thread(capsys):
    configure(verbose=True, fmt="json")
    try:
        log = logging.getLogger("ivr.serve.runner")
        worker = threading.Thread(target=lambda: log.info("call %s: answering", "c0ffee"), name="call-c0ffee")
        worker.start()
        worker.join()
        log.warning("refused: %s", "full", extra={"call_id": "beef"})
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("posted work failed")
        log.debug("not at INFO")
        records = [json.loads(line) for line in _lines(capsys)]
    finally:
        configure(verbose=False, fmt="text")
    assert len(records) == 3
    first, second, third = records
    assert first["call_id"] == "c0ffee" and first["level"] == "info" and first["logger"] == "ivr.serve.runner"
    assert first["event"] == "call %s: answering" and first["msg"] == "call c0ffee: answering"
    assert first["ts"].endswith("+00:00")
    assert second["call_id"] == "beef" and second["level"] == "warning"
    assert "call_id" not in third and "ValueError: boom" in third["exc"]


def test_text_is_the_default_and_a_dying_thread_is_logged(capsys, monkeypatch):
    monkeypatch.delenv("IVR_LOG_FORMAT", raising=False)
    configure(verbose=False)
    dying = threading.Thread(target=lambda: 1 / 0, name="lane")
    dying.start()
    dying.join()
    lines = _lines(capsys)
    assert any("ERROR ivr: thread lane died" in line for line in lines), lines
    assert not any(line.startswith("{") for line in lines)


def test_the_supervisor_keeps_a_workers_json_lines_json():
    child = Child("worker 1", [sys.executable, "-c", "pass"])
    record = json.loads(child.marked('{"level": "info", "event": "x"}\n'))
    assert record == {"level": "info", "event": "x", "process": "worker 1"}
    assert child.marked("plain\n") == "[worker 1] plain\n"


def test_the_cli_takes_the_flag():
    out = subprocess.run([sys.executable, "-m", "ivr", "--log-format", "json", "store", "--help"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
