"""Build v2 and hybrid manifests from bytes in memory, independently of io/hasher."""

from __future__ import annotations

import hashlib
from typing import Any

from p2pshare.core import bencode, merkle
from p2pshare.core.metainfo import Info, build_info_v2

Files = list[tuple[tuple[str, ...], bytes]]


def piece_hashes(data: bytes, piece_length: int) -> list[bytes]:
    """One merkle piece hash per piece of one file."""
    return [
        merkle.piece_hash(data[i : i + piece_length], piece_length, len(data))
        for i in range(0, len(data), piece_length)
    ]


def aligned_stream(files: Files, piece_length: int, *, pad_last: bool = False) -> bytes:
    """The files joined, each padded with zeros to a piece boundary (the last one only with
    ``pad_last``, as a hybrid folder's v1 half does)."""
    out = bytearray()
    for i, (_, data) in enumerate(files):
        out += data
        if pad_last or i < len(files) - 1:
            out += bytes(-len(data) % piece_length)
    return bytes(out)


def v1_pieces(files: Files, piece_length: int, *, pad_last: bool = True) -> bytes:
    stream = aligned_stream(files, piece_length, pad_last=pad_last)
    return b"".join(
        hashlib.sha1(stream[i : i + piece_length]).digest() for i in range(0, len(stream), piece_length)
    )


def build(
    files: Files,
    piece_length: int = 16384,
    *,
    hybrid: bool = False,
    name: str = "share",
    single: bool = False,
) -> tuple[Info, dict[bytes, bytes]]:
    """A v2 (or hybrid) manifest of ``files`` (already in tree order)."""
    return build_info_v2(
        name,
        [(path, len(data)) for path, data in files],
        piece_length,
        [piece_hashes(data, piece_length) for _, data in files],
        single_file=single,
        v1_pieces=v1_pieces(files, piece_length, pad_last=not single) if hybrid else None,
    )


def info_dict(info: Info) -> dict[bytes, Any]:
    """The decoded info dict, to mutate in tests."""
    d = bencode.decode(info.raw)
    assert isinstance(d, dict)
    return d


def torrent(info_d: dict[bytes, Any], layers: dict[bytes, bytes] | None) -> bytes:
    top: dict[bytes, Any] = {b"info": info_d}
    if layers is not None:
        top[b"piece layers"] = layers
    return bencode.encode(top)
