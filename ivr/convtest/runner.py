"""Runs scenarios as whole simulated calls: the same CallSession and virtual clock as `ivr call --fast`.

The models load once (the caller's Services) and serve every scenario; a scenario with its own flow
gets the same services with that flow's state machine. Each call's caller is a ReactiveCaller whose
voice and line the scenario sets.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dialog.flow import Choice
from dialog.machine import Machine
from ivr.call.services import Services
from ivr.convtest.caller import ReactiveCaller
from ivr.convtest.expect import Check, Happened, check, happened
from ivr.convtest.scenario import FlowCatalog, Scenario, ScenarioError, VoiceSpec
from ivr.convtest.voices import CallerVoices
from ivr.simulate import simulate_call
from models.errors import AgentError
from telephony.audio.audiofile import read_audio
from telephony.audio.resample import resample
from telephony.line import LineSpec, apply_line
from telephony.wavfile import CallerTurn
from tts.base import SpeechAudio, Synthesizer
from tts.cache import PromptCache

log = logging.getLogger(__name__)


@dataclass
class ScenarioResult:
    scenario: Scenario
    checks: list[Check] = field(default_factory=list)
    facts: Happened | None = None
    error: str = ""
    """Why the call could not be run (then it counts as failed)."""
    wall_s: float = 0.0
    call_ms: float = 0.0
    """The call's length on its own (virtual) clock."""

    @property
    def passed(self) -> bool:
        return not self.error and all(c.ok for c in self.checks)

    def failures(self) -> list[str]:
        if self.error:
            return [f"error: {self.error}"]
        return [c.describe() for c in self.checks if not c.ok]


class SuiteRunner:
    def __init__(self, services: Services, catalog: FlowCatalog, voices: CallerVoices,
                 line_cache: Path, out_dir: Path | None = None) -> None:
        """`line_cache`: where wav turns are kept after their trip through a scenario's line."""
        self._services = services
        self._catalog = catalog
        self._voices = voices
        self._line_cache = PromptCache(line_cache)
        self._out_dir = out_dir
        self._by_flow: dict[str, Services] = {}
        self._lock = threading.Lock()

    def prepare(self, scenarios: list[Scenario]) -> None:
        """Loads every voice the suite uses, so a voice that does not exist stops the run before any call."""
        for voice in dict.fromkeys(s.voice for s in scenarios):
            try:
                self._voices.check(voice)
            except AgentError as exc:
                users = [str(s.path) for s in scenarios if s.voice == voice]
                raise ScenarioError(f"{users[0]}: caller: {exc}") from None

    def run_all(self, scenarios: list[Scenario], jobs: int = 1,
                on_result: Callable[[ScenarioResult], None] | None = None) -> list[ScenarioResult]:
        """Results in the order of `scenarios`; `on_result` sees each as soon as it is done."""
        def one(scenario: Scenario) -> ScenarioResult:
            result = self.run(scenario)
            if on_result is not None:
                with self._lock:
                    on_result(result)
            return result

        if jobs <= 1:
            return [one(s) for s in scenarios]
        with ThreadPoolExecutor(jobs, thread_name_prefix="convtest") as pool:
            return list(pool.map(one, scenarios))

    def run(self, scenario: Scenario) -> ScenarioResult:
        t0 = time.perf_counter()
        try:
            services = self._services_for(scenario.flow)
            flow = services.machine.flow
            rate = services.config.call.sample_rate_hz
            turns = [(self._line_wav(t.turn, scenario.line, rate), t) for t in scenario.turns]
            caller = ReactiveCaller(turns, scenario.react, rate, self._speaker(scenario.voice, scenario.line),
                                    lambda about: {c.goto for c in _all_choices(services) if c.label == about},
                                    expected_slots=dict(scenario.expect.slots or ()))
            out = self._out_dir / scenario.slug if self._out_dir is not None else None
            call = simulate_call(services, caller=caller, out_dir=out, fast=True, listener=caller.on_event)
            facts = happened(call.events, caller.turns_played(), flow)
            result = ScenarioResult(scenario, check(scenario.expect, facts), facts, call_ms=call.result.duration_ms)
            if out is not None:
                (out / "convtest.json").write_text(json.dumps(
                    {"name": scenario.name, "passed": result.passed, "failures": result.failures(),
                     **facts.as_dict(), "turns": [t.as_dict() for t in facts.turns]}, indent=2, ensure_ascii=False),
                    encoding="utf-8")
        except AgentError as exc:
            result = ScenarioResult(scenario, error=str(exc))
        except Exception as exc:  # one broken call must not stop the suite; the report says what broke
            log.error("scenario %s crashed:\n%s", scenario.path, traceback.format_exc())
            result = ScenarioResult(scenario, error=f"{type(exc).__name__}: {exc}")
        result.wall_s = time.perf_counter() - t0
        return result

    def _services_for(self, flow_key: str) -> Services:
        with self._lock:
            if flow_key not in self._by_flow:
                flow = self._catalog.flow(flow_key)
                base = self._services
                same = base.machine.flow == flow
                self._by_flow[flow_key] = base if same else dataclasses.replace(base, machine=Machine(flow))
            return self._by_flow[flow_key]

    def _speaker(self, voice: VoiceSpec, line: LineSpec | None) -> Callable[[str, int], np.ndarray]:
        def speak(text: str, rate_hz: int) -> np.ndarray:
            audio = self._voices.speak(voice, text, rate_hz)
            return audio if line is None else apply_line(audio, rate_hz, line, salt=text)
        return speak

    def _line_wav(self, turn: CallerTurn, line: LineSpec | None, rate_hz: int) -> CallerTurn:
        """A wav turn's recording as heard over the line (a cached copy); other turns as they are."""
        if not turn.wav or line is None:
            return turn
        source = Path(turn.wav)
        stat = source.stat()
        key = PromptCache.key("line", json.dumps(dataclasses.asdict(line), sort_keys=True),
                              f"{source.resolve()}:{stat.st_size}:{stat.st_mtime_ns}", rate_hz)
        path = self._line_cache.path(key)
        if not path.exists():
            clip = read_audio(source)
            samples = resample(clip.mono(), clip.sample_rate_hz, rate_hz)
            self._line_cache.put(key, SpeechAudio(apply_line(samples, rate_hz, line, salt=source.name), rate_hz))
        return dataclasses.replace(turn, wav=str(path))


def _all_choices(services: Services) -> list[Choice]:
    flow = services.machine.flow
    return [c for node in flow.nodes.values() for c in node.expect] + list(flow.global_choices)


def run_suite(services: Services, suite: str | Path, cache_dir: Path | None, jobs: int = 1,
              on_result: Callable[[ScenarioResult], None] | None = None) -> list[ScenarioResult]:
    """Every scenario of `suite` on already loaded services (what `ivr bench` uses); ScenarioError for a
    bad suite file."""
    import tempfile

    from ivr.convtest.scenario import load_suite

    catalog = FlowCatalog()
    scenarios = load_suite(suite, flows=catalog)
    with tempfile.TemporaryDirectory(prefix="ivr-test-") as tmp:
        runner = SuiteRunner(services, catalog, CallerVoices(cache_dir, agent_piper(services)),
                             (cache_dir or Path(tmp)) / "line")
        runner.prepare(scenarios)
        return runner.run_all(scenarios, jobs, on_result)


def agent_piper(services: Services) -> Synthesizer | None:
    """The agent's own Piper voice when it is the default one (callers with `voice: piper` share it)."""
    if services.config.tts_engine != "piper" or services.config.tts_voice:
        return None
    inner: Synthesizer = getattr(services.synthesizer, "inner", services.synthesizer)
    return inner
