"""Strict media: a call's RTP and RTCP sockets hear only the caller, so strangers cannot take its audio.

pjmedia latches onto a new source address (RTP after 10 packets in a row from it, RTCP after 3) and then
sends there: a stranger who sprays a live call's ports receives its RTCP reports, and, if the caller
pauses, the agent's audio. The pjsua2-python wheels build that in (PJMEDIA_TRANSPORT_SWITCH_REMOTE_ADDR)
with no switch to turn it off. So once the caller's RTP flows from an address the call's signalling
vouches for (the SDP's address or the INVITE's source), the call's two UDP sockets are connect()ed to the
caller: the kernel then drops every datagram from anyone else before pjmedia sees it. A re-INVITE (hold,
a moved media address) unlocks them, and the new source is learned again. (Unlocking keeps the socket's
port only because pjsua binds media to explicit ports, from `rtp_port`: an ephemeral port is lost.)
"""

from __future__ import annotations

import ctypes
import logging
import os
import socket
import stat

log = logging.getLogger(__name__)

_AF_UNSPEC_SOCKADDR = bytes(16)  # sa_family 0 (AF_UNSPEC): connect() to it dissolves a UDP association


def host_port(name: str) -> tuple[str, int] | None:
    """('1.2.3.4', 5) from pjsua's '1.2.3.4:5' (None when empty or malformed)."""
    host, sep, port = name.strip().rpartition(":")
    if not sep or not port.isdigit() or int(port) == 0:
        return None
    return host.strip("[]"), int(port)


def udp_fds(ports: set[int], host: str) -> dict[int, int]:
    """This process's UDP socket descriptors bound to host:port for each port in `ports` (port -> fd)."""
    found: dict[int, int] = {}
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            dup = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        with dup:
            try:
                if dup.type != socket.SOCK_DGRAM or dup.family != socket.AF_INET:
                    continue
                local_host, local_port = dup.getsockname()[:2]
            except OSError:
                continue
            if local_port in ports and local_host in (host, "0.0.0.0"):
                found[local_port] = fd
    return found


def connect_fd(fd: int, peer: tuple[str, int] | None) -> None:
    """connect() the UDP socket behind fd to peer, or dissolve its association (None)."""
    if peer is not None:
        with socket.socket(fileno=os.dup(fd)) as dup:
            dup.connect(peer)
        return
    libc = ctypes.CDLL(None, use_errno=True)
    addr = ctypes.create_string_buffer(_AF_UNSPEC_SOCKADDR, len(_AF_UNSPEC_SOCKADDR))
    if libc.connect(fd, addr, len(_AF_UNSPEC_SOCKADDR)) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


class MediaLock:
    """The lock on one call's RTP and RTCP sockets (SIP thread only)."""

    def __init__(self) -> None:
        self.fds: list[int] = []
        self.peer: tuple[str, int] | None = None

    @property
    def locked(self) -> bool:
        return bool(self.fds)

    def lock(self, local_rtp: tuple[str, int], rtp_peer: tuple[str, int], rtcp_peer: tuple[str, int]) -> bool:
        """Connects the sockets on local_rtp's port (RTP) and the next one (RTCP) to the caller."""
        fds = udp_fds({local_rtp[1], local_rtp[1] + 1}, local_rtp[0])
        if local_rtp[1] not in fds:
            return False
        pairs = [(fds[local_rtp[1]], rtp_peer)]
        if local_rtp[1] + 1 in fds:
            pairs.append((fds[local_rtp[1] + 1], rtcp_peer))
        for fd, peer in pairs:
            connect_fd(fd, peer)
        self.fds = [fd for fd, _ in pairs]
        self.peer = rtp_peer
        return True

    def unlock(self) -> None:
        for fd in self.fds:
            try:
                connect_fd(fd, None)
            except OSError as exc:  # the socket may be gone with the media it belonged to
                log.debug("media unlock: %s", exc)
        self.fds = []
        self.peer = None


def caller_media(src_rtp: str, src_rtcp: str, sdp_rtp: str, sdp_rtcp: str,
                 signalling_ip: str) -> tuple[tuple[str, int], tuple[str, int]] | None:
    """(RTP peer, RTCP peer) to lock a call to, or None while no trusted source has been heard.

    The RTP peer is where the caller's RTP really comes from (behind NAT that is not the SDP's port), but
    only when its address is the SDP's or the INVITE's source: a stranger who was first cannot get locked
    in. RTCP goes to where RTCP came from on that address, else to the SDP's RTCP port, else RTP + 1."""
    rtp = host_port(src_rtp)
    sdp = host_port(sdp_rtp)
    if rtp is None or rtp[0] not in {signalling_ip, sdp[0] if sdp else ""}:
        return None
    rtcp = host_port(src_rtcp)
    if rtcp is None or rtcp[0] != rtp[0]:
        sdp_rtcp_peer = host_port(sdp_rtcp)
        rtcp = sdp_rtcp_peer if sdp_rtcp_peer and sdp_rtcp_peer[0] == rtp[0] else (rtp[0], rtp[1] + 1)
    return rtp, rtcp
