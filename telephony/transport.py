"""What carries a call's audio: the SIP bridge for real calls, WAV files for simulated ones."""

from __future__ import annotations

from abc import ABC, abstractmethod

from ivr.frame import Frame


class CallTransport(ABC):
    """The caller's side of one call, seen from the agent, one 20 ms frame at a time."""

    sample_rate_hz: int

    @abstractmethod
    def read(self, now_ms: float) -> Frame | None:
        """The caller's audio for this tick (None: silence)."""

    @abstractmethod
    def write(self, frame: Frame) -> None:
        """The agent's audio for this tick."""

    def pressed_keys(self) -> list[str]:
        """DTMF keys pressed since the last tick."""
        return []

    @property
    def caller_hung_up(self) -> bool:
        return False

    @abstractmethod
    def end(self, outcome: str, transfer_target: str = "") -> None:
        """The agent ends the call: hang up, or transfer to transfer_target."""
