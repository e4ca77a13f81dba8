"""One browser's peer connection (aiortc), on the asyncio loop that answered its offer.

Signalling is one exchange: the page gathers its ICE candidates and sends the whole offer; `answer` gathers
ours (aiortc gathers in setLocalDescription) and returns the whole answer, so no trickle ICE is needed. The
agent's voice goes out on `track`; the caller's audio comes in through `on_audio`; the page's JSON messages
(keys, hang-up) through `on_message`; `send` (from any thread) queues a JSON message to the page on the data
channel the page opened. `on_closed(reason)` is called once when the connection ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from telephony.webrtc import OfferError
from telephony.webrtc.config import WebRtcConfig
from telephony.webrtc.media import AgentTrack, receive_audio

log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 4096
"""A message from the page longer than this is ignored."""
ENDED_STATES = ("failed", "closed")


def rtc_configuration(config: WebRtcConfig) -> RTCConfiguration:
    return RTCConfiguration(iceServers=[RTCIceServer(urls=list(s.urls), username=s.username or None,
                                                     credential=s.credential or None)
                                        for s in config.ice_servers])


class WebRtcPeer:
    def __init__(self, config: WebRtcConfig) -> None:
        self.pc = RTCPeerConnection(rtc_configuration(config))
        self.track = AgentTrack()
        self.on_audio: Callable[[bytes, int], None] = lambda pcm, rate: None
        self.on_message: Callable[[dict[str, Any]], None] = lambda message: None
        self.on_closed: Callable[[str], None] = lambda reason: None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._channel: Any = None
        self._pending: list[str] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self.connected = threading.Event()
        """Set once the connection is up (ICE and DTLS done): the caller can hear the agent from then on."""

    async def answer(self, sdp: str, kind: str = "offer") -> tuple[str, str]:
        """The answer (sdp, type) to the browser's complete offer, with all our candidates in it."""
        if kind != "offer" or not sdp:
            raise OfferError("expected a WebRTC offer")
        self._loop = asyncio.get_running_loop()
        pc = self.pc
        pc.on("track", self._on_track)
        pc.on("datachannel", self._on_channel)
        pc.on("connectionstatechange", self._on_state)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
        except Exception as exc:  # noqa: BLE001 - aiortc's SDP parser raises what it meets (ValueError, assert)
            raise OfferError(f"the offer cannot be used ({type(exc).__name__})") from None
        if not any(t.kind == "audio" for t in pc.getTransceivers()):
            raise OfferError("the offer has no audio")
        pc.addTrack(self.track)
        await pc.setLocalDescription(await pc.createAnswer())
        local = pc.localDescription
        return local.sdp, local.type

    # ---- from any thread ---------------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        """Queue a JSON message to the page (dropped once the connection is closed)."""
        loop = self._loop
        if loop is None or self._closed:
            return
        text = json.dumps(message)
        with contextlib.suppress(RuntimeError):  # the loop has stopped: the page is gone anyway
            loop.call_soon_threadsafe(self._send_now, text)

    def close(self) -> Future[None] | None:
        """Close the connection (from a thread other than the loop's)."""
        if self._loop is None or self._loop.is_closed():
            return None
        try:
            return asyncio.run_coroutine_threadsafe(self.aclose(), self._loop)
        except RuntimeError:
            return None

    async def aclose(self) -> None:
        self.track.stop()
        await self.pc.close()
        self._ended("closed")

    # ---- on the loop -------------------------------------------------------------------------------

    def _send_now(self, text: str) -> None:
        channel = self._channel
        if channel is not None and channel.readyState == "open":
            channel.send(text)
        elif not self._closed:
            self._pending.append(text)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind != "audio":
            return
        receive_audio(track, lambda pcm, rate: self.on_audio(pcm, rate), self._tasks)

    def _on_channel(self, channel: Any) -> None:
        self._channel = channel

        @channel.on("message")
        def on_message(data: Any) -> None:
            if not isinstance(data, str) or len(data) > MAX_MESSAGE_CHARS:
                return
            try:
                message = json.loads(data)
            except ValueError:
                return
            if isinstance(message, dict):
                self.on_message(message)

        @channel.on("open")
        def on_open() -> None:
            self._flush()

        if channel.readyState == "open":
            self._flush()

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        for text in pending:
            self._send_now(text)

    async def _on_state(self) -> None:
        state = self.pc.connectionState
        log.debug("peer connection %s", state)
        if state == "connected":
            self.connected.set()
        if state in ENDED_STATES:
            self._ended(f"connection {state}")

    def _ended(self, reason: str) -> None:
        if not self._closed:
            self._closed = True
            self.on_closed(reason)
