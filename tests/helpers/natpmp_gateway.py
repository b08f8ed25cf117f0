"""What a NAT-PMP/PCP gateway sends, encoded from the RFC layouts (for tests of the client)."""

from __future__ import annotations

import ipaddress
import struct

from p2pshare.core.natpmp_wire import MapProtocol

NONCE = bytes(range(12))
TCP, UDP = MapProtocol.TCP, MapProtocol.UDP


def natpmp_address(epoch: int, address: str = "11.11.0.1", result: int = 0) -> bytes:
    return struct.pack("!BBHI", 0, 128, result, epoch) + ipaddress.IPv4Address(address).packed


def natpmp_map(
    protocol: MapProtocol, internal: int, external: int, lifetime: int, epoch: int, result: int = 0
) -> bytes:
    op = 128 + (1 if protocol is UDP else 2)
    return struct.pack("!BBHIHHI", 0, op, result, epoch, internal, external, lifetime)


def pcp_map(
    protocol: MapProtocol,
    internal: int,
    external: int,
    lifetime: int,
    epoch: int,
    result: int = 0,
    nonce: bytes = NONCE,
    address: str = "11.11.0.1",
) -> bytes:
    header = struct.pack("!BBBBII", 2, 0x81, 0, result, lifetime, epoch) + bytes(12)
    mapped = ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + ipaddress.IPv4Address(address).packed).packed
    return header + nonce + struct.pack("!B3xHH", 17 if protocol is UDP else 6, internal, external) + mapped


def unsupported_natpmp(epoch: int = 5) -> bytes:
    return struct.pack("!BBHI", 0, 129, 1, epoch)
