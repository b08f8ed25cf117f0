"""Hypothesis properties of geometry: piece spans tile the files exactly once, in order."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pshare.core.bitfield import Bitfield
from p2pshare.core.geometry import Geometry


@settings(deadline=None)  # up to ~40,000 one-byte pieces: slow on a busy machine, never wrong
@given(
    st.lists(st.integers(0, 5000), min_size=1, max_size=8).filter(lambda ls: sum(ls) > 0),
    st.integers(1, 3000),
)
def test_piece_spans_tile_every_file(lengths: list[int], piece_length: int) -> None:
    """Concatenating every piece's spans covers each file once, in order, with no gaps or empty spans."""
    g = Geometry(piece_length, lengths)
    covered = [0] * len(lengths)
    stream = 0
    for index in range(g.num_pieces):
        spans = g.piece_spans(index)
        assert sum(s.length for s in spans) == g.piece_size(index)
        for s in spans:
            assert s.length > 0
            assert s.offset == covered[s.file_index]
            assert sum(lengths[: s.file_index]) + s.offset == stream
            covered[s.file_index] += s.length
            stream += s.length
            assert index in g.pieces_for_file(s.file_index)
    assert covered == lengths
    assert stream == g.total_length == sum(lengths)
    assert g.num_pieces * piece_length >= g.total_length > (g.num_pieces - 1) * piece_length


@settings(deadline=None)  # up to ~40,000 one-byte pieces: slow on a busy machine, never wrong
@given(
    st.lists(st.integers(0, 5000), min_size=1, max_size=8).filter(lambda ls: sum(ls) > 0),
    st.integers(1, 3000),
)
def test_pieces_for_file_matches_spans(lengths: list[int], piece_length: int) -> None:
    """pieces_for_file(i) is exactly the set of pieces whose spans mention file i."""
    g = Geometry(piece_length, lengths)
    mentioned: list[list[int]] = [[] for _ in lengths]
    for p in range(g.num_pieces):
        for file_index in sorted({s.file_index for s in g.piece_spans(p)}):
            mentioned[file_index].append(p)
    for i in range(len(lengths)):
        assert list(g.pieces_for_file(i)) == mentioned[i]


@given(st.integers(1, 200_000), st.integers(1, 40_000))
def test_blocks_tile_each_piece(total: int, piece_length: int) -> None:
    """Blocks of a piece are contiguous, at most one block size, and add up to the piece."""
    g = Geometry(piece_length, [total], block_size=16384)
    for index in {0, g.num_pieces - 1}:
        blocks = g.blocks(index)
        assert blocks[0].begin == 0
        for a, b in itertools.pairwise(blocks):
            assert b.begin == a.begin + a.length
        assert all(0 < b.length <= 16384 for b in blocks)
        assert sum(b.length for b in blocks) == g.piece_size(index)


@given(st.integers(0, 100).flatmap(lambda n: st.tuples(st.just(n), st.sets(st.integers(0, max(n - 1, 0))))))
def test_bitfield_round_trip(case: tuple[int, set[int]]) -> None:
    """A bitfield built from a set of indices gives back the same set through its wire bytes."""
    length, indices = case
    indices = {i for i in indices if i < length}
    bf = Bitfield.from_indices(length, indices)
    again = Bitfield.from_bytes(bf.to_bytes(), length)
    assert set(again) == indices
    assert len(again) == len(indices)
    assert set(again.missing()) == set(range(length)) - indices


@settings(deadline=None)
@given(
    st.lists(st.integers(0, 3000), min_size=1, max_size=6).filter(lambda ls: sum(ls) > 0),
    st.integers(1, 1000),
    st.data(),
)
def test_file_progress_adds_up_to_the_verified_bytes(
    lengths: list[int], piece_length: int, data: st.DataObject
) -> None:
    """Per-file progress sums to the verified pieces' bytes and never exceeds a file's length."""
    g = Geometry(piece_length, lengths)
    have = set(data.draw(st.lists(st.integers(0, g.num_pieces - 1), max_size=g.num_pieces)))
    progress = g.file_progress(have)
    assert sum(progress) == sum(g.piece_size(p) for p in have)
    assert all(0 <= done <= length for done, length in zip(progress, lengths, strict=True))
    assert g.file_progress(range(g.num_pieces)) == lengths
