"""BEP 52 hash messages: hash request (21), hashes (22) and hash reject (23).

Wire layout after the 4-byte length prefix and the 1-byte id::

    pieces root (32) | base layer (u32) | index (u32) | length (u32) | proof layers (u32)
    [hashes only: (length + uncles) x 32-byte hashes]

``length`` hashes of layer ``base layer`` (0 = the 16 KiB leaves) from ``index``,
then the uncle hashes from the subtree those hashes span up towards the root,
nearest first; the first ``log2(length) - 1`` proof layers are inside the range and
omitted (:func:`p2pshare.core.merkle.proof_hash_count`, counted as libtorrent does).

This module is the codec only: :func:`encode` a message to bytes, :func:`parse_frame`
one framed message from a buffer (``None`` until it is complete), or
:func:`decode_payload` when the framing layer already split it.  Lengths are
checked as soon as the 5-byte header is buffered, so a peer cannot make us buffer
more than the largest legal ``hashes`` message; every breach of
:class:`~p2pshare.config.HashesLimits` is a :class:`~p2pshare.errors.RemoteProtocolError`.
Checking the hashes against a root is :func:`p2pshare.core.merkle.verify_hashes`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from p2pshare.config import HashesLimits
from p2pshare.core.merkle import HASH_SIZE, proof_hash_count
from p2pshare.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "HEADER_SIZE",
    "HashMessage",
    "HashMessageId",
    "HashReject",
    "HashRequest",
    "Hashes",
    "decode_payload",
    "encode",
    "max_frame_length",
    "parse_frame",
    "set_v2_bit",
    "supports_v2",
]

_HEADER = struct.Struct(">32sIIII")
_U32 = struct.Struct(">I")
HEADER_SIZE = _HEADER.size  #: 48: root + four u32 fields
_DEFAULT_LIMITS = HashesLimits()


#: BEP 52 upgrade path: "the 4th most significant bit in the last byte of the reserved
#: bitfield" says a peer sending a hybrid's SHA-1 hash also speaks v2.
_V2_BYTE = 7
_V2_MASK = 0x10


def supports_v2(reserved: bytes) -> bool:
    """True when the 8 reserved handshake bytes carry the BEP 52 v2 bit."""
    return len(reserved) == 8 and bool(reserved[_V2_BYTE] & _V2_MASK)


def set_v2_bit(reserved: bytes) -> bytes:
    """The reserved bytes with the BEP 52 v2 bit set (for handshakes of hybrid torrents)."""
    if len(reserved) != 8:
        raise ValueError("the reserved field is 8 bytes")
    out = bytearray(reserved)
    out[_V2_BYTE] |= _V2_MASK
    return bytes(out)


class HashMessageId(IntEnum):
    HASH_REQUEST = 21
    HASHES = 22
    HASH_REJECT = 23


@dataclass(frozen=True, slots=True)
class HashRequest:
    """Please send ``length`` hashes of layer ``base_layer`` from ``index`` of file ``pieces_root``."""

    pieces_root: bytes
    base_layer: int
    index: int
    length: int
    proof_layers: int


@dataclass(frozen=True, slots=True)
class HashReject:
    """We will not serve this hash request (same fields as the request)."""

    pieces_root: bytes
    base_layer: int
    index: int
    length: int
    proof_layers: int


@dataclass(frozen=True, slots=True)
class Hashes:
    """The answer to a hash request: the base-layer hashes, then the uncle hashes."""

    pieces_root: bytes
    base_layer: int
    index: int
    length: int
    proof_layers: int
    hashes: tuple[bytes, ...]

    @property
    def base_hashes(self) -> tuple[bytes, ...]:
        return self.hashes[: self.length]

    @property
    def uncle_hashes(self) -> tuple[bytes, ...]:
        return self.hashes[self.length :]

    def __repr__(self) -> str:  # never dump thousands of hashes into a log line
        return (
            f"Hashes(root={self.pieces_root[:4].hex()}.., base={self.base_layer}, index={self.index}, "
            f"length={self.length}, proof_layers={self.proof_layers}, {len(self.hashes)} hashes)"
        )


HashMessage = HashRequest | Hashes | HashReject


def _check_fields(
    root: bytes, base: int, index: int, length: int, proof: int, limits: HashesLimits
) -> str | None:
    """What is wrong with the common fields, or None."""
    if len(root) != HASH_SIZE:
        return f"pieces root is {len(root)} bytes, not 32"
    for name, value in (("base layer", base), ("index", index), ("length", length), ("proof layers", proof)):
        if not 0 <= value < 1 << 32:
            return f"{name} {value} does not fit in 32 bits"
    if length < 1 or length & (length - 1):
        return f"length {length} is not a power of two"
    if length > limits.max_count:
        return f"length {length} exceeds {limits.max_count} hashes"
    if index % length:
        return f"index {index} is not a multiple of length {length}"
    if base > limits.max_base_layer:
        return f"base layer {base} exceeds {limits.max_base_layer}"
    if proof > limits.max_proof_layers:
        return f"proof layers {proof} exceed {limits.max_proof_layers}"
    return None


def _expected_hashes(length: int, proof_layers: int) -> int:
    return length + proof_hash_count(length, proof_layers)


def max_frame_length(msg_id: int, limits: HashesLimits = _DEFAULT_LIMITS) -> int:
    """Largest legal value of the 4-byte length prefix for ``msg_id`` (id byte included)."""
    if msg_id == HashMessageId.HASHES:
        return 1 + HEADER_SIZE + HASH_SIZE * _expected_hashes(limits.max_count, limits.max_proof_layers)
    if msg_id in (HashMessageId.HASH_REQUEST, HashMessageId.HASH_REJECT):
        return 1 + HEADER_SIZE
    raise ValueError(f"message id {msg_id} is not a BEP 52 hash message")


def encode(msg: HashMessage, limits: HashesLimits = _DEFAULT_LIMITS) -> bytes:
    """The whole frame (length prefix, id, payload); LocalProtocolError for a message we must not send."""
    problem = _check_fields(msg.pieces_root, msg.base_layer, msg.index, msg.length, msg.proof_layers, limits)
    if problem:
        raise LocalProtocolError(f"cannot send {type(msg).__name__}: {problem}")
    header = _HEADER.pack(msg.pieces_root, msg.base_layer, msg.index, msg.length, msg.proof_layers)
    if isinstance(msg, Hashes):
        expected = _expected_hashes(msg.length, msg.proof_layers)
        if len(msg.hashes) != expected or any(len(h) != HASH_SIZE for h in msg.hashes):
            raise LocalProtocolError(f"cannot send Hashes: {expected} hashes of 32 bytes are needed")
        body = bytes([HashMessageId.HASHES]) + header + b"".join(msg.hashes)
    elif isinstance(msg, HashRequest):
        body = bytes([HashMessageId.HASH_REQUEST]) + header
    else:
        body = bytes([HashMessageId.HASH_REJECT]) + header
    return _U32.pack(len(body)) + body


def decode_payload(msg_id: int, payload: bytes, limits: HashesLimits = _DEFAULT_LIMITS) -> HashMessage:
    """Decode the payload (after the id byte) of a hash message from a peer."""
    kind = HashMessageId(msg_id)
    if kind is HashMessageId.HASHES:
        if len(payload) < HEADER_SIZE or (len(payload) - HEADER_SIZE) % HASH_SIZE:
            raise RemoteProtocolError(
                f"hashes message of {len(payload)} bytes: not a 48-byte header and whole 32-byte hashes"
            )
    elif len(payload) != HEADER_SIZE:
        raise RemoteProtocolError(f"{kind.name.lower()} message of {len(payload)} bytes, expected 48")
    root, base, index, length, proof = _HEADER.unpack_from(payload)
    problem = _check_fields(root, base, index, length, proof, limits)
    if problem:
        raise RemoteProtocolError(f"{kind.name.lower()} message: {problem}")
    if kind is HashMessageId.HASH_REQUEST:
        return HashRequest(root, base, index, length, proof)
    if kind is HashMessageId.HASH_REJECT:
        return HashReject(root, base, index, length, proof)
    count = (len(payload) - HEADER_SIZE) // HASH_SIZE
    expected = _expected_hashes(length, proof)
    if count != expected:
        raise RemoteProtocolError(
            f"hashes message carries {count} hashes; length {length} with {proof} proof layers "
            f"needs {expected}"
        )
    hashes = tuple(
        bytes(payload[HEADER_SIZE + i * HASH_SIZE : HEADER_SIZE + (i + 1) * HASH_SIZE]) for i in range(count)
    )
    return Hashes(root, base, index, length, proof, hashes)


def parse_frame(
    buf: bytes | bytearray | memoryview, limits: HashesLimits = _DEFAULT_LIMITS
) -> tuple[HashMessage, int] | None:
    """Decode one framed hash message at the start of ``buf``: (message, bytes used), or None
    when more bytes are needed.  The length is checked as soon as 5 bytes are there."""
    view = memoryview(buf)
    if len(view) < 5:
        return None
    (length,) = _U32.unpack_from(view)
    msg_id = view[4]
    if msg_id not in (HashMessageId.HASH_REQUEST, HashMessageId.HASHES, HashMessageId.HASH_REJECT):
        raise ValueError(f"message id {msg_id} is not a BEP 52 hash message")
    limit = max_frame_length(msg_id, limits)
    if not 1 + HEADER_SIZE <= length <= limit:
        raise RemoteProtocolError(
            f"{HashMessageId(msg_id).name.lower()} message of length {length} outside "
            f"{1 + HEADER_SIZE}..{limit}"
        )
    if len(view) < 4 + length:
        return None
    return decode_payload(msg_id, bytes(view[5 : 4 + length]), limits), 4 + length
