"""Who may call: an allow-list of trunk source addresses (CIDRs), checked on every INVITE."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def peer_text(value: str) -> str:
    """Text that came from a peer through pjsua2, made safe to hash, log and store.

    pjsua2's SWIG layer hands over header bytes that are not UTF-8 (a display name in Latin-1 from an
    older PBX) as lone surrogates ('\\udce9'), which no encoder accepts. They are read again here as
    UTF-8 where that works and as Latin-1 where it does not, so 'Jos\\xe9' becomes 'José'.
    """
    raw = value.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def source_ip(src_address: str) -> str:
    """The IP of pjsip's 'host:port' / '[v6]:port' source address (the port dropped)."""
    text = src_address.strip()
    if text.startswith("["):
        return text[1:text.find("]")] if "]" in text else text[1:]
    if text.count(":") == 1:
        return text.rsplit(":", 1)[0]
    return text


class AllowList:
    """Source CIDRs allowed to send INVITEs; an empty list allows everyone."""

    def __init__(self, cidrs: Iterable[str]) -> None:
        self.networks: list[IpNetwork] = [ipaddress.ip_network(c, strict=False) for c in cidrs]

    def __bool__(self) -> bool:
        return bool(self.networks)

    def allows(self, src_address: str) -> bool:
        if not self.networks:
            return True
        try:
            ip = ipaddress.ip_address(source_ip(src_address))
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip.version == net.version and ip in net for net in self.networks)
