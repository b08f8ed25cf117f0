"""Assemble manifests from a file list and hashes, and bencode the .torrent around them.

Building from disk is split: :mod:`p2pshare.io.hasher` walks and hashes files (I/O);
the functions here turn the file list and the hashes into an info dict, and parse
the result back, so what we build obeys what we check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from p2pshare.config import MetainfoLimits
from p2pshare.core import bencode, merkle
from p2pshare.core.metainfo.fields import DEFAULT_LIMITS
from p2pshare.core.metainfo.model import Info
from p2pshare.core.metainfo.parse import parse_info
from p2pshare.core.metainfo.v2 import check_piece_layers
from p2pshare.errors import MetainfoError

__all__ = ["build_info", "build_info_v2", "choose_piece_length", "encode_torrent"]


def choose_piece_length(total: int, limits: MetainfoLimits = DEFAULT_LIMITS) -> int:
    """Smallest power of two in [min, max] that keeps the piece count at most ``target_pieces_high``.

    That lands between ``target_pieces_low`` and ``target_pieces_high`` pieces whenever
    the size allows it (a power-of-two step halves the count).
    """
    length = limits.min_piece_length
    while length < limits.max_piece_length and (total + length - 1) // length > limits.target_pieces_high:
        length *= 2
    return length


def _encode_path(path: Sequence[str]) -> list[bytes]:
    return [c.encode("utf-8", "surrogateescape") for c in path]


def build_info(
    name: str,
    files: Sequence[tuple[tuple[str, ...], int]],
    piece_length: int,
    pieces: bytes,
    *,
    single_file: bool,
    private: bool = False,
) -> Info:
    """Assemble and validate a v1 info dict from a file list and the piece hashes.

    ``files`` are (path components under ``name``, length), already in their final
    (sorted) order.
    """
    d: dict[bytes, object] = {
        b"name": name.encode("utf-8", "surrogateescape"),
        b"piece length": piece_length,
        b"pieces": pieces,
    }
    if single_file:
        if len(files) != 1:
            raise MetainfoError("a single-file torrent has exactly one file")
        d[b"length"] = files[0][1]
    else:
        d[b"files"] = [{b"length": length, b"path": _encode_path(path)} for path, length in files]
    if private:
        d[b"private"] = 1
    return parse_info(bencode.encode(d))


def build_info_v2(
    name: str,
    files: Sequence[tuple[tuple[str, ...], int]],
    piece_length: int,
    piece_hashes: Sequence[Sequence[bytes]],
    *,
    single_file: bool,
    v1_pieces: bytes | None = None,
    private: bool = False,
) -> tuple[Info, dict[bytes, bytes]]:
    """Assemble a v2 (or, with ``v1_pieces``, hybrid) info dict; return it and its piece layers.

    ``files`` are in tree order (path components sorted bytewise).  ``piece_hashes[i]``
    holds file ``i``'s :func:`~p2pshare.core.merkle.piece_hash` values, one per piece
    (none for an empty file).  ``v1_pieces`` are the SHA-1 hashes of the same pieces
    with every file of a folder (the last one too) padded with zeros to a piece boundary.
    """
    if len(piece_hashes) != len(files):
        raise MetainfoError("one list of piece hashes per file is needed")
    if single_file and len(files) != 1:
        raise MetainfoError("a single-file torrent has exactly one file")
    tree: dict[bytes, object] = {}
    layers: dict[bytes, bytes] = {}
    for (path, length), hashes in zip(files, piece_hashes, strict=True):
        count = (length + piece_length - 1) // piece_length
        if len(hashes) != count:
            raise MetainfoError(f"{'/'.join(path)!r}: {len(hashes)} piece hashes for {count} pieces")
        props: dict[bytes, object] = {b"length": length}
        if length > piece_length:
            root = merkle.root_from_piece_layer(hashes, piece_length, length)
            layers[root] = b"".join(hashes)
            props[b"pieces root"] = root
        elif length:
            props[b"pieces root"] = hashes[0]
        node = tree
        key_path = (name,) if single_file else path
        for part in _encode_path(key_path[:-1]):
            child = node.setdefault(part, {})
            assert isinstance(child, dict)
            node = child
        node[_encode_path(key_path[-1:])[0]] = {b"": props}
    d: dict[bytes, object] = {
        b"file tree": tree,
        b"meta version": 2,
        b"name": name.encode("utf-8", "surrogateescape"),
        b"piece length": piece_length,
    }
    if v1_pieces is not None:
        d[b"pieces"] = v1_pieces
        if single_file:
            d[b"length"] = files[0][1]
        else:
            # Like libtorrent, pad every file to a piece boundary, the last one too:
            # the same folder then gives the same info dict (and swarm) in both tools.
            v1_files: list[dict[bytes, object]] = []
            for path, length in files:
                v1_files.append({b"length": length, b"path": _encode_path(path)})
                pad = -length % piece_length
                if pad:
                    v1_files.append({b"attr": b"p", b"length": pad, b"path": [b".pad", str(pad).encode()]})
            d[b"files"] = v1_files
    if private:
        d[b"private"] = 1
    info = parse_info(bencode.encode(d))
    return info, check_piece_layers(layers, info.files, piece_length)


def encode_torrent(
    info: Info,
    *,
    announce: str | None = None,
    announce_list: Sequence[Sequence[str]] = (),
    comment: str | None = None,
    created_by: str | None = None,
    creation_date: int | None = None,
    piece_layers: Mapping[bytes, bytes] | None = None,
) -> bytes:
    """Bencode a .torrent around the info dict's exact bytes (so its hashes are kept)."""
    top: dict[bytes, object] = {}
    if announce:
        top[b"announce"] = announce.encode()
    tiers = [[url.encode() for url in tier] for tier in announce_list if tier]
    if tiers:
        top[b"announce-list"] = tiers
    if comment:
        top[b"comment"] = comment.encode()
    if created_by:
        top[b"created by"] = created_by.encode()
    if creation_date is not None:
        top[b"creation date"] = creation_date
    # Keys sorted: announce < announce-list < comment < created by < creation date < info < piece layers.
    encoded = bencode.encode(top)
    tail = b""
    if info.meta_version == 2:
        tail = b"12:piece layers" + bencode.encode(dict(piece_layers or {}))
    return encoded[:-1] + b"4:info" + info.raw + tail + b"e"
