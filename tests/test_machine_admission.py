"""Machine-wide admission by measured headroom (ivr.infer.admission): the limit on a machine's calls that
its callers' waits teach it, and the shared inference service that keeps it for every worker."""

from __future__ import annotations

import time

import pytest

from ivr.infer.admission import Admission
from ivr.infer.client import InferenceClient
from tests.fakes import canned_inference

BUDGET_MS = 1000.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _admission(clock: Clock, **kwargs) -> Admission:
    return Admission(start_calls=2, window_s=30.0, min_replies=3, grow_s=10.0, clock=clock, **kwargs)


def test_a_burst_of_calls_is_held_at_the_limit_before_any_caller_has_waited():
    """24 calls in a few seconds, no reply heard yet: the machine takes its starting few, refuses the rest."""
    clock = Clock()
    admission = _admission(clock)
    answers = []
    for i in range(24):
        clock.now += 1.0
        answers.append(admission.admit(f"call-{i}", "worker", BUDGET_MS))
    assert answers[:2] == [None, None]
    assert all(why is not None and "limit" in why for why in answers[2:])
    assert admission.state()["calls"] == 2 and admission.state()["refused"] == 22


def test_the_limit_grows_while_callers_are_answered_in_time_and_falls_when_they_are_not():
    clock = Clock()
    admission = _admission(clock)
    assert admission.admit("a", "w", BUDGET_MS) is None and admission.admit("b", "w", BUDGET_MS) is None
    for ms in (700, 750, 720):  # healthy: under 0.8 of the budget
        admission.reply(ms)
    clock.now = 11.0
    assert admission.admit("c", "w", BUDGET_MS) is None  # at the limit, fast replies, settled: one more
    assert admission.limit == 3
    assert admission.admit("d", "w", BUDGET_MS) is not None  # but not two at once
    clock.now = 22.0
    assert admission.admit("d", "w", BUDGET_MS) is None and admission.limit == 4
    for ms in (1500, 1600, 1700, 1800):  # now the callers wait too long
        admission.reply(ms)
    clock.now = 33.0
    why = admission.admit("e", "w", BUDGET_MS)
    assert why is not None and "over the 1000 ms budget" in why
    assert admission.limit == 3  # one fewer than are up
    admission.release("a")
    admission.release("b")
    clock.now = 70.0  # the slow replies have left the window, nobody has spoken since
    assert admission.admit("e", "w", BUDGET_MS) is None  # 2 up, limit 3


def test_an_idle_machine_takes_a_call_whatever_its_last_callers_waited():
    clock = Clock()
    admission = _admission(clock)
    for ms in (5000, 5000, 5000):
        admission.reply(ms)
    assert admission.admit("first", "w", BUDGET_MS) is None
    assert admission.admit("second", "w", BUDGET_MS) is not None


def test_a_worker_that_goes_away_takes_its_calls_with_it_and_a_fixed_ceiling_holds():
    clock = Clock()
    admission = _admission(clock, max_calls=2)
    assert admission.admit("x1", "worker-1", BUDGET_MS) is None
    assert admission.admit("x2", "worker-2", BUDGET_MS) is None
    assert admission.admit("x1", "worker-1", BUDGET_MS) is None  # asked again: still the same one call
    assert admission.drop_worker("worker-1") == 1
    assert admission.state()["calls"] == 1
    for ms in (100, 100, 100):
        admission.reply(ms)
    clock.now = 50.0
    assert admission.admit("x3", "worker-2", BUDGET_MS) is None
    assert admission.admit("x4", "worker-2", BUDGET_MS) is not None and admission.limit == 2  # the ceiling


# ---- the service keeps it for every worker of the machine ---------------------------------------------

@pytest.fixture
def service(tmp_path):
    with canned_inference(tmp_path / "infer.sock", "hello", threads=1, admission=Admission(start_calls=3)) as service:
        yield service


def _calls_up(client: InferenceClient, n: int) -> bool:
    """Whether the machine counts `n` calls up within a second (a worker's notes travel on its own
    connection, so another worker's next request may overtake them)."""
    for _ in range(50):
        if client.call("stats")["admission"]["calls"] == n:
            return True
        time.sleep(0.02)
    return False


def test_two_workers_share_the_machine_limit_and_a_gone_worker_frees_its_places(service):
    first, second = InferenceClient(service.path), InferenceClient(service.path)
    first.connect()
    second.connect()
    assert first.admit("1-a", BUDGET_MS) is None
    assert second.admit("2-a", BUDGET_MS) is None
    assert first.admit("1-b", BUDGET_MS) is None
    why = second.admit("2-b", BUDGET_MS)  # the machine is full, though this worker holds only one call
    assert why is not None and "3 calls up" in why
    first.tell("release", "1-a")
    assert _calls_up(second, 2)
    assert second.admit("2-b", BUDGET_MS) is None
    first.close()  # worker 1 dies with "1-b" up
    assert _calls_up(second, 2)
    assert second.admit("2-c", BUDGET_MS) is None


def test_a_worker_answers_its_calls_when_the_service_cannot_be_asked(tmp_path):
    client = InferenceClient(tmp_path / "none.sock")
    assert client.admit("lonely", BUDGET_MS) is None
    client.tell("release", "lonely")  # and a note to nobody is no error
