"""Piece and block arithmetic, and mapping pieces onto file spans.

A torrent's payload is the concatenation of its files in order.  Pieces of
``piece_length`` bytes (the last one shorter) cut across file boundaries, and
requests on the wire are 16 KiB blocks within a piece.  :class:`Geometry` checks
ranges once so the rest of the code can trust the numbers (rqbit ``lengths.rs``).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from p2pshare.config import BLOCK_SIZE

__all__ = ["BlockRef", "FileSpan", "Geometry"]


@dataclass(frozen=True, slots=True)
class FileSpan:
    """A run of bytes inside one file: ``length`` bytes at ``offset`` of file ``file_index``."""

    file_index: int
    offset: int
    length: int


class BlockRef(NamedTuple):
    """One 16 KiB request: ``length`` bytes at ``begin`` inside piece ``piece``.

    The one block type of the picker, the wire and the engine.  It *is* the tuple
    ``(piece, begin, length)``: the wire keys its request sets with it and looks
    blocks up with plain tuples on the hot path, which compare and hash the same.
    """

    piece: int
    begin: int
    length: int


class Geometry:
    """The shape of a torrent: total length, piece length and file boundaries."""

    __slots__ = ("_starts", "block_size", "file_lengths", "num_pieces", "piece_length", "total_length")

    def __init__(self, piece_length: int, file_lengths: Sequence[int], block_size: int = BLOCK_SIZE) -> None:
        if piece_length <= 0:
            raise ValueError("piece length must be positive")
        if any(length < 0 for length in file_lengths):
            raise ValueError("file lengths must be non-negative")
        self.piece_length = piece_length
        self.block_size = block_size
        self.file_lengths = tuple(file_lengths)
        starts = []
        total = 0
        for length in self.file_lengths:
            starts.append(total)
            total += length
        self._starts = starts
        self.total_length = total
        self.num_pieces = (total + piece_length - 1) // piece_length

    def check_piece(self, index: int) -> None:
        if not 0 <= index < self.num_pieces:
            raise IndexError(f"piece index {index} out of range 0..{self.num_pieces - 1}")

    def piece_size(self, index: int) -> int:
        """Length of piece ``index``; only the last piece may be shorter."""
        self.check_piece(index)
        if index == self.num_pieces - 1:
            return self.total_length - index * self.piece_length
        return self.piece_length

    def piece_offset(self, index: int) -> int:
        self.check_piece(index)
        return index * self.piece_length

    def blocks_in_piece(self, index: int) -> int:
        return (self.piece_size(index) + self.block_size - 1) // self.block_size

    def block(self, piece: int, block_index: int) -> BlockRef:
        size = self.piece_size(piece)
        begin = block_index * self.block_size
        if not 0 <= begin < size:
            raise IndexError(f"block {block_index} out of range in piece {piece}")
        return BlockRef(piece, begin, min(self.block_size, size - begin))

    def blocks(self, piece: int) -> list[BlockRef]:
        return [self.block(piece, b) for b in range(self.blocks_in_piece(piece))]

    def is_valid_request(self, piece: int, begin: int, length: int, max_length: int = BLOCK_SIZE) -> bool:
        """True if (piece, begin, length) lies inside the torrent and is not too long."""
        if not 0 <= piece < self.num_pieces or length <= 0 or length > max_length or begin < 0:
            return False
        return begin + length <= self.piece_size(piece)

    def spans(self, offset: int, length: int) -> list[FileSpan]:
        """File spans covering ``length`` bytes from torrent ``offset``.

        Empty files occupy no bytes and never appear in a span.
        """
        if offset < 0 or length < 0 or offset + length > self.total_length:
            raise IndexError(f"range {offset}+{length} outside torrent of {self.total_length} bytes")
        result: list[FileSpan] = []
        if length == 0:
            return result
        i = bisect_right(self._starts, offset) - 1
        end = offset + length
        while offset < end:
            file_end = self._starts[i] + self.file_lengths[i]
            if file_end > offset:
                take = min(end, file_end) - offset
                result.append(FileSpan(i, offset - self._starts[i], take))
                offset += take
            i += 1
        return result

    def piece_spans(self, index: int) -> list[FileSpan]:
        """File spans that piece ``index`` covers, in order."""
        return self.spans(self.piece_offset(index), self.piece_size(index))

    def pieces_for_file(self, file_index: int) -> range:
        """Pieces that hold at least one byte of the file (empty range for empty files)."""
        start = self._starts[file_index]
        length = self.file_lengths[file_index]
        if length == 0:
            return range(0)
        return range(start // self.piece_length, (start + length - 1) // self.piece_length + 1)

    def file_progress(self, have: Container[int]) -> list[int]:
        """Bytes of each file that lie in the pieces of ``have`` (verified bytes per file)."""
        out: list[int] = []
        for i, length in enumerate(self.file_lengths):
            start, end = self._starts[i], self._starts[i] + length
            done = 0
            for p in self.pieces_for_file(i):
                if p in have:
                    piece_start = p * self.piece_length
                    done += min(piece_start + self.piece_size(p), end) - max(piece_start, start)
            out.append(done)
        return out
