"""Where a WebRTC call finds its way through NATs: STUN and TURN servers, from the environment.

On loopback or a LAN none are needed. The same servers go to the browser (its RTCPeerConnection) and to
the agent's side, so both gather the same kinds of candidates.

  IVR_WEBRTC_STUN              STUN URLs, comma-separated (e.g. stun:stun.example.org:3478)
  IVR_WEBRTC_TURN              TURN URLs, comma-separated (e.g. turn:turn.example.org:3478?transport=udp)
  IVR_WEBRTC_TURN_USERNAME     the TURN user name
  IVR_WEBRTC_TURN_CREDENTIAL   the TURN password (never logged)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

EDGE_RATE_HZ = 48000
"""Opus in WebRTC runs at 48 kHz."""


@dataclass(frozen=True)
class IceServer:
    urls: tuple[str, ...]
    username: str = ""
    credential: str = ""

    def for_browser(self) -> dict[str, Any]:
        """As an RTCIceServer dictionary for the page's RTCPeerConnection."""
        entry: dict[str, Any] = {"urls": list(self.urls)}
        if self.username:
            entry["username"] = self.username
            entry["credential"] = self.credential
        return entry


@dataclass(frozen=True)
class WebRtcConfig:
    ice_servers: tuple[IceServer, ...] = ()
    """STUN and TURN servers; none on loopback."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WebRtcConfig:
        env = os.environ if env is None else env
        servers = []
        stun = _urls(env.get("IVR_WEBRTC_STUN", ""))
        if stun:
            servers.append(IceServer(stun))
        turn = _urls(env.get("IVR_WEBRTC_TURN", ""))
        if turn:
            servers.append(IceServer(turn, env.get("IVR_WEBRTC_TURN_USERNAME", ""),
                                     env.get("IVR_WEBRTC_TURN_CREDENTIAL", "")))
        return cls(tuple(servers))

    def for_browser(self) -> list[dict[str, Any]]:
        return [server.for_browser() for server in self.ice_servers]


def _urls(text: str) -> tuple[str, ...]:
    return tuple(url.strip() for url in text.split(",") if url.strip())
