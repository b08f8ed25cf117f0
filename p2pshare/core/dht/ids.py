"""Node ids: XOR distance, random ids, and BEP 42 secure ids.

A node id is 20 bytes; the distance between two ids is their XOR read as a
160-bit unsigned integer.  BEP 42 ties an id to the node's external IP: the top
21 bits are the top 21 bits of ``crc32c((ip & mask) | (r << 29 or 61))`` and the
last byte is ``r`` (0..255, of which the low 3 bits enter the hash).  Local
addresses (loopback, RFC 1918, link-local) are exempt, so a loopback test DHT
keeps whatever ids it is given.
"""

from __future__ import annotations

import ipaddress
import random

__all__ = [
    "ID_BITS",
    "ID_BYTES",
    "crc32c",
    "distance",
    "id_to_int",
    "int_to_id",
    "is_bep42_exempt",
    "is_secure_id",
    "random_id",
    "random_id_in_range",
    "secure_id",
]

ID_BYTES = 20
ID_BITS = 160

_V4_MASK = bytes((0x03, 0x0F, 0x3F, 0xFF))
_V6_MASK = bytes((0x01, 0x03, 0x07, 0x0F, 0x1F, 0x3F, 0x7F, 0xFF))


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC-32C (Castagnoli), as BEP 42 uses it."""
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = _CRC32C[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def id_to_int(node_id: bytes) -> int:
    """The id as a 160-bit big-endian integer."""
    return int.from_bytes(node_id, "big")


def int_to_id(value: int) -> bytes:
    """A 160-bit integer back to a 20-byte id."""
    return value.to_bytes(ID_BYTES, "big")


def distance(a: bytes, b: bytes) -> int:
    """XOR distance of two ids."""
    return int.from_bytes(a, "big") ^ int.from_bytes(b, "big")


def random_id(rng: random.Random) -> bytes:
    """A uniformly random id."""
    return rng.getrandbits(ID_BITS).to_bytes(ID_BYTES, "big")


def random_id_in_range(lo: int, hi: int, rng: random.Random) -> bytes:
    """A random id with ``lo <= id < hi``."""
    return int_to_id(lo + rng.randrange(hi - lo))


def is_bep42_exempt(ip: str) -> bool:
    """Whether BEP 42 leaves this address alone (loopback, private, link-local)."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return True
    return addr.is_loopback or addr.is_private or addr.is_link_local or addr.is_unspecified


def _prefix_crc(ip: str, r: int) -> int:
    packed = bytearray(ipaddress.ip_address(ip).packed)
    if len(packed) == 4:
        mask = _V4_MASK
    else:
        packed = packed[:8]
        mask = _V6_MASK
    for i, m in enumerate(mask):
        packed[i] &= m
    packed[0] |= (r & 0x07) << 5
    return crc32c(bytes(packed))


def secure_id(ip: str, rng: random.Random) -> bytes:
    """A fresh BEP 42 id for ``ip`` (21 bits from the CRC, the rest random, ``r`` last)."""
    r = rng.randrange(256)
    crc = _prefix_crc(ip, r)
    tail = rng.getrandbits(16 * 8).to_bytes(16, "big")
    third = ((crc >> 8) & 0xF8) | rng.randrange(8)
    return bytes(((crc >> 24) & 0xFF, (crc >> 16) & 0xFF, third)) + tail + bytes((r,))


def is_secure_id(node_id: bytes, ip: str) -> bool:
    """Whether ``node_id`` satisfies BEP 42 for ``ip`` (exempt addresses always do)."""
    if is_bep42_exempt(ip):
        return True
    if len(node_id) != ID_BYTES:
        return False
    crc = _prefix_crc(ip, node_id[-1])
    want = crc >> 11  # top 21 bits
    have = int.from_bytes(node_id[:3], "big") >> 3
    return want == have
