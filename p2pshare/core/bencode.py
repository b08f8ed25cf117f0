"""Strict bencode over bencode.py, plus a scanner for the raw ``info`` span.

Decoding keeps byte strings as ``bytes`` (no text guessing), caps input size and
nesting depth, and rejects trailing data, non-canonical integers and every other
malformation with :class:`~p2pshare.errors.BencodeError`; nothing else escapes.

The info hash must be the SHA-1 of the bytes we *received*, not of a re-encoding
(a re-encoding can differ, e.g. for unsorted keys), so :func:`find_info_span`
returns where the top-level ``info`` value starts and ends in the input.
"""

from __future__ import annotations

from typing import Any

import bencodepy

from p2pshare.config import BencodeLimits
from p2pshare.errors import BencodeError

__all__ = ["BValue", "decode", "decode_prefix", "encode", "find_info_span", "value_end"]

#: What bencode can hold: ints, bytes, lists and dicts keyed by bytes.
BValue = Any

_DEFAULT_LIMITS = BencodeLimits()
_CODECS: dict[int, bencodepy.Bencode] = {}
_ENCODER = bencodepy.Bencode(encoding=None, dict_ordered=True, dict_ordered_sort=True)
_DIGITS = frozenset(b"0123456789")


def _codec(max_depth: int) -> bencodepy.Bencode:
    codec = _CODECS.get(max_depth)
    if codec is None:
        codec = _CODECS[max_depth] = bencodepy.Bencode(encoding=None, max_depth=max_depth)
    return codec


def decode(data: bytes, limits: BencodeLimits = _DEFAULT_LIMITS) -> BValue:
    """Decode one complete bencoded value; anything left over is an error."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BencodeError(f"bencode input must be bytes, not {type(data).__name__}")
    if len(data) > limits.max_input:
        raise BencodeError(f"bencode input of {len(data)} bytes exceeds the {limits.max_input}-byte limit")
    if not data:
        raise BencodeError("empty bencode input")
    # Check the shape first with our own bounded, iterative scanner: it enforces the
    # depth limit and canonical form without recursion, so hostile input cannot blow
    # the Python stack inside the library.
    end = value_end(bytes(data), 0, limits.max_depth)
    if end != len(data):
        raise BencodeError(f"trailing data after bencoded value at offset {end}")
    try:
        return _codec(limits.max_depth + 1).decode(bytes(data))
    except Exception as exc:  # bencode.py raises several types; hide them all.
        raise BencodeError(f"invalid bencode: {exc}") from None


def decode_prefix(data: bytes, limits: BencodeLimits = _DEFAULT_LIMITS) -> tuple[BValue, int]:
    """Decode the value at the start of ``data``; return it and where it ended.

    Used by BEP 9, where a bencoded dict is followed by raw metadata bytes.
    """
    end = value_end(bytes(data), 0, limits.max_depth)
    return decode(bytes(data[:end]), limits), end


def encode(value: BValue) -> bytes:
    """Encode a value; dict keys are sorted as BEP 3 requires."""
    try:
        return bytes(_ENCODER.encode(value))
    except Exception as exc:
        raise BencodeError(f"cannot bencode {type(value).__name__}: {exc}") from None


def value_end(data: bytes, start: int, max_depth: int = _DEFAULT_LIMITS.max_depth) -> int:
    """Return the offset just past the bencoded value that starts at ``start``.

    Validates as it goes (canonical integers, string lengths within the input,
    byte-string dict keys that are not repeated, depth) and raises :class:`BencodeError` on any fault.
    """
    n = len(data)
    pos = start
    # Stack of open containers: for a dict, the set of its keys so far (keys must be
    # strings and unique: a repeated key is ambiguous); None for a list.
    stack: list[set[bytes] | None] = []
    expect_key = False
    while True:
        if pos >= n:
            raise BencodeError("truncated bencode")
        c = data[pos]
        if stack and c == 0x65:  # 'e' closes the innermost container
            if stack[-1] is not None and not expect_key:
                raise BencodeError(f"dict key without a value at offset {pos}")
            stack.pop()
            pos += 1
        elif expect_key and c not in _DIGITS:
            raise BencodeError(f"dict key is not a byte string at offset {pos}")
        elif c == 0x69:  # 'i'
            e = data.find(b"e", pos + 1)
            if e < 0:
                raise BencodeError("unterminated integer")
            digits = data[pos + 1 : e]
            body = digits[1:] if digits[:1] == b"-" else digits
            if (
                not body
                or not all(d in _DIGITS for d in body)
                or (body[0] == 0x30 and len(body) > 1)
                or digits == b"-0"
            ):
                raise BencodeError(f"invalid integer {digits[:32]!r} at offset {pos}")
            pos = e + 1
        elif c in _DIGITS:
            colon = data.find(b":", pos, pos + 21)
            if colon < 0:
                raise BencodeError(f"invalid string length at offset {pos}")
            length_text = data[pos:colon]
            if not all(d in _DIGITS for d in length_text) or (
                length_text[0] == 0x30 and len(length_text) > 1
            ):
                raise BencodeError(f"invalid string length at offset {pos}")
            body_start = colon + 1
            pos = body_start + int(length_text)
            if pos > n:
                raise BencodeError("string runs past the end of the input")
            keys = stack[-1] if stack else None
            if keys is not None:
                if expect_key:
                    key = data[body_start:pos]
                    if key in keys:
                        raise BencodeError(f"duplicate dict key {key[:32]!r} at offset {body_start}")
                    keys.add(key)
                expect_key = not expect_key
                continue
        elif c == 0x6C or c == 0x64:  # 'l' or 'd'
            if len(stack) >= max_depth:
                raise BencodeError(f"bencode nested deeper than {max_depth} levels")
            stack.append(set() if c == 0x64 else None)
            pos += 1
            expect_key = c == 0x64
            continue
        else:
            raise BencodeError(f"unexpected byte {c:#04x} at offset {pos}")
        # A value (or a container) has just been completed.
        if not stack:
            return pos
        expect_key = stack[-1] is not None


def find_info_span(data: bytes, limits: BencodeLimits = _DEFAULT_LIMITS) -> tuple[int, int]:
    """Return ``(start, end)`` of the top-level ``info`` value in a .torrent.

    ``data[start:end]`` is exactly the bytes that were hashed to make the info hash.
    Raises :class:`BencodeError` when the document is not a dict or has no ``info``.
    """
    data = bytes(data)
    if value_end(data, 0, limits.max_depth) != len(data):
        raise BencodeError("trailing data after the torrent's top-level dict")
    if data[:1] != b"d":
        raise BencodeError("a torrent must be a bencoded dict")
    pos = 1
    while data[pos : pos + 1] != b"e":
        key_end = value_end(data, pos, limits.max_depth)
        key = data[data.index(b":", pos) + 1 : key_end]
        val_end = value_end(data, key_end, limits.max_depth)
        if key == b"info":
            return key_end, val_end
        pos = val_end
    raise BencodeError("the torrent has no 'info' dict")
