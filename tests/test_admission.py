"""Admission by measured headroom (ivr.serve.headroom): a new call is refused while the calls already up
answer too slowly or the CPU is saturated; the first call is always answered; hysteresis; old replies age out."""

from __future__ import annotations

import time

from ivr.call import events as ev
from ivr.serve.headroom import CpuMeter, Headroom, cpu_times
from ivr.serve.metrics import CallMetrics


class _Cpu(CpuMeter):
    def __init__(self) -> None:
        self.value = 0.2

    def busy(self) -> float:
        return self.value


def test_slow_replies_refuse_new_calls_until_they_are_well_under_budget():
    cpu = _Cpu()
    room = Headroom(budget_ms=1000, cpu=cpu, min_replies=3)
    assert room.refusal(live_calls=2) is None  # no replies yet: nothing says it is slow
    for ms in (600, 700, 1400, 1500):
        room.reply(ms)
    assert room.refusal(live_calls=0) is None, "a box with no call up always takes one"
    why = room.refusal(live_calls=2)
    assert why is not None and "p95" in why and "1000 ms budget" in why
    room._replies.clear()  # the slow replies are gone (as if aged out of the window)
    for _ in range(5):  # faster again, but 850 ms is not under 80% of the budget: still refusing
        room.reply(850)
    assert room.refusal(live_calls=2) is not None
    room._replies.clear()
    for _ in range(5):
        room.reply(500)
    assert room.refusal(live_calls=2) is None


def test_a_busy_cpu_refuses_and_the_budget_zero_turns_it_off():
    cpu = _Cpu()
    room = Headroom(budget_ms=1000, max_cpu=0.9, cpu=cpu)
    cpu.value = 0.97
    assert "CPU 97% busy" in (room.refusal(live_calls=1) or "")
    cpu.value = 0.85  # under the limit but not under 80% of it: hysteresis
    assert room.refusal(live_calls=1) is not None
    cpu.value = 0.5
    assert room.refusal(live_calls=1) is None
    off = Headroom(budget_ms=0, cpu=cpu)
    cpu.value = 1.0
    assert not off.enabled and off.refusal(live_calls=3) is None


def test_old_replies_age_out_of_the_window():
    room = Headroom(budget_ms=1000, cpu=_Cpu(), window_s=60, min_replies=1)
    room.reply(3000, at=time.monotonic() - 120)
    assert room.p95_ms() is None and room.refusal(live_calls=1) is None


def test_replies_are_read_from_a_calls_events():
    room = Headroom(budget_ms=1000, cpu=_Cpu(), min_replies=1)
    observer = CallMetrics(on_reply=room.reply)  # what ivr serve wires: the metrics' reply rows feed admission

    class _Log:
        def subscribe(self, listener):
            self.listener = listener

    class _Session:
        log = _Log()

    session = _Session()
    observer.call_started(session, "sip:caller@127.0.0.1")
    for event in (ev.SpeechStopped(onset_ms=0, end_ms=1000, t_ms=1300),
                  ev.Transcript(text="balance", confidence=0.9, t_ms=1400),
                  ev.DialogStep(event="intent", node="balance", t_ms=1420),
                  ev.ReplyStarted(turn_end_ms=1000, latency_ms=1800.0, t_ms=1800)):
        session.log.listener(event)
    assert room.p95_ms() == 1800.0 and room.refusal(live_calls=1) is not None
    observer.call_closed(session, None)


def test_the_cpu_meter_reads_proc_stat(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 0 100 800 0 0 0 0 0 0\n")
    assert cpu_times(str(stat)) == (200.0, 1000.0)
    samples = iter([(200.0, 1000.0), (500.0, 1400.0)])
    meter = CpuMeter(span_s=0.0, read=lambda: next(samples))
    assert meter.busy() == 0.75
    assert cpu_times(str(tmp_path / "missing")) is None
