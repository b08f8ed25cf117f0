"""Peer lists in tracker answers: compact IPv4 (BEP 23), compact IPv6 (BEP 7), BEP 3 dicts.

Entries whose port is 0 are skipped (nobody can connect to them); anything that is not
a well-formed list is a :class:`~p2pshare.errors.RemoteProtocolError`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from p2pshare.core.types import PeerAddress
from p2pshare.errors import RemoteProtocolError

__all__ = ["decode_compact", "decode_dict_peers", "encode_compact"]


def decode_compact(data: bytes, *, ipv6: bool, limit: int) -> list[PeerAddress]:
    """Decode 6-byte (IPv4) or 18-byte (IPv6) address+port entries, keeping at most ``limit``."""
    size = 18 if ipv6 else 6
    if len(data) % size:
        kind = "peers6" if ipv6 else "peers"
        raise RemoteProtocolError(f"compact {kind} of {len(data)} bytes is not a multiple of {size}")
    out: list[PeerAddress] = []
    for off in range(0, len(data), size):
        if len(out) >= limit:
            break
        port = int.from_bytes(data[off + size - 2 : off + size], "big")
        if port == 0:
            continue
        raw = data[off : off + size - 2]
        host = str(ipaddress.IPv6Address(raw) if ipv6 else ipaddress.IPv4Address(raw))
        out.append(PeerAddress(host, port))
    return out


def encode_compact(peers: Iterable[PeerAddress]) -> bytes:
    """The compact form of IPv4 and IPv6 peers, in order (used by tests and tracker helpers)."""
    out = bytearray()
    for p in peers:
        out += ipaddress.ip_address(p.host).packed + p.port.to_bytes(2, "big")
    return bytes(out)


def decode_dict_peers(items: object, *, limit: int) -> list[PeerAddress]:
    """BEP 3's list of ``{peer id, ip, port}`` dicts; host names and bad ports are skipped."""
    if not isinstance(items, list):
        raise RemoteProtocolError("tracker 'peers' is neither a string nor a list")
    out: list[PeerAddress] = []
    for item in items:
        if len(out) >= limit:
            break
        if not isinstance(item, dict):
            raise RemoteProtocolError("tracker peer entry is not a dict")
        ip, port = item.get(b"ip"), item.get(b"port")
        if not isinstance(ip, bytes) or not isinstance(port, int) or isinstance(port, bool):
            raise RemoteProtocolError("tracker peer entry lacks a byte-string 'ip' or an integer 'port'")
        if not 0 < port < 65536:
            continue
        try:
            host = str(ipaddress.ip_address(ip.decode("ascii")))
        except (UnicodeDecodeError, ValueError):
            continue  # a DNS name: core resolves nothing, and trackers rarely send them
        out.append(PeerAddress(host, port))
    return out
