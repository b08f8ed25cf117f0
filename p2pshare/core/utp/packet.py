"""The uTP packet codec (BEP 29): a 20-byte header, an extension chain, a payload.

::

    0       4       8               16              24              32
    +-------+-------+---------------+---------------+---------------+
    | type  | ver   | extension     | connection_id                 |
    +-------+-------+---------------+---------------+---------------+
    | timestamp_microseconds                                        |
    | timestamp_difference_microseconds                             |
    | wnd_size                                                      |
    | seq_nr                        | ack_nr                        |
    +-------------------------------+-------------------------------+

Extension 1 is the selective ACK: a bitmask (a multiple of 4 bytes) whose bit
``i`` (LSB first within each byte) says packet ``ack_nr + 2 + i`` has arrived.
Unknown extensions are skipped.  Sequence and ack numbers wrap at 16 bits.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from p2pshare.errors import RemoteProtocolError

__all__ = [
    "EXT_PADDING",
    "EXT_SACK",
    "HEADER_SIZE",
    "Packet",
    "PacketType",
    "SEQ_MASK",
    "UTP_VERSION",
    "UtpPacketError",
    "decode",
    "encode",
    "encode_header",
    "encode_with_extensions",
    "seq_diff",
    "seq_less",
]

UTP_VERSION = 1
HEADER_SIZE = 20
EXT_SACK = 1
#: Our padding extension (skipped by every receiver, as unknown extensions are): it grows
#: the path-MTU probe without touching the stream.  Not assigned by BEP 29.
EXT_PADDING = 0x7E
SEQ_MASK = 0xFFFF
U32 = 0xFFFFFFFF

_HEADER = struct.Struct(">BBHIIIHH")
_pack_header_into = _HEADER.pack_into
_unpack_header = _HEADER.unpack_from


class PacketType(IntEnum):
    DATA = 0
    FIN = 1
    STATE = 2
    RESET = 3
    SYN = 4


_TYPES = tuple(PacketType)


class UtpPacketError(RemoteProtocolError):
    """A datagram that is not a well-formed uTP version 1 packet."""


@dataclass(frozen=True, slots=True)
class Packet:
    """One decoded uTP packet; ``payload`` is a view into the datagram."""

    type: PacketType
    conn_id: int
    timestamp: int  #: sender's clock, microseconds mod 2**32
    timestamp_diff: int  #: sender's clock minus our timestamp on the last packet it got
    wnd_size: int  #: bytes the sender can still buffer
    seq_nr: int
    ack_nr: int
    sack: bytes | None = None  #: the selective-ACK bitmask, if present
    payload: bytes | memoryview = b""


def seq_diff(a: int, b: int) -> int:
    """``a - b`` on the 16-bit circle, in [-32768, 32767]."""
    d = (a - b) & SEQ_MASK
    return d - 0x10000 if d >= 0x8000 else d


def seq_less(a: int, b: int) -> bool:
    """Whether ``a`` comes before ``b`` on the 16-bit circle."""
    return seq_diff(a, b) < 0


def decode(data: bytes | bytearray | memoryview) -> Packet:
    """Parse one datagram; raise :class:`UtpPacketError` when it is not a uTP v1 packet."""
    n = len(data)
    if n < HEADER_SIZE:
        raise UtpPacketError(f"uTP packet of {n} bytes is shorter than the 20-byte header")
    first, ext, conn_id, ts, ts_diff, wnd, seq, ack = _unpack_header(data, 0)
    if first & 0x0F != UTP_VERSION:
        raise UtpPacketError(f"uTP version {first & 0x0F} is not supported (only 1)")
    kind = first >> 4
    if kind > 4:
        raise UtpPacketError(f"unknown uTP packet type {kind}")
    pos = HEADER_SIZE
    sack: bytes | None = None
    view = memoryview(data)
    while ext:
        if pos + 2 > n:
            raise UtpPacketError("uTP extension header runs past the end of the packet")
        next_ext = view[pos]
        length = view[pos + 1]
        pos += 2
        if pos + length > n:
            raise UtpPacketError(f"uTP extension {ext} of {length} bytes runs past the end of the packet")
        if ext == EXT_SACK:
            if length == 0 or length % 4:
                raise UtpPacketError(f"uTP selective ACK of {length} bytes (must be a multiple of 4)")
            if sack is None:
                sack = bytes(view[pos : pos + length])
        pos += length
        ext = next_ext
    payload = view[pos:] if pos < n else b""
    return Packet(_TYPES[kind], conn_id, ts, ts_diff, wnd, seq, ack, sack, payload)


def encode_header(
    buf: bytearray,
    kind: int,
    conn_id: int,
    timestamp: int,
    timestamp_diff: int,
    wnd_size: int,
    seq_nr: int,
    ack_nr: int,
    sack: bytes | None = None,
) -> int:
    """Write a header (and the SACK extension) at the start of ``buf``; return its length.

    ``buf`` must already be long enough (``HEADER_SIZE + 2 + len(sack)`` when there is a SACK).
    """
    ext = EXT_SACK if sack else 0
    _pack_header_into(
        buf,
        0,
        (kind << 4) | UTP_VERSION,
        ext,
        conn_id & SEQ_MASK,
        timestamp & U32,
        timestamp_diff & U32,
        min(wnd_size, U32) if wnd_size > 0 else 0,
        seq_nr & SEQ_MASK,
        ack_nr & SEQ_MASK,
    )
    if not sack:
        return HEADER_SIZE
    buf[HEADER_SIZE] = 0
    buf[HEADER_SIZE + 1] = len(sack)
    buf[HEADER_SIZE + 2 : HEADER_SIZE + 2 + len(sack)] = sack
    return HEADER_SIZE + 2 + len(sack)


def encode(packet: Packet) -> bytes:
    """The datagram for ``packet`` (the SACK extension is written when ``packet.sack`` is set)."""
    sack = packet.sack
    if sack is not None and (not sack or len(sack) % 4 or len(sack) > 252):
        raise ValueError("a SACK bitmask is a non-empty multiple of 4 bytes, at most 252")
    hlen = HEADER_SIZE + (2 + len(sack) if sack else 0)
    buf = bytearray(hlen + len(packet.payload))
    encode_header(
        buf,
        packet.type,
        packet.conn_id,
        packet.timestamp,
        packet.timestamp_diff,
        packet.wnd_size,
        packet.seq_nr,
        packet.ack_nr,
        sack,
    )
    buf[hlen:] = packet.payload
    return bytes(buf)


def encode_with_extensions(
    kind: int,
    conn_id: int,
    timestamp: int,
    timestamp_diff: int,
    wnd_size: int,
    seq_nr: int,
    ack_nr: int,
    extensions: list[tuple[int, bytes]],
    payload: bytes | memoryview,
) -> bytearray:
    """A datagram with any chain of extensions (each at most 255 bytes)."""
    parts = bytearray(HEADER_SIZE)
    encode_header(parts, kind, conn_id, timestamp, timestamp_diff, wnd_size, seq_nr, ack_nr)
    parts[1] = extensions[0][0] if extensions else 0
    for i, (_, body) in enumerate(extensions):
        if len(body) > 255:
            raise ValueError("a uTP extension is at most 255 bytes")
        nxt = extensions[i + 1][0] if i + 1 < len(extensions) else 0
        parts += bytes((nxt, len(body)))
        parts += body
    parts += payload
    return parts
