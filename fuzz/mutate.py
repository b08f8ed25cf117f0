"""Mutations: structure-aware for bencode, and byte-level for everything.

A structure-aware mutation decodes a bencoded seed, changes one value deep inside
(an integer to an edge value, a string cut or grown, a key dropped or duplicated, a
list emptied or nested deeper) and encodes it again, so the parser sees inputs that
get past its first checks.  Byte-level mutations (flips, inserts, deletes, splices,
interesting integers at random offsets) reach the framing code.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable

import bencodepy

__all__ = ["mutate", "mutate_bencode", "mutate_bytes"]

INTERESTING_INTS = (0, 1, -1, 2**7, 2**8, 2**15, 2**16, 2**31 - 1, 2**31, 2**32, 2**63 - 1, -(2**63), 10**30)
_CODEC = bencodepy.Bencode(encoding=None, encoding_fallback=None, dict_ordered=True, dict_ordered_sort=False)


def _pack_interesting(rng: random.Random) -> bytes:
    """An edge-case integer, big-endian, in 1, 2, 4 or 8 bytes (length prefixes, indices, sizes)."""
    fmt = rng.choice(("!B", "!H", "!I", "!Q"))
    return struct.pack(fmt, rng.choice(INTERESTING_INTS) % (1 << (8 * struct.calcsize(fmt))))


def mutate_bytes(data: bytes, rng: random.Random, corpus: list[bytes]) -> bytes:
    """One to four byte-level changes."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:  # flip a bit
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1:  # insert random bytes
            buf[pos:pos] = rng.randbytes(rng.choice((1, 2, 4, 17, 300)))
        elif op == 2 and buf:  # delete a run
            end = min(len(buf), pos + rng.choice((1, 2, 8, 64, 1000)))
            del buf[pos:end]
        elif op == 3:  # an interesting integer
            buf[pos : pos + 4] = _pack_interesting(rng)
        elif op == 4 and corpus:  # splice with another seed
            other = rng.choice(corpus)
            cut = rng.randrange(len(other) + 1)
            buf = buf[:pos] + bytearray(other[cut:])
        elif op == 5 and buf:  # duplicate a run
            end = min(len(buf), pos + rng.choice((1, 4, 32)))
            buf[pos:pos] = buf[pos:end] * rng.choice((2, 16))
        elif op == 6:  # truncate
            del buf[pos:]
    return bytes(buf)


def _mutate_value(value: object, rng: random.Random, depth: int = 0) -> object:
    if isinstance(value, dict) and value and depth < 8:
        keys = list(value)
        key = rng.choice(keys)
        choice = rng.randrange(5)
        out = dict(value)
        if choice == 0:
            del out[key]
        elif choice == 1:
            out[key + rng.randbytes(1)] = out[key]
        elif choice == 2:
            out[key] = rng.choice((0, -1, b"", [], {}, 2**64, b"\xff" * 300))
        else:
            out[key] = _mutate_value(out[key], rng, depth + 1)
        return out
    if isinstance(value, list) and depth < 8:
        if not value or rng.random() < 0.2:
            return rng.choice(([], [value], value * 2))
        out_list = list(value)
        i = rng.randrange(len(out_list))
        out_list[i] = _mutate_value(out_list[i], rng, depth + 1)
        return out_list
    if isinstance(value, int):
        return rng.choice((*INTERESTING_INTS, value + 1, value - 1, b"1"))
    if isinstance(value, bytes):
        choice = rng.randrange(5)
        if choice == 0:
            return value[: rng.randrange(len(value) + 1)]
        if choice == 1:
            return value + rng.randbytes(rng.choice((1, 20, 300)))
        if choice == 2:
            return rng.choice((b"", b"..", b"/", b"a/b", b"\x00", "é".encode(), b"\xff\xfe", 7, [value]))
        return mutate_bytes(value, rng, []) if value else rng.randbytes(3)
    return value


def mutate_bencode(data: bytes, rng: random.Random, corpus: list[bytes]) -> bytes:
    """Change one value inside a bencoded seed (keeping a tail after it, if the seed had one)."""
    try:
        value, end = _decode_prefix(data)
    except Exception:
        return mutate_bytes(data, rng, corpus)
    try:
        return bytes(_CODEC.encode(_mutate_value(value, rng))) + data[end:]
    except Exception:
        return mutate_bytes(data, rng, corpus)


def _decode_prefix(data: bytes) -> tuple[object, int]:
    from p2pshare.core.bencode import decode_prefix

    return decode_prefix(data)


def mutate(data: bytes, rng: random.Random, corpus: list[bytes], structured: bool) -> bytes:
    """A structure-aware mutation half the time when the target's seeds are bencode, else byte-level."""
    fn: Callable[[bytes, random.Random, list[bytes]], bytes]
    fn = mutate_bencode if structured and rng.random() < 0.5 else mutate_bytes
    out = fn(data, rng, corpus)
    if rng.random() < 0.2:
        out = mutate_bytes(out, rng, corpus)
    return out
