"""A raw SIP peer over UDP for hostile-input tests: builds requests by hand, sends any bytes, reads answers.

sipp plays well-formed scenarios; this peer sends what a broken or hostile peer would (no SDP, bad SDP,
Latin-1 headers, requests nobody ACKs), from any loopback source address, and reports the status codes
and headers that came back.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass

SDP_OK = ("v=0\r\no=peer 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
          "m=audio {rtp} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
          "a=sendrecv\r\n")
SDP_BROKEN = "v=0\r\no=peer\r\nc=IN IP4\r\nm=audio notaport RTP/AVP\r\na=rtpmap:zz\r\n"


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    raw: bytes

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


def parse_response(data: bytes) -> Response | None:
    """A SIP response's status and headers (lower-case names), or None for anything else."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or parts[0] != "SIP/2.0" or not parts[1].isdigit():
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    return Response(int(parts[1]), headers, data)


class SipPeer(AbstractContextManager["SipPeer"]):
    """One UDP socket on `ip` (any 127.x address stands for another host)."""

    def __init__(self, ip: str = "127.0.0.1") -> None:
        self.ip = ip
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, 0))
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()

    def __exit__(self, *_: object) -> None:
        self.close()

    def send(self, data: bytes, port: int, host: str = "127.0.0.1") -> None:
        self.sock.sendto(data, (host, port))

    def invite(self, port: int, sdp: str | None = SDP_OK, display: bytes = b"Test Caller", rtp_port: int = 0,
               call_id: str | None = None, host: str = "127.0.0.1") -> tuple[bytes, str]:
        """Sends an INVITE (with `sdp`, or none); returns (the bytes sent, its Call-ID)."""
        call_id = call_id or f"{uuid.uuid4().hex}@{self.ip}"
        body = (sdp or "").format(ip=self.ip, rtp=rtp_port or self.port + 2).encode()
        head = (f"INVITE sip:ivr@{host}:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {self.ip}:{self.port};branch=z9hG4bK{uuid.uuid4().hex[:16]};rport\r\n"
                "Max-Forwards: 70\r\n").encode()
        head += b'From: "' + display + f'" <sip:5550104477@{self.ip}:{self.port}>;tag={os.getpid()}x\r\n'.encode()
        head += (f"To: <sip:ivr@{host}:{port}>\r\n"
                 f"Call-ID: {call_id}\r\n"
                 "CSeq: 1 INVITE\r\n"
                 f"Contact: <sip:5550104477@{self.ip}:{self.port}>\r\n").encode()
        if sdp is not None:
            head += b"Content-Type: application/sdp\r\n"
        data = head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
        self.send(data, port, host)
        return data, call_id

    def options(self, port: int, host: str = "127.0.0.1") -> bytes:
        data = (f"OPTIONS sip:ivr@{host}:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {self.ip}:{self.port};branch=z9hG4bK{uuid.uuid4().hex[:16]};rport\r\n"
                "Max-Forwards: 70\r\n"
                f"From: <sip:probe@{self.ip}>;tag=p{os.getpid()}\r\n"
                f"To: <sip:ivr@{host}:{port}>\r\n"
                f"Call-ID: {uuid.uuid4().hex}@{self.ip}\r\n"
                "CSeq: 1 OPTIONS\r\n"
                "Content-Length: 0\r\n\r\n").encode()
        self.send(data, port, host)
        return data

    def responses(self, timeout_s: float, until: int | None = None) -> list[Response]:
        """What comes back within timeout_s (stopping early at a final status >= `until`)."""
        got: list[Response] = []
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data, _ = self.sock.recvfrom(65535)
            except OSError:
                break
            response = parse_response(data)
            if response is None:
                continue
            got.append(response)
            if until is not None and response.status >= until:
                break
        return got

    def final(self, timeout_s: float = 5.0) -> Response | None:
        """The first final (>= 200) response within timeout_s."""
        for response in self.responses(timeout_s, until=200):
            if response.status >= 200:
                return response
        return None

    def ack(self, response: Response, port: int, host: str = "127.0.0.1") -> None:
        """ACK for a final response to our INVITE (its branch reused: good enough for 2xx and non-2xx here)."""
        self._in_dialog("ACK", response, port, host, response.headers.get("via", ""),
                        response.headers.get("cseq", "1 INVITE").split()[0])

    def bye(self, response: Response, port: int, host: str = "127.0.0.1") -> None:
        """BYE for a call that `response` (our INVITE's 200) set up."""
        via = f"SIP/2.0/UDP {self.ip}:{self.port};branch=z9hG4bK{uuid.uuid4().hex[:16]};rport"
        self._in_dialog("BYE", response, port, host, via, "2")

    def _in_dialog(self, method: str, response: Response, port: int, host: str, via: str, cseq: str) -> None:
        h = response.headers
        data = (f"{method} sip:ivr@{host}:{port} SIP/2.0\r\n"
                f"Via: {via}\r\n"
                "Max-Forwards: 70\r\n"
                f"From: {h.get('from', '')}\r\n"
                f"To: {h.get('to', '')}\r\n"
                f"Call-ID: {h.get('call-id', '')}\r\n"
                f"CSeq: {cseq} {method}\r\n"
                "Content-Length: 0\r\n\r\n").encode()
        self.send(data, port, host)


def media_port(response: Response) -> int:
    """The audio port of the SDP answer in a response (0 without one)."""
    body = response.raw.split(b"\r\n\r\n", 1)[-1].decode("latin-1")
    for line in body.splitlines():
        if line.startswith("m=audio "):
            return int(line.split()[1])
    return 0
