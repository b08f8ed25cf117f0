"""What a parsed manifest is: files, the info dict, its hashes, and the .torrent around it.

One :class:`Info` describes v1, v2 and hybrid manifests alike.  ``files`` is always
the layout of the piece address space: for v1 the ``files`` list as given (BEP 47
pad files marked ``pad``), for hybrid the v1 list (its pad files align every file
to a piece), and for v2-only the file tree's files with the same pad entries
inserted, so piece ``i`` is the same bytes in every format and one
:class:`~p2pshare.core.geometry.Geometry` serves them all.  Pad files hold zeros and
are never written to disk.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from p2pshare.core import merkle
from p2pshare.core.geometry import Geometry
from p2pshare.core.types import InfoHash, InfoHashV2
from p2pshare.errors import MetainfoError

__all__ = ["FileEntry", "Format", "Info", "Metainfo"]

Format = Literal["v1", "v2", "hybrid"]


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of the payload: its path components under the torrent's name, and length."""

    path: tuple[str, ...]
    length: int
    offset: int  #: where the file starts in the torrent's byte stream
    pad: bool = False  #: a BEP 47 pad file: zeros that align the next file to a piece
    pieces_root: bytes | None = None  #: v2 merkle root (None for empty, pad and v1-only files)

    @property
    def display_path(self) -> str:
        return "/".join(self.path)


@dataclass(frozen=True)
class Info:
    """A validated info dict.  ``raw`` holds the exact bytes its hashes were taken over."""

    name: str
    piece_length: int
    pieces: bytes  #: v1 SHA-1 piece hashes (empty for a v2-only manifest)
    files: tuple[FileEntry, ...]
    single_file: bool
    private: bool
    raw: bytes = field(repr=False)
    meta_version: int = 1  #: 2 for v2 and hybrid manifests (BEP 52 ``meta version``)
    has_v1: bool = True  #: v1 or hybrid: ``pieces`` and a v1 file list are present

    @property
    def format(self) -> Format:
        if self.meta_version == 2:
            return "hybrid" if self.has_v1 else "v2"
        return "v1"

    @cached_property
    def info_hash_v1(self) -> InfoHash | None:
        """SHA-1 of the info dict (v1 and hybrid), None for v2-only."""
        return InfoHash(hashlib.sha1(self.raw).digest()) if self.has_v1 else None

    @cached_property
    def info_hash_v2(self) -> InfoHashV2 | None:
        """SHA-256 of the info dict (v2 and hybrid), None for v1-only."""
        return InfoHashV2(hashlib.sha256(self.raw).digest()) if self.meta_version == 2 else None

    @cached_property
    def info_hash(self) -> InfoHash:
        """The 20-byte swarm id: the v1 hash, or for v2-only the truncated v2 hash."""
        if self.info_hash_v1 is not None:
            return self.info_hash_v1
        assert self.info_hash_v2 is not None
        return self.info_hash_v2.truncated

    @cached_property
    def geometry(self) -> Geometry:
        return Geometry(self.piece_length, [f.length for f in self.files])

    @property
    def total_length(self) -> int:
        """Bytes of the piece address space (pad files included)."""
        return self.geometry.total_length

    @property
    def data_length(self) -> int:
        """Bytes of real files (pad files excluded)."""
        return sum(f.length for f in self.files if not f.pad)

    @property
    def num_pieces(self) -> int:
        return self.geometry.num_pieces

    def piece_hash(self, index: int) -> bytes:
        """The v1 SHA-1 of piece ``index``."""
        self.geometry.check_piece(index)
        if not self.has_v1:
            raise MetainfoError("a v2-only manifest has no SHA-1 piece hashes: verify by merkle root")
        return self.pieces[index * 20 : index * 20 + 20]

    def v2_piece(self, index: int) -> tuple[int, int]:
        """(index in ``files`` of the file piece ``index`` lies in, piece number within that file)."""
        self.geometry.check_piece(index)
        if self.meta_version != 2:
            raise MetainfoError("a v1 manifest has no merkle trees")
        span = self.geometry.piece_spans(index)[0]
        entry = self.files[span.file_index]
        return span.file_index, (self.geometry.piece_offset(index) - entry.offset) // self.piece_length

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
    #: BEP 52 ``piece layers``: pieces root -> concatenated piece-layer hashes (checked)
    piece_layers: Mapping[bytes, bytes] = field(default_factory=dict)

    @property
    def info_hash(self) -> InfoHash:
        return self.info.info_hash

    def v2_piece_hash(self, index: int) -> bytes:
        """The merkle hash piece ``index`` must match (:func:`p2pshare.core.merkle.piece_hash`)."""
        file_index, k = self.info.v2_piece(index)
        entry = self.info.files[file_index]
        assert entry.pieces_root is not None
        if entry.length <= self.info.piece_length:
            return entry.pieces_root
        layer = self.piece_layers.get(entry.pieces_root)
        if layer is None:
            raise MetainfoError(f"no piece layer for {entry.display_path}: fetch it from peers")
        return layer[k * 32 : k * 32 + 32]

    def has_v2_piece_hash(self, index: int) -> bool:
        """True when :meth:`v2_piece_hash` can answer (the file fits in a piece, or its layer is known)."""
        file_index, _ = self.info.v2_piece(index)
        entry = self.info.files[file_index]
        return entry.length <= self.info.piece_length or entry.pieces_root in self.piece_layers

    def verify_piece(self, index: int, data: bytes | bytearray | memoryview) -> bool:
        """Check a whole piece (as the geometry sizes it, pad zeros included) against every hash
        we know for it: SHA-1 for v1 and hybrid, the merkle piece hash for v2 and hybrid.

        A hybrid must match both (BEP 52).  MetainfoError when no hash is known yet (a v2
        piece whose layer has not been fetched).
        """
        info = self.info
        if len(data) != info.geometry.piece_size(index):
            return False
        checked = False
        if info.has_v1:
            if hashlib.sha1(data).digest() != info.piece_hash(index):
                return False
            checked = True
        if info.meta_version == 2 and self.has_v2_piece_hash(index):
            file_index, k = info.v2_piece(index)
            entry = info.files[file_index]
            real = min(info.piece_length, entry.length - k * info.piece_length)
            view = memoryview(data).cast("B")
            if view[real:] != bytes(len(view) - real):  # the pad after a file's last piece holds zeros
                return False
            if merkle.piece_hash(view[:real], info.piece_length, entry.length) != self.v2_piece_hash(index):
                return False
            checked = True
        if not checked:
            raise MetainfoError(f"no hash known for piece {index} yet: fetch the piece layer from peers")
        return True
