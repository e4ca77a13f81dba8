"""Writes the caller's side of a call as a pcap of RTP/UDP/IPv4/Ethernet packets, for sipp's
`play_pcap_audio`: G.711 audio (PCMU, 20 ms packets) with RFC 4733 telephone-events, one SSRC."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from telephony.audio.g711 import mulaw_encode

RATE_HZ = 8000
PACKET_SAMPLES = 160
PT_PCMU = 0
PT_EVENT = 101
EVENT_CODES = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}
_ETH = bytes(6) + bytes([2, 0, 0, 0, 0, 1]) + b"\x08\x00"


@dataclass
class RtpPacket:
    time_s: float
    payload_type: int
    seq: int
    timestamp: int
    marker: bool
    payload: bytes


def _ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _frame(rtp: bytes, src_port: int = 40000, dst_port: int = 40002) -> bytes:
    udp = struct.pack("!HHHH", src_port, dst_port, 8 + len(rtp), 0) + rtp
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                     bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
    ip = ip[:10] + struct.pack("!H", _ip_checksum(ip)) + ip[12:]
    return _ETH + ip + udp


class CallerTrack:
    """The caller's RTP stream, built in time order: audio, silence, key presses."""

    def __init__(self, ssrc: int = 0x1234ABCD) -> None:
        self.ssrc = ssrc
        self.packets: list[RtpPacket] = []
        self._seq = 1000
        self._samples = 0  # RTP timestamp of the next audio packet
        self._marker = True

    @property
    def time_s(self) -> float:
        return self._samples / RATE_HZ

    def audio(self, samples: np.ndarray) -> None:
        """int16 8 kHz samples, padded to whole 20 ms packets."""
        pad = (-samples.size) % PACKET_SAMPLES
        data = mulaw_encode(np.concatenate([samples.astype(np.int16), np.zeros(pad, np.int16)]))
        for i in range(0, len(data), PACKET_SAMPLES):
            self._add(PT_PCMU, self._marker, data[i:i + PACKET_SAMPLES], self._samples)
            self._marker = False
            self._samples += PACKET_SAMPLES

    def silence(self, duration_s: float) -> None:
        self.audio(np.zeros(int(duration_s * RATE_HZ), np.int16))

    def key(self, digit: str, duration_ms: int = 160) -> None:
        """An RFC 4733 event for `digit` (in place of audio for duration_ms), then 40 ms of silence."""
        code = EVENT_CODES[digit]
        start = self._samples
        steps = duration_ms // 20
        for i in range(1, steps + 1):
            self._add(PT_EVENT, i == 1, struct.pack("!BBH", code, 10, i * PACKET_SAMPLES), start,
                      at_samples=start + (i - 1) * PACKET_SAMPLES)
        for _ in range(3):  # the end packet, sent three times (RFC 4733 2.5.1.4)
            self._add(PT_EVENT, False, struct.pack("!BBH", code, 0x80 | 10, steps * PACKET_SAMPLES), start,
                      at_samples=start + steps * PACKET_SAMPLES, bump_seq=True)
        self._samples = start + steps * PACKET_SAMPLES
        self.silence(0.04)

    def _add(self, pt: int, marker: bool, payload: bytes, timestamp: int, at_samples: int | None = None,
             bump_seq: bool = True) -> None:
        when = (self._samples if at_samples is None else at_samples) / RATE_HZ
        self.packets.append(RtpPacket(when, pt, self._seq, timestamp & 0xFFFFFFFF, marker, payload))
        if bump_seq:
            self._seq = (self._seq + 1) & 0xFFFF

    def write_pcap(self, path: Path) -> None:
        out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
        for p in self.packets:
            rtp = struct.pack("!BBHII", 0x80, (0x80 if p.marker else 0) | p.payload_type, p.seq,
                              p.timestamp, self.ssrc) + p.payload
            frame = _frame(rtp)
            sec = int(p.time_s)
            usec = int(round((p.time_s - sec) * 1e6))
            out.append(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
        path.write_bytes(b"".join(out))


def quiet_pcap(path: Path, seconds: float) -> Path:
    """A caller's pcap of `seconds` of silence (a call that only listens) written at `path`."""
    track = CallerTrack()
    track.silence(seconds)
    track.write_pcap(path)
    return path
