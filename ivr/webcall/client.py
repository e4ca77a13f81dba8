"""A WebRTC caller in Python (aiortc), for the web channel's benchmark and tests: it speaks PCM turns into
the call, hears the agent, and notes when each of its utterances ended and when the agent's audio arrived,
as the SIP bench does from the phone's side."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from av import AudioFrame

from telephony.audio.frame import split
from telephony.audio.resample import resample
from telephony.webrtc.config import EDGE_RATE_HZ
from telephony.webrtc.media import AgentTrack, receive_audio

SPEECH_RMS = 500.0
"""A frame of the agent's audio is speech when its RMS crosses this (int16 scale), as in bench-sip."""

Answerer = Callable[[str, str], Awaitable[dict[str, Any]]]
"""(offer sdp, type) -> {"sdp", "type", ...}: the console's offer endpoint, or WebCalls.start directly."""


class CallerVoice(AgentTrack):
    """The caller's microphone: queued utterances, silence between them; notes when each utterance's last
    frame left."""

    def __init__(self) -> None:
        super().__init__()
        self._ends: list[int] = []
        self.spoke_until: list[float] = []
        """time.monotonic() when each utterance's last frame was handed to the encoder."""

    def say(self, samples: np.ndarray, rate_hz: int) -> None:
        frames = split(resample(samples, rate_hz, EDGE_RATE_HZ), EDGE_RATE_HZ)
        self._ends.append(self.frames_sent + self.queued + len(frames))
        for frame in frames:
            self.push(frame.pcm)

    async def recv(self) -> AudioFrame:
        frame = await super().recv()
        if self._ends and self.frames_sent >= self._ends[0]:
            self._ends.pop(0)
            self.spoke_until.append(time.monotonic())
        return frame


class WebCaller:
    def __init__(self) -> None:
        self.pc = RTCPeerConnection()
        self.voice = CallerVoice()
        self.channel = self.pc.createDataChannel("events")
        self.messages: list[dict[str, Any]] = []
        self.heard: list[tuple[float, float]] = []
        """(time.monotonic() at arrival, RMS) of each 20 ms frame of the agent's audio."""
        self.agent_pcm: list[bytes] = []
        """The agent's audio as received: 48 kHz PCM16 mono."""
        self.bye = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    async def call(self, answer: Answerer) -> dict[str, Any]:
        pc = self.pc
        pc.addTrack(self.voice)
        pc.on("track", self._on_track)
        self.channel.on("message", self._on_message)
        await pc.setLocalDescription(await pc.createOffer())
        result = await answer(pc.localDescription.sdp, pc.localDescription.type)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=result["sdp"], type=result["type"]))
        return result

    def press(self, key: str) -> None:
        self.channel.send(json.dumps({"type": "key", "key": key}))

    def hang_up(self) -> None:
        if self.channel.readyState == "open":
            self.channel.send(json.dumps({"type": "hangup"}))

    async def close(self) -> None:
        self.voice.stop()
        await self.pc.close()

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("type") == kind]

    async def wait_for(self, done: Callable[[], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    def first_speech_after(self, t: float) -> float | None:
        """When the first frame of agent speech arrived after monotonic time t."""
        return next((at for at, rms in self.heard if at > t and rms >= SPEECH_RMS), None)

    async def until_quiet(self, quiet_s: float, timeout_s: float, since: float = 0.0) -> bool:
        """Wait until the agent has spoken after `since` and then been quiet for quiet_s."""
        def quiet() -> bool:
            spoken = [at for at, rms in self.heard if at > since and rms >= SPEECH_RMS]
            return bool(spoken) and time.monotonic() - spoken[-1] >= quiet_s
        return await self.wait_for(quiet, timeout_s)

    def _on_message(self, data: Any) -> None:
        if isinstance(data, str):
            message = json.loads(data)
            self.messages.append(message)
            if message.get("type") == "bye":
                self.bye.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        receive_audio(track, self._heard, self._tasks)

    def _heard(self, pcm: bytes, rate_hz: int) -> None:
        """A frame of the agent's audio, as it arrives (48 kHz PCM16 mono)."""
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
        self.heard.append((time.monotonic(), float(np.sqrt(np.mean(samples ** 2))) if samples.size else 0.0))
        self.agent_pcm.append(pcm)
