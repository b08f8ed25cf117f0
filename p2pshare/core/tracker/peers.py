"""Peer lists in tracker answers: compact IPv4 (BEP 23), compact IPv6 (BEP 7), BEP 3 dicts.

Entries whose port is 0 are skipped (nobody can connect to them); anything that is not
a well-formed list is a :class:`~p2pshare.errors.RemoteProtocolError`.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable

from p2pshare.core.types import PeerAddress
from p2pshare.errors import RemoteProtocolError

__all__ = ["decode_compact", "decode_dict_peers", "encode_compact"]

_V4 = struct.Struct(">4BH")
_V6 = struct.Struct(">8HH")


def decode_compact(data: bytes, *, ipv6: bool, limit: int) -> list[PeerAddress]:
    """Decode 6-byte (IPv4) or 18-byte (IPv6) address+port entries, keeping at most ``limit``."""
    size = 18 if ipv6 else 6
    if len(data) % size:
        kind = "peers6" if ipv6 else "peers"
        raise RemoteProtocolError(f"compact {kind} of {len(data)} bytes is not a multiple of {size}")
    data = bytes(data[: size * max(limit, 0)])  # entries past the limit are never looked at
    out: list[PeerAddress] = []
    if ipv6:
        for entry in _V6.iter_unpack(data):
            if entry[8]:  # port 0: nobody can connect to it
                out.append(PeerAddress(_ipv6_text(entry[:8]), entry[8]))
    else:
        for a, b, c, d, port in _V4.iter_unpack(data):
            if port:
                out.append(PeerAddress(f"{a}.{b}.{c}.{d}", port))
    return out


def _ipv6_text(groups: tuple[int, ...]) -> str:
    """RFC 5952 text of eight 16-bit groups (as ``ipaddress`` writes it, several times faster)."""
    if groups[:6] == (0, 0, 0, 0, 0, 0xFFFF):  # IPv4-mapped: let the library spell it
        return str(ipaddress.IPv6Address(b"".join(g.to_bytes(2, "big") for g in groups)))
    best_start, best_len, start = -1, 1, -1
    for i, g in enumerate((*groups, 1)):
        if g == 0 and start < 0:
            start = i
        elif g != 0 and start >= 0:
            if i - start > best_len:
                best_start, best_len = start, i - start
            start = -1
    text = [format(g, "x") for g in groups]
    if best_start < 0:
        return ":".join(text)
    return ":".join(text[:best_start]) + "::" + ":".join(text[best_start + best_len :])


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
