"""The manifest: a BitTorrent v1 info dict, its info hash, and the .torrent around it.

Parsing validates everything a hostile manifest could use against us: lengths and
piece counts that disagree, path components that would climb out of the download
folder, sizes over the configured caps.  Every failure is a
:class:`~p2pshare.errors.MetainfoError` that says what is wrong.

The info hash is always the SHA-1 of the info dict's bytes *as received*
(:func:`p2pshare.core.bencode.find_info_span`), never of a re-encoding.

Building from disk is split: :mod:`p2pshare.io.hasher` walks and hashes files (I/O);
:func:`build_info` here turns the file list and piece hashes into the dict.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

from p2pshare.config import BencodeLimits, MetainfoLimits
from p2pshare.core import bencode
from p2pshare.core.geometry import Geometry
from p2pshare.core.types import InfoHash
from p2pshare.errors import BencodeError, MetainfoError

__all__ = [
    "FileEntry",
    "Info",
    "Metainfo",
    "build_info",
    "choose_piece_length",
    "encode_torrent",
    "parse_info",
    "parse_torrent",
    "validate_component",
]

_DEFAULT_LIMITS = MetainfoLimits()


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of the payload: its path components under the torrent's name, and length."""

    path: tuple[str, ...]
    length: int
    offset: int  #: where the file starts in the torrent's byte stream

    @property
    def display_path(self) -> str:
        return "/".join(self.path)


@dataclass(frozen=True)
class Info:
    """A validated info dict.  ``raw`` holds the exact bytes its hash was taken over."""

    name: str
    piece_length: int
    pieces: bytes
    files: tuple[FileEntry, ...]
    single_file: bool
    private: bool
    raw: bytes = field(repr=False)

    @cached_property
    def info_hash(self) -> InfoHash:
        return InfoHash(hashlib.sha1(self.raw).digest())

    @cached_property
    def geometry(self) -> Geometry:
        return Geometry(self.piece_length, [f.length for f in self.files])

    @property
    def total_length(self) -> int:
        return self.geometry.total_length

    @property
    def num_pieces(self) -> int:
        return len(self.pieces) // 20

    def piece_hash(self, index: int) -> bytes:
        self.geometry.check_piece(index)
        return self.pieces[index * 20 : index * 20 + 20]

    def file_paths(self) -> list[tuple[str, ...]]:
        """Paths relative to the download folder (the name, then the file's path)."""
        if self.single_file:
            return [(self.name,)]
        return [(self.name, *f.path) for f in self.files]


@dataclass(frozen=True)
class Metainfo:
    """A .torrent file: the info dict plus the optional fields around it."""

    info: Info
    announce: str | None = None
    announce_list: tuple[tuple[str, ...], ...] = ()  #: BEP 12 tiers; malformed entries are skipped
    comment: str | None = None
    created_by: str | None = None
    creation_date: int | None = None

    @property
    def info_hash(self) -> InfoHash:
        return self.info.info_hash


def validate_component(component: bytes, limits: MetainfoLimits = _DEFAULT_LIMITS) -> str:
    """Check one path component (or the torrent name) and return it as text.

    Rejects what could escape the download folder or cannot be a file name:
    empty, ``.``, ``..``, separators, NUL, drive letters, and over-long names.
    """
    if not isinstance(component, bytes):
        raise MetainfoError("a path component must be a byte string")
    if not component:
        raise MetainfoError("empty path component")
    if component in (b".", b".."):
        raise MetainfoError(f"path component {component!r} is not allowed")
    for bad in (b"/", b"\\", b"\x00"):
        if bad in component:
            raise MetainfoError(f"path component {component[:64]!r} contains {bad!r}")
    if len(component) > limits.max_component_bytes:
        raise MetainfoError(f"path component longer than {limits.max_component_bytes} bytes")
    if len(component) >= 2 and component[1:2] == b":" and component[:1].isalpha():
        raise MetainfoError(f"path component {component[:64]!r} looks like an absolute (drive) path")
    return component.decode("utf-8", errors="surrogateescape")


def _get(d: dict[bytes, object], key: bytes, kind: type, what: str, required: bool = True) -> object:
    value = d.get(key)
    if value is None:
        if required:
            raise MetainfoError(f"{what} is missing")
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise MetainfoError(f"{what} must be {'an integer' if kind is int else kind.__name__}")
    return value


def parse_info(raw: bytes, limits: MetainfoLimits = _DEFAULT_LIMITS) -> Info:
    """Validate a bencoded info dict (as received) and return :class:`Info`."""
    if len(raw) > limits.max_metadata_size:
        raise MetainfoError(
            f"info dict of {len(raw)} bytes exceeds the {limits.max_metadata_size}-byte metadata cap"
        )
    try:
        d = bencode.decode(raw, BencodeLimits(max_input=limits.max_metadata_size))
    except BencodeError as exc:
        raise MetainfoError(f"info dict is not valid bencode: {exc}") from None
    if not isinstance(d, dict):
        raise MetainfoError("info must be a dictionary")
    name_raw = _get(d, b"name.utf-8", bytes, "info.name.utf-8", required=False) or _get(
        d, b"name", bytes, "info.name"
    )
    assert isinstance(name_raw, bytes)
    name = validate_component(name_raw, limits)
    piece_length = _get(d, b"piece length", int, "info.piece length")
    assert isinstance(piece_length, int)
    if piece_length <= 0:
        raise MetainfoError(f"piece length must be positive, got {piece_length}")
    if piece_length > limits.max_parse_piece_length:
        raise MetainfoError(f"piece length {piece_length} exceeds {limits.max_parse_piece_length}")
    pieces = _get(d, b"pieces", bytes, "info.pieces")
    assert isinstance(pieces, bytes)
    if len(pieces) % 20:
        raise MetainfoError(f"pieces is {len(pieces)} bytes, not a multiple of 20")
    private = d.get(b"private") == 1

    has_length = b"length" in d
    has_files = b"files" in d
    if has_length == has_files:
        raise MetainfoError("info must have exactly one of 'length' (single file) or 'files'")
    entries: list[FileEntry] = []
    offset = 0
    if has_length:
        length = _get(d, b"length", int, "info.length")
        assert isinstance(length, int)
        if length < 0:
            raise MetainfoError(f"file length must not be negative, got {length}")
        entries.append(FileEntry((name,), length, 0))
        offset = length
    else:
        files = _get(d, b"files", list, "info.files")
        assert isinstance(files, list)
        if not files:
            raise MetainfoError("info.files is empty")
        if len(files) > limits.max_files:
            raise MetainfoError(f"{len(files)} files exceed the limit of {limits.max_files}")
        seen: set[tuple[str, ...]] = set()
        prefixes: set[tuple[str, ...]] = set()
        for i, entry in enumerate(files):
            if not isinstance(entry, dict):
                raise MetainfoError(f"info.files[{i}] must be a dictionary")
            length = _get(entry, b"length", int, f"info.files[{i}].length")
            assert isinstance(length, int)
            if length < 0:
                raise MetainfoError(f"info.files[{i}].length must not be negative, got {length}")
            path_list = _get(
                entry, b"path.utf-8", list, f"info.files[{i}].path.utf-8", required=False
            ) or _get(entry, b"path", list, f"info.files[{i}].path")
            assert isinstance(path_list, list)
            if not path_list:
                raise MetainfoError(f"info.files[{i}].path is empty")
            if len(path_list) > limits.max_path_components:
                raise MetainfoError(f"info.files[{i}].path has more than {limits.max_path_components} parts")
            path = tuple(validate_component(c, limits) for c in path_list)
            if path in seen or path in prefixes:
                raise MetainfoError(f"info.files[{i}] path {'/'.join(path)!r} collides with another file")
            seen.add(path)
            for k in range(1, len(path)):
                prefixes.add(path[:k])
            entries.append(FileEntry(path, length, offset))
            offset += length
        if any(p in prefixes for p in seen):
            raise MetainfoError("a file path is also used as a folder")
    expected = (offset + piece_length - 1) // piece_length
    if len(pieces) // 20 != expected:
        raise MetainfoError(
            f"pieces holds {len(pieces) // 20} hashes but {offset} bytes in pieces of "
            f"{piece_length} need {expected}"
        )
    if offset == 0:
        raise MetainfoError("the torrent holds no data (total length 0)")
    return Info(
        name=name,
        piece_length=piece_length,
        pieces=pieces,
        files=tuple(entries),
        single_file=has_length,
        private=private,
        raw=bytes(raw),
    )


def parse_torrent(data: bytes, limits: MetainfoLimits = _DEFAULT_LIMITS) -> Metainfo:
    """Parse a whole .torrent file, or a bare bencoded info dict."""
    if len(data) > limits.max_torrent_file:
        raise MetainfoError(f"torrent of {len(data)} bytes exceeds the {limits.max_torrent_file}-byte cap")
    blimits = BencodeLimits(max_input=limits.max_torrent_file)
    try:
        top = bencode.decode(data, blimits)
    except BencodeError as exc:
        raise MetainfoError(f"not a valid torrent (bad bencode: {exc})") from None
    if not isinstance(top, dict):
        raise MetainfoError("not a valid torrent: the top level must be a dictionary")
    if b"info" not in top:
        if b"pieces" in top and b"piece length" in top:
            return Metainfo(parse_info(bytes(data), limits))
        raise MetainfoError("not a valid torrent: no 'info' dictionary")
    start, end = bencode.find_info_span(data, blimits)
    info = parse_info(bytes(data[start:end]), limits)

    def text(key: bytes) -> str | None:
        value = top.get(key)
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else None

    date = top.get(b"creation date")
    return Metainfo(
        info=info,
        announce=text(b"announce"),
        announce_list=_announce_list(top.get(b"announce-list")),
        comment=text(b"comment"),
        created_by=text(b"created by"),
        creation_date=date if isinstance(date, int) and not isinstance(date, bool) else None,
    )


def _announce_list(value: object) -> tuple[tuple[str, ...], ...]:
    """BEP 12 ``announce-list``: a list of tiers, each a list of URLs; anything else is skipped."""
    if not isinstance(value, list):
        return ()
    tiers = []
    for tier in value:
        if isinstance(tier, list):
            urls = tuple(u.decode("utf-8", "replace") for u in tier if isinstance(u, bytes) and u)
            if urls:
                tiers.append(urls)
    return tuple(tiers)


def choose_piece_length(total: int, limits: MetainfoLimits = _DEFAULT_LIMITS) -> int:
    """Smallest power of two in [min, max] that keeps the piece count at most ``target_pieces_high``.

    That lands between ``target_pieces_low`` and ``target_pieces_high`` pieces whenever
    the size allows it (a power-of-two step halves the count).
    """
    length = limits.min_piece_length
    while length < limits.max_piece_length and (total + length - 1) // length > limits.target_pieces_high:
        length *= 2
    return length


def build_info(
    name: str,
    files: Sequence[tuple[tuple[str, ...], int]],
    piece_length: int,
    pieces: bytes,
    *,
    single_file: bool,
    private: bool = False,
) -> Info:
    """Assemble and validate an info dict from a file list and the piece hashes.

    ``files`` are (path components under ``name``, length), already in their final
    (sorted) order.  The result is parsed back, so what we build obeys what we check.
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
        d[b"files"] = [
            {b"length": length, b"path": [c.encode("utf-8", "surrogateescape") for c in path]}
            for path, length in files
        ]
    if private:
        d[b"private"] = 1
    return parse_info(bencode.encode(d))


def encode_torrent(
    info: Info,
    *,
    announce: str | None = None,
    announce_list: Sequence[Sequence[str]] = (),
    comment: str | None = None,
    created_by: str | None = None,
    creation_date: int | None = None,
) -> bytes:
    """Bencode a .torrent around the info dict's exact bytes (so its hash is kept)."""
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
    # Keys sorted: announce < announce-list < comment < created by < creation date < info.
    encoded = bencode.encode(top)
    return encoded[:-1] + b"4:info" + info.raw + b"e"
