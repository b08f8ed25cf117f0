"""The picker's priorities: a wanted set (chosen files) and sequential read-ahead.

Strings describe pieces as in test_picker.py: ``"0110"`` is a bitfield over four pieces.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pshare.config import BLOCK_SIZE, PickerConfig
from p2pshare.core.bitfield import Bitfield
from p2pshare.core.geometry import BlockRef, Geometry
from p2pshare.core.picker import PiecePicker

NO_RANDOM = PickerConfig(random_first_pieces=0)


def bits(pattern: str) -> Bitfield:
    """A bitfield from a string of 0/1 characters."""
    return Bitfield.from_indices(len(pattern), (i for i, c in enumerate(pattern) if c == "1"))


def make(wanted: str | None, have: str = "", *, n: int | None = None, blocks: int = 1) -> PiecePicker[str]:
    n = n if n is not None else len(wanted or have)
    geometry = Geometry(blocks * BLOCK_SIZE, [n * blocks * BLOCK_SIZE])
    picker: PiecePicker[str] = PiecePicker(
        geometry,
        bits(have or "0" * n),
        NO_RANDOM,
        random.Random(1),
        wanted=bits(wanted) if wanted is not None else None,
    )
    picker.check_invariants()
    return picker


def picked(picker: PiecePicker[str], peer: str, count: int = 100) -> list[int]:
    return sorted({b.piece for b in picker.pick_blocks(peer, count)})


def test_unwanted_pieces_are_never_picked() -> None:
    """A seed offering every piece is asked only for the wanted ones."""
    picker = make("0110")
    picker.add_peer("s", Bitfield(4, full=True))
    assert picked(picker, "s") == [1, 2]
    picker.check_invariants()


def test_complete_when_every_wanted_piece_is_verified() -> None:
    """The download is complete once the wanted pieces are in, though others are missing."""
    picker = make("0110")
    assert not picker.complete and picker.left == 2
    picker.piece_verified(1)
    assert not picker.complete
    picker.piece_verified(2)
    assert picker.complete and picker.left == 0
    assert 0 not in picker.have and 3 not in picker.have


def test_a_peer_with_only_unwanted_pieces_is_not_interesting() -> None:
    """Interest counts only pieces we want, for bitfields, haves and seeds."""
    picker = make("0110")
    picker.add_peer("a", bits("1001"))
    assert picker.interesting_count("a") == 0
    assert not picker.is_interesting(bits("1001"))
    assert picker.is_interesting(bits("0100"))
    picker.peer_has("a", 2)
    assert picker.interesting_count("a") == 1
    picker.add_peer("s", Bitfield(4, full=True))
    assert picker.interesting_count("s") == 2
    picker.check_invariants()


def test_a_block_of_an_unwanted_piece_is_dropped() -> None:
    """An unrequested block of a piece we did not choose is a duplicate, and starts nothing."""
    picker = make("01")
    picker.add_peer("a", bits("11"))
    result = picker.block_received("a", BlockRef(0, 0, BLOCK_SIZE))
    assert result.duplicate and not result.piece_complete
    assert picker.partial_pieces == 0
    picker.check_invariants()


def test_an_unwanted_piece_found_on_disk_does_not_count() -> None:
    """Verifying a piece outside the selection changes neither ``left`` nor interest."""
    picker = make("01")
    picker.add_peer("a", bits("11"))
    picker.piece_verified(0)
    assert picker.left == 1 and picker.interesting_count("a") == 1
    picker.check_invariants()


def test_aborted_and_failed_pieces_stay_wanted() -> None:
    """A wanted piece whose requests are aborted or whose hash fails is picked again."""
    picker = make("0110", blocks=2)
    picker.add_peer("s", Bitfield(4, full=True))
    got = picker.pick_blocks("s", 4)
    for block in got:
        picker.abort_request("s", block)
    assert picked(picker, "s") == [1, 2]
    for block in picker.requests_of("s"):
        picker.block_received("s", block)
    assert picker.piece_failed(1) == {"s"}
    assert picked(picker, "s") == [1]
    picker.check_invariants()


def test_wanted_length_must_match() -> None:
    """A wanted bitfield of the wrong length is refused."""
    with pytest.raises(ValueError, match="wanted"):
        geometry = Geometry(BLOCK_SIZE, [4 * BLOCK_SIZE])
        PiecePicker(geometry, Bitfield(4), NO_RANDOM, random.Random(), wanted=Bitfield(3))


def test_sequential_picks_the_window_in_order() -> None:
    """With a window of 3, the first three missing pieces go first, in index order."""
    picker = make(None, "1000000000")
    picker.set_sequential(3)
    picker.add_peer("s", Bitfield(10, full=True))
    got = [b.piece for b in picker.pick_blocks("s", 3)]
    assert got == [1, 2, 3]
    picker.check_invariants()


def test_sequential_window_moves_with_the_first_missing_piece() -> None:
    """Once the first pieces are verified the window starts at the next missing one."""
    picker = make(None, n=10)
    picker.set_sequential(2)
    picker.add_peer("s", Bitfield(10, full=True))
    for block in picker.pick_blocks("s", 2):
        picker.block_received("s", block)
    picker.piece_verified(0)
    picker.piece_verified(1)
    assert picker.first_missing == 2
    assert [b.piece for b in picker.pick_blocks("s", 2)] == [2, 3]


def test_sequential_stays_in_the_window() -> None:
    """While a peer has pieces of the window, nothing past the window is started, however deep the queue."""
    picker = make(None, n=6)
    picker.set_sequential(2)
    picker.add_peer("a", bits("111111"))
    got = [b.piece for b in picker.pick_blocks("a", 10)]
    assert got == [0, 1]


def test_a_peer_without_window_pieces_is_asked_rarest_first() -> None:
    """A peer that has none of the window's pieces still gets requests, rarest first."""
    picker = make(None, n=6)
    picker.set_sequential(2)
    picker.add_peer("a", bits("111111"))
    picker.add_peer("b", bits("000110"))
    picker.add_peer("c", bits("000111"))  # piece 5 is the rarest that "c" has
    assert [b.piece for b in picker.pick_blocks("c", 1)] == [5]
    picker.check_invariants()


def test_sequential_skips_unwanted_and_pieces_the_peer_lacks() -> None:
    """The window counts wanted pieces only, and a peer is asked only for what it has."""
    picker = make("0101111")
    picker.set_sequential(3)
    picker.add_peer("a", bits("0111011"))
    got = [b.piece for b in picker.pick_blocks("a", 2)]
    assert got == [1, 3]  # 4 is in the window but "a" lacks it
    assert picker.first_missing == 1


def test_negative_window_is_refused() -> None:
    """A read-ahead window below zero is a local error."""
    with pytest.raises(ValueError, match="negative"):
        make(None, n=2).set_sequential(-1)


@settings(max_examples=150, deadline=None)
@given(
    wanted=st.lists(st.booleans(), min_size=8, max_size=8),
    have=st.lists(st.booleans(), min_size=8, max_size=8),
    window=st.integers(0, 4),
    ops=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 7), st.integers(1, 5)), max_size=40),
)
def test_random_operations_keep_invariants(
    wanted: list[bool], have: list[bool], window: int, ops: list[tuple[int, int, int]]
) -> None:
    """Any mix of picks, arrivals, aborts and verifications never picks an unwanted piece."""
    w = "".join("1" if x else "0" for x in wanted)
    h = "".join("1" if x else "0" for x in have)
    picker = make(w, h, blocks=2)
    picker.set_sequential(window)
    picker.add_peer("a", bits("10110111"))
    picker.add_peer("s", Bitfield(8, full=True))
    for op, arg, count in ops:
        peer = "a" if arg % 2 else "s"
        if op == 0:
            for block in picker.pick_blocks(peer, count):
                assert wanted[block.piece] and block.piece not in picker.have
        elif op == 1 and picker.requests_of(peer):
            block = picker.requests_of(peer)[0]
            if picker.block_received(peer, block).piece_complete:
                picker.piece_verified(block.piece)
        elif op == 2 and picker.requests_of(peer):
            picker.abort_request(peer, picker.requests_of(peer)[-1])
        elif op == 3:
            picker.peer_has("a", arg)
        picker.check_invariants()
    assert picker.complete == all(not wanted[i] or i in picker.have for i in range(8))
