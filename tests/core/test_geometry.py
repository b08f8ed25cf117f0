"""Piece and block geometry, and piece <-> file spans at file boundaries."""

from __future__ import annotations

import pytest

from p2pshare.core.geometry import BlockRef, FileSpan, Geometry

KiB = 1024


def test_piece_spans_across_several_files() -> None:
    """A piece that covers three files (one empty) maps to two-plus spans in order, skipping the empty one."""
    g = Geometry(100, [30, 0, 50, 10, 200])
    assert g.total_length == 290
    assert g.num_pieces == 3
    assert g.piece_spans(0) == [
        FileSpan(0, 0, 30),
        FileSpan(2, 0, 50),
        FileSpan(3, 0, 10),
        FileSpan(4, 0, 10),
    ]
    assert g.piece_spans(1) == [FileSpan(4, 10, 100)]
    assert g.piece_spans(2) == [FileSpan(4, 110, 90)]


def test_last_piece_is_short() -> None:
    """Only the last piece is shorter; its size is the remainder."""
    g = Geometry(16 * KiB, [40000])
    assert g.num_pieces == 3
    assert [g.piece_size(i) for i in range(3)] == [16384, 16384, 40000 - 32768]


def test_exact_multiple_has_no_short_piece() -> None:
    """When the total is a multiple of the piece length every piece is full."""
    g = Geometry(100, [150, 50])
    assert g.num_pieces == 2
    assert g.piece_size(1) == 100
    assert g.piece_spans(1) == [FileSpan(0, 100, 50), FileSpan(1, 0, 50)]


def test_empty_files_at_edges() -> None:
    """Empty files at the start, in the middle and at the end occupy no bytes."""
    g = Geometry(10, [0, 5, 0, 0, 5, 0])
    assert g.piece_spans(0) == [FileSpan(1, 0, 5), FileSpan(4, 0, 5)]
    assert [sum(g.file_lengths[:i]) for i in range(6)] == [0, 0, 5, 5, 5, 10]
    assert g.file_progress(range(g.num_pieces)) == [0, 5, 0, 0, 5, 0]


def test_file_progress_counts_the_bytes_of_verified_pieces_in_each_file() -> None:
    """file_progress gives each file's bytes inside the verified pieces, split at file edges."""
    g = Geometry(10, [15, 3, 0, 12])  # pieces: [0,10) [10,20) [20,30); the last is full
    assert g.file_progress(set()) == [0, 0, 0, 0]
    assert g.file_progress({0}) == [10, 0, 0, 0]
    assert g.file_progress({1}) == [5, 3, 0, 2]
    assert g.file_progress({2}) == [0, 0, 0, 10]
    assert g.file_progress({0, 1, 2}) == [15, 3, 0, 12]


def test_pieces_for_file() -> None:
    """pieces_for_file lists every piece holding a byte of the file; empty files have none."""
    g = Geometry(100, [30, 0, 170, 100, 1])
    assert g.pieces_for_file(0) == range(0, 1)
    assert g.pieces_for_file(1) == range(0)
    assert g.pieces_for_file(2) == range(0, 2)
    assert g.pieces_for_file(3) == range(2, 3)
    assert g.pieces_for_file(4) == range(3, 4)


def test_spans_of_arbitrary_range() -> None:
    """spans() cuts any byte range at file boundaries."""
    g = Geometry(64, [10, 20, 30])
    assert g.spans(5, 30) == [FileSpan(0, 5, 5), FileSpan(1, 0, 20), FileSpan(2, 0, 5)]
    assert g.spans(10, 0) == []
    assert g.spans(59, 1) == [FileSpan(2, 29, 1)]


@pytest.mark.parametrize(("offset", "length"), [(-1, 1), (0, 61), (60, 1), (0, -1)])
def test_spans_out_of_range(offset: int, length: int) -> None:
    """A range outside the torrent raises IndexError."""
    with pytest.raises(IndexError):
        Geometry(64, [10, 20, 30]).spans(offset, length)


def test_blocks_of_pieces() -> None:
    """Pieces split into 16 KiB blocks; the last block of the last piece is short."""
    g = Geometry(64 * KiB, [100 * KiB + 5])
    assert g.blocks_in_piece(0) == 4
    assert g.blocks_in_piece(1) == 3
    assert g.blocks(1) == [
        BlockRef(1, 0, 16 * KiB),
        BlockRef(1, 16 * KiB, 16 * KiB),
        BlockRef(1, 32 * KiB, 4 * KiB + 5),
    ]
    with pytest.raises(IndexError):
        g.block(1, 3)


def test_piece_smaller_than_block() -> None:
    """A piece length below the block size makes one block per piece."""
    g = Geometry(1000, [2500], block_size=16 * KiB)
    assert [g.blocks(i) for i in range(3)] == [
        [BlockRef(0, 0, 1000)],
        [BlockRef(1, 0, 1000)],
        [BlockRef(2, 0, 500)],
    ]


@pytest.mark.parametrize(
    ("piece", "begin", "length", "ok"),
    [
        (0, 0, 16 * KiB, True),
        (1, 16 * KiB, 4 * KiB + 5, True),
        (1, 16 * KiB, 4 * KiB + 6, False),  # runs past the short last piece
        (0, 0, 16 * KiB + 1, False),  # longer than a block
        (0, 0, 0, False),
        (0, -1, 10, False),
        (2, 0, 1, False),
        (-1, 0, 1, False),
    ],
)
def test_is_valid_request(piece: int, begin: int, length: int, ok: bool) -> None:
    """Requests inside a piece and no longer than a block are valid; others are not."""
    g = Geometry(32 * KiB, [52 * KiB + 5])
    assert g.is_valid_request(piece, begin, length) is ok


def test_piece_index_checked() -> None:
    """Piece indices outside 0..num_pieces-1 raise IndexError."""
    g = Geometry(100, [250])
    for bad in (-1, 3):
        with pytest.raises(IndexError):
            g.piece_size(bad)
        with pytest.raises(IndexError):
            g.piece_spans(bad)


def test_invalid_construction() -> None:
    """A non-positive piece length or a negative file length is refused."""
    with pytest.raises(ValueError):
        Geometry(0, [1])
    with pytest.raises(ValueError):
        Geometry(16, [1, -1])


def test_zero_total_has_no_pieces() -> None:
    """A geometry of empty files has no pieces."""
    g = Geometry(16, [0, 0])
    assert (g.total_length, g.num_pieces) == (0, 0)
