"""What carries a call's audio: the SIP line for real calls (`telephony.sip.transport`), WAV files and
scripts for simulated ones (`telephony.wavfile`). The one driver loop (`ivr.call.driver`) runs every
call through this interface, so a simulation exercises what a real call does."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass

from telephony.audio.frame import Frame


@dataclass(frozen=True)
class KeyPress:
    digit: str
    method: str = ""
    """How the key reached the line (rfc4733, sip-info, inband); "" for a simulated caller."""


@dataclass(frozen=True)
class LineEnd:
    """The line closed under the call: the caller hung up, the agent's side hung up, or it went silent."""

    outcome: str
    """"caller-hangup", "agent-hangup" or "rtp-timeout"."""
    reason: str = ""
    silent_s: float = 0.0
    """For "rtp-timeout": how long no audio came."""


class CallTransport(ABC):
    """The caller's side of one call, seen from the agent, one 20 ms frame at a time."""

    sample_rate_hz: int
    paces_itself = False
    """True when `read` waits for the caller's next frame (a media clock): the driver then never sleeps."""

    @abstractmethod
    def read(self, now_ms: float) -> Frame | None:
        """The caller's audio for this tick (None: silence)."""

    @abstractmethod
    def write(self, frame: Frame) -> None:
        """The agent's audio for this tick."""

    def pressed_keys(self) -> list[str]:
        """DTMF keys pressed since the last tick."""
        return []

    def key_presses(self) -> list[KeyPress]:
        """The keys pressed since the last tick, with how each arrived."""
        return [KeyPress(digit) for digit in self.pressed_keys()]

    @property
    def caller_hung_up(self) -> bool:
        return False

    def line_end(self) -> LineEnd | None:
        """Why the line closed, or None while it is open."""
        return LineEnd("caller-hangup") if self.caller_hung_up else None

    @abstractmethod
    def end(self, outcome: str, transfer_target: str = "") -> None:
        """The agent ends the call: hang up, or transfer to transfer_target."""


class LiveTransport(CallTransport):
    """A live caller's line (SIP, WebRTC): keys and the hang-up arrive from another thread (the SIP thread,
    aiortc's event loop), `read` waits for the line's next frame, and the runner that owns the line carries
    out the end itself (a BYE or a transfer, or closing the peer connection)."""

    paces_itself = True

    def __init__(self) -> None:
        self._keys: deque[KeyPress] = deque()
        self.hung_up = threading.Event()
        """The line is closed: the caller hung up, or it was closed under the call."""

    def _press(self, key: KeyPress) -> None:
        """From the line's thread: a key the caller pressed."""
        self._keys.append(key)

    def key_presses(self) -> list[KeyPress]:
        keys = []
        while self._keys:
            keys.append(self._keys.popleft())
        return keys

    @property
    def caller_hung_up(self) -> bool:
        return self.hung_up.is_set()

    def end(self, outcome: str, transfer_target: str = "") -> None:
        """The runner carries out the end itself: see ivr.serve.runner (BYE, or a transfer) and
        ivr.webcall.runner (it closes the peer connection)."""
