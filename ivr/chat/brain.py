"""What every chat of a process shares: the flow's dialog machine on the text channel, the NLU and the
text emotion model, loaded once (no ASR, no TTS, no voice emotion)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from dialog.emotion.analyzer import EmotionAnalyzer
from dialog.machine import Machine
from dialog.nlu.understand import Nlu


@dataclass(frozen=True)
class ChatBrain:
    machine: Machine
    """The flow's machine with channel "text" (a node's `say_text` where it has one)."""
    nlu: Nlu | None = None
    emotion: EmotionAnalyzer | None = None
    """Used for its text model only: a chat's emotion comes from the words."""
    load_s: float = 0.0

    @classmethod
    def load(cls, flow: str | Path | None = None) -> ChatBrain:
        """The flow (`flow`, else the bundled bank flow), the shipped NLU and emotion models."""
        from dialog.flow import load_default_flow, load_flow

        t0 = time.perf_counter()
        machine = Machine(load_flow(Path(flow)) if flow else load_default_flow(), channel="text")
        nlu = Nlu.load()
        nlu.understand("hello")  # warm up before the first user
        return cls(machine, nlu, EmotionAnalyzer.load(), time.perf_counter() - t0)
