"""Tests for the piece picker, written with compact strings as libtorrent's test_piece_picker.cpp.

``build("1213", have="0100")`` makes a picker whose piece ``i`` is held by as many
peers as the digit says (peers ``"p0"``, ``"p1"``, ... where peer ``j`` has piece ``i``
if ``j < avail[i]``) and whose own pieces are the ``1``s of ``have``.  Pieces are four
blocks long unless said otherwise.  ``pieces(blocks)`` renders picks the same way:
``"0011"`` means two blocks of piece 0, then two of piece 1.
"""

from __future__ import annotations

import random
from collections.abc import Hashable
from dataclasses import replace

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from p2pshare.config import BLOCK_SIZE, PickerConfig
from p2pshare.core.bitfield import Bitfield
from p2pshare.core.geometry import BlockRef, Geometry
from p2pshare.core.picker import PiecePicker, queue_depth
from p2pshare.errors import LocalProtocolError

NO_RANDOM = PickerConfig(random_first_pieces=0)


def bits(pattern: str) -> Bitfield:
    """A bitfield from a string of 0/1 characters."""
    return Bitfield.from_indices(len(pattern), (i for i, c in enumerate(pattern) if c == "1"))


def build(
    avail: str,
    have: str = "",
    *,
    blocks: int = 4,
    last_bytes: int | None = None,
    config: PickerConfig = NO_RANDOM,
    seed: int = 0,
) -> PiecePicker:
    """A picker with the availability and have strings given (see module docstring)."""
    n = len(avail)
    piece_length = blocks * BLOCK_SIZE
    total = n * piece_length if last_bytes is None else (n - 1) * piece_length + last_bytes
    picker = PiecePicker(Geometry(piece_length, [total]), bits(have or "0" * n), config, random.Random(seed))
    for j in range(max((int(c) for c in avail), default=0)):
        picker.add_peer(f"p{j}", bits("".join("1" if int(c) > j else "0" for c in avail)))
    picker.check_invariants()
    return picker


def pieces(blocks: list[BlockRef]) -> str:
    return "".join(str(b.piece) for b in blocks)


def seed_peer(picker: PiecePicker, key: Hashable) -> None:
    picker.add_peer(key, Bitfield(picker.have.length, full=True))


# ---------------------------------------------------------------- availability


def test_availability_counts_bitfields_and_haves() -> None:
    """Availability is the number of peers holding each piece, and HAVE messages raise it."""
    picker = build("1203")
    assert [picker.availability(i) for i in range(4)] == [1, 2, 0, 3]
    picker.peer_has("p0", 2)
    picker.peer_has("p0", 2)  # a repeated HAVE counts once
    assert picker.availability(2) == 1
    picker.check_invariants()


def test_have_all_and_have_none() -> None:
    """A have-all peer counts once for every piece and a have-none peer for none."""
    picker = build("1000")
    seed_peer(picker, "seed")
    picker.add_peer("empty", Bitfield(4))
    assert [picker.availability(i) for i in range(4)] == [2, 1, 1, 1]
    assert picker.interesting_count("empty") == 0
    assert picker.interesting_count("seed") == 4
    picker.check_invariants()


def test_remove_peer_decrements_availability() -> None:
    """A peer leaving takes its pieces out of the availability counts."""
    picker = build("1213")
    seed_peer(picker, "seed")
    picker.remove_peer("p1")
    picker.remove_peer("seed")
    assert [picker.availability(i) for i in range(4)] == [1, 1, 1, 2]
    picker.check_invariants()


def test_add_peer_again_replaces_bitfield() -> None:
    """Calling add_peer for a known peer replaces its bitfield instead of counting it twice."""
    picker = build("0000")
    picker.add_peer("a", bits("1100"))
    picker.add_peer("a", bits("0011"))
    assert [picker.availability(i) for i in range(4)] == [0, 0, 1, 1]
    picker.check_invariants()


# ---------------------------------------------------------------- piece order


def test_rarest_first() -> None:
    """Pieces are started rarest first."""
    picker = build("3213")
    assert pieces(picker.pick_blocks("p0", 8)) == "22221111"
    picker.check_invariants()


def test_rarest_first_skips_pieces_the_peer_lacks_and_we_have() -> None:
    """A peer is only asked for pieces it has and we lack."""
    picker = build("3213", have="0010")
    assert pieces(picker.pick_blocks("p2", 8)) in ("00003333", "33330000")
    picker.check_invariants()


def test_rarest_first_follows_availability_changes() -> None:
    """Peers joining make pieces more common and move them behind rarer ones."""
    picker = build("1122")
    picker.add_peer("x", bits("1100"))
    picker.add_peer("y", bits("1100"))
    assert [picker.availability(i) for i in range(4)] == [3, 3, 2, 2]
    assert set(pieces(picker.pick_blocks("p0", 8))) == {"2", "3"}
    picker.check_invariants()


def test_rarest_first_for_a_peer_with_few_pieces() -> None:
    """A peer holding few of many pieces is still asked for its rarest piece first, then the next."""
    avail = ["3"] * 40
    avail[30] = "1"
    avail[7] = "2"
    picker = build("".join(avail))
    picker.add_peer("s", Bitfield.from_indices(40, [5, 7, 30]))
    blocks = picker.pick_blocks("s", 12)
    assert [b.piece for b in blocks] == [30] * 4 + [7] * 4 + [5] * 4
    assert picker.pick_blocks("s", 4, allow_new_piece=False) == []
    picker.check_invariants()


def test_random_first_for_a_peer_with_few_pieces() -> None:
    """In the random-first phase a peer with few pieces gets one of its own, at random."""
    config = PickerConfig(random_first_pieces=4)
    firsts = set()
    for s in range(30):
        picker = build("2" * 64, config=config, seed=s)
        picker.add_peer("s", Bitfield.from_indices(64, [3, 40]))
        firsts.add(picker.pick_blocks("s", 1)[0].piece)
    assert firsts == {3, 40}


def test_tie_break_is_random_but_seeded() -> None:
    """Among equally rare pieces the choice is random, and the same seed gives the same choice."""
    first = {build("1" * 16, seed=s).pick_blocks("p0", 1)[0].piece for s in range(40)}
    assert len(first) > 5
    assert build("1" * 16, seed=7).pick_blocks("p0", 16) == build("1" * 16, seed=7).pick_blocks("p0", 16)


def test_random_first_pieces() -> None:
    """Until random_first_pieces are verified, new pieces are chosen at random, not rarest first."""
    config = PickerConfig(random_first_pieces=4)
    firsts = {build("1" + "5" * 9, config=config, seed=s).pick_blocks("p0", 1)[0].piece for s in range(40)}
    assert firsts - {0}, "random-first should not always pick the rarest piece"
    picker = build("1" + "5" * 9, config=config)
    for block in picker.pick_blocks("p0", 16):
        picker.block_received("p0", block)
    for i in range(10):
        if picker.is_pending(i):
            picker.piece_verified(i)
    assert len(picker.have) == 4
    if 0 not in picker.have:
        assert pieces(picker.pick_blocks("p0", 1)) == "0", "rarest first once four pieces are in"
    picker.check_invariants()


def test_random_first_respects_peer_bitfield() -> None:
    """Random-first picks only pieces the peer has."""
    config = PickerConfig(random_first_pieces=4)
    for s in range(20):
        picker = build("1111" + "2" * 12, config=config, seed=s)
        assert {b.piece for b in picker.pick_blocks("p1", 8)} <= set(range(4, 16))


def test_partial_pieces_first() -> None:
    """A started piece is finished before a new one is started, even if it is no longer the rarest."""
    picker = build("23")
    assert pieces(picker.pick_blocks("p0", 2)) == "00"
    picker.add_peer("x", bits("10"))
    picker.add_peer("y", bits("10"))  # piece 0 now has 4, piece 1 has 3
    assert pieces(picker.pick_blocks("p1", 4)) == "0011"
    picker.check_invariants()


def test_last_piece_is_short() -> None:
    """The last piece has fewer blocks and a short last block."""
    picker = build("11", blocks=4, last_bytes=BLOCK_SIZE + 100)
    blocks = picker.pick_blocks("p0", 10)
    last = [b for b in blocks if b.piece == 1]
    assert [(b.begin, b.length) for b in last] == [(0, BLOCK_SIZE), (BLOCK_SIZE, 100)]
    assert len(blocks) == 6
    with pytest.raises(ValueError):
        picker.block_received("p0", BlockRef(1, BLOCK_SIZE, BLOCK_SIZE))
    for block in last:
        result = picker.block_received("p0", block)
    assert result.piece_complete
    picker.check_invariants()


# ---------------------------------------------------------------- block bookkeeping


def test_no_block_twice_to_the_same_peer() -> None:
    """A peer is never given a block it already has requested, not even in endgame."""
    picker = build("1")
    first = picker.pick_blocks("p0", 4)
    assert picker.pick_blocks("p0", 4) == []
    assert len(set(first)) == 4
    assert picker.blocks_in_flight("p0") == 4


def test_abort_request_frees_the_block() -> None:
    """An aborted request (choke, reject, timeout) makes the block free for another peer."""
    picker = build("2")
    blocks = picker.pick_blocks("p0", 2)
    picker.abort_request("p0", blocks[1])
    assert picker.blocks_in_flight("p0") == 1
    assert picker.pick_blocks("p1", 1) == [blocks[1]]
    picker.abort_request("p0", blocks[1])  # no longer ours: ignored
    picker.check_invariants()


def test_fully_aborted_piece_is_free_again() -> None:
    """A piece with nothing requested or received goes back to rarest-first order."""
    picker = build("12")
    blocks = picker.pick_blocks("p0", 2)
    assert picker.partial_pieces == 1
    for block in blocks:
        picker.abort_request("p0", block)
    assert picker.partial_pieces == 0
    picker.check_invariants()


def test_remove_peer_returns_and_frees_its_requests() -> None:
    """remove_peer lists the blocks the peer had requested and frees them."""
    picker = build("2")
    blocks = picker.pick_blocks("p0", 3)
    picker.block_received("p0", blocks[0])
    assert picker.remove_peer("p0") == blocks[1:]
    assert pieces(picker.pick_blocks("p1", 4)) == "000"
    picker.check_invariants()


def test_piece_failed_returns_contributors_and_resets() -> None:
    """A piece that fails its hash is free again and the picker names every peer that sent a block."""
    picker = build("3")
    a = picker.pick_blocks("p0", 2)
    b = picker.pick_blocks("p1", 2)
    results = [picker.block_received("p0", x) for x in a] + [picker.block_received("p1", x) for x in b]
    assert [r.piece_complete for r in results] == [False, False, False, True]
    assert picker.is_pending(0)
    assert picker.pick_blocks("p2", 4) == []  # nothing left to ask for while hashing
    picker.remove_peer("p1")  # contributors are remembered after they leave
    assert picker.piece_failed(0) == {"p0", "p1"}
    assert not picker.is_pending(0)
    assert pieces(picker.pick_blocks("p2", 4)) == "0000"
    picker.check_invariants()


def test_piece_verified_completes_and_drops_interest() -> None:
    """Verifying pieces fills `have`, lowers each peer's interesting count and ends in complete."""
    picker = build("21")
    assert picker.interesting_count("p0") == 2 and picker.interesting_count("p1") == 1
    for block in picker.pick_blocks("p0", 8):
        picker.block_received("p0", block)
    picker.piece_verified(1)
    assert picker.interesting_count("p0") == 1 and picker.interesting_count("p1") == 1
    picker.piece_verified(0)
    assert picker.interesting_count("p0") == 0 and picker.interesting_count("p1") == 0
    assert picker.complete
    assert picker.pick_blocks("p0", 4) == []
    with pytest.raises(LocalProtocolError):
        picker.piece_failed(0)
    picker.check_invariants()


def test_piece_verified_while_requested_drops_requests() -> None:
    """A piece verified while blocks are still requested (e.g. found on disk) drops those requests."""
    picker = build("1")
    blocks = picker.pick_blocks("p0", 4)
    picker.piece_verified(0)
    assert picker.blocks_in_flight("p0") == 0
    assert picker.block_received("p0", blocks[0]).duplicate
    picker.check_invariants()


def test_unrequested_block_is_accepted_but_flagged() -> None:
    """A block nobody asked for is recorded if we lack it, with requested=False."""
    picker = build("1")
    result = picker.block_received("p0", BlockRef(0, BLOCK_SIZE, BLOCK_SIZE))
    assert not result.requested and not result.duplicate
    assert pieces(picker.pick_blocks("p0", 4)) == "000"
    picker.check_invariants()


# ---------------------------------------------------------------- endgame


def test_endgame_gives_busy_blocks_and_cancels() -> None:
    """With no free block left, a peer gets blocks others requested; the first arrival names who to cancel."""
    picker = build("2")
    a = picker.pick_blocks("p0", 4)
    b = picker.pick_blocks("p1", 4)
    assert sorted(b, key=lambda x: x.begin) == a
    first = picker.block_received("p1", a[0])
    assert first.cancel == ("p0",) and not first.duplicate
    assert picker.blocks_in_flight("p0") == 3
    late = picker.block_received("p0", a[0])
    assert late.duplicate and not late.requested
    picker.check_invariants()


def test_endgame_not_while_free_blocks_remain() -> None:
    """A peer that still has a free piece to give is not handed busy blocks; once it has none, it is."""
    picker = build("21")
    assert pieces(picker.pick_blocks("p1", 4)) == "0000"  # p1 has only piece 0
    assert pieces(picker.pick_blocks("p1", 4)) == ""  # never its own blocks again
    assert pieces(picker.pick_blocks("p0", 4)) == "1111"  # free piece 1, not p1's busy blocks
    assert pieces(picker.pick_blocks("p0", 4)) == "0000"  # now only busy blocks remain: endgame
    picker.check_invariants()


def test_endgame_prefers_fewest_requesters_and_caps_them() -> None:
    """Busy blocks go to the least-shared first and a block has at most endgame_max_requesters."""
    config = replace(NO_RANDOM, endgame_max_requesters=2)
    picker = build("4", blocks=2, config=config)
    picker.pick_blocks("p0", 1)  # block 0 by p0
    picker.pick_blocks("p1", 1)  # block 1 by p1
    assert picker.pick_blocks("p2", 1)[0].begin in (0, BLOCK_SIZE)
    got = picker.pick_blocks("p3", 2)
    assert len(got) == 1, "one block already has two requesters"
    picker.check_invariants()


def test_endgame_can_be_disabled() -> None:
    """With endgame_max_requesters=1 no block is ever requested from two peers."""
    picker = build("2", config=replace(NO_RANDOM, endgame_max_requesters=1))
    picker.pick_blocks("p0", 4)
    assert picker.pick_blocks("p1", 4) == []


def test_endgame_block_shared_survives_one_abort() -> None:
    """A block requested by two peers stays requested when one of them aborts."""
    picker = build("2", blocks=1)
    [block] = picker.pick_blocks("p0", 1)
    assert picker.pick_blocks("p1", 1) == [block]
    assert picker.remove_peer("p0") == [block]
    assert picker.blocks_in_flight("p1") == 1
    assert picker.block_received("p1", block).cancel == ()
    picker.check_invariants()


# ---------------------------------------------------------------- limits


def test_allowed_fast_restricts_pieces() -> None:
    """With an allowed set (choked, BEP 6) only those pieces are picked, busy ones included."""
    picker = build("1222")
    assert pieces(picker.pick_blocks("p0", 8, allowed={2})) == "2222"
    assert pieces(picker.pick_blocks("p1", 8, allowed={2})) == "2222"  # endgame within the set
    assert picker.pick_blocks("p1", 8, allowed=set()) == []
    picker.check_invariants()


def test_allow_new_piece_false_only_continues_partials() -> None:
    """With allow_new_piece=False only started pieces are served, and busy blocks are not shared early."""
    picker = build("22")
    assert picker.pick_blocks("p0", 2, allow_new_piece=False) == []
    picker.pick_blocks("p0", 2)
    assert len(picker.pick_blocks("p1", 8, allow_new_piece=False)) == 2
    assert picker.pick_blocks("p1", 8, allow_new_piece=False) == []  # free piece left: no endgame
    assert picker.partial_pieces == 1
    picker.check_invariants()


def test_max_new_pieces_limits_starts_per_call() -> None:
    """max_new_pieces caps how many pieces one call may start."""
    picker = build("1111", blocks=1)
    assert len(picker.pick_blocks("p0", 4, max_new_pieces=2)) == 2
    assert picker.partial_pieces == 2


# ---------------------------------------------------------------- interest


def test_interest_tracking() -> None:
    """Interesting counts follow bitfields, HAVEs and our own verified pieces."""
    picker = build("0000", have="1000")
    picker.add_peer("a", bits("1000"))
    assert picker.interesting_count("a") == 0 and not picker.is_peer_interesting("a")
    picker.peer_has("a", 2)
    assert picker.interesting_count("a") == 1
    picker.piece_verified(2)
    assert picker.interesting_count("a") == 0
    assert picker.is_interesting(bits("0100"))
    assert not picker.is_interesting(bits("1010"))
    assert not picker.is_interesting(bits("0000"))
    picker.check_invariants()


# ---------------------------------------------------------------- pipelining


def test_queue_depth() -> None:
    """Queue depth starts at initial_queue, follows the rate, and is capped by reqq and max_queue."""
    config = PickerConfig()
    assert queue_depth(0.0, None, config) == config.initial_queue
    assert queue_depth(100.0, None, config) == config.min_queue
    assert queue_depth(100 * BLOCK_SIZE, None, config) == 100
    assert queue_depth(100 * BLOCK_SIZE, 50, config) == 50
    assert queue_depth(1e12, None, config) == config.max_queue
    assert queue_depth(0.0, 2, config) == 2


# ---------------------------------------------------------------- randomized


def test_random_download_completes() -> None:
    """Random peers, aborts, failures and departures still end with every piece verified."""
    for seed in range(5):
        rng = random.Random(seed)
        n = 30
        geometry = Geometry(3 * BLOCK_SIZE, [n * 3 * BLOCK_SIZE - 5000])
        picker = PiecePicker(geometry, Bitfield(n), PickerConfig(), random.Random(seed))
        for j in range(6):
            picker.add_peer(j, Bitfield.from_indices(n, (i for i in range(n) if rng.random() < 0.5)))
        seed_peer(picker, "seed")
        outstanding: dict[Hashable, list[BlockRef]] = {}
        steps = 0
        while not picker.complete:
            steps += 1
            assert steps < 20_000, "download did not converge"
            peer = rng.choice([p for p in [*range(6), "seed"] if p in picker])
            got = picker.pick_blocks(peer, rng.randint(1, 6), allow_new_piece=rng.random() < 0.8)
            mine = outstanding.setdefault(peer, [])
            assert not set(got) & set(mine), "same block twice to one peer"
            assert all(b.piece not in picker.have for b in got)
            mine.extend(got)
            rng.shuffle(mine)
            for block in mine[: rng.randint(0, len(mine))]:
                mine.remove(block)
                if rng.random() < 0.1:
                    picker.abort_request(peer, block)
                    continue
                result = picker.block_received(peer, block)
                for other in result.cancel:
                    outstanding[other].remove(block)
                if result.piece_complete:
                    if rng.random() < 0.3:  # hash failure: some contributor lied
                        assert peer in picker.piece_failed(block.piece)
                    else:
                        picker.piece_verified(block.piece)
            if rng.random() < 0.02 and isinstance(peer, int):
                freed = picker.remove_peer(peer)
                assert sorted(freed, key=lambda b: (b.piece, b.begin)) == sorted(
                    outstanding.pop(peer, []), key=lambda b: (b.piece, b.begin)
                )
                picker.add_peer(peer, Bitfield.from_indices(n, (i for i in range(n) if rng.random() < 0.5)))
            if steps % 50 == 0:
                picker.check_invariants()
        picker.check_invariants()


class PickerMachine(RuleBasedStateMachine):
    """Random operation sequences keep the picker's invariants."""

    N = 6

    @initialize(have=st.lists(st.booleans(), min_size=N, max_size=N), seed=st.integers(0, 2**16))
    def setup(self, have: list[bool], seed: int) -> None:
        geometry = Geometry(2 * BLOCK_SIZE, [self.N * 2 * BLOCK_SIZE - 300])
        self.picker = PiecePicker(
            geometry,
            Bitfield.from_indices(self.N, (i for i, h in enumerate(have) if h)),
            PickerConfig(random_first_pieces=2, endgame_max_requesters=3),
            random.Random(seed),
        )
        self.outstanding: dict[int, set[BlockRef]] = {}

    @rule(peer=st.integers(0, 4), has=st.lists(st.booleans(), min_size=N, max_size=N))
    def add_peer(self, peer: int, has: list[bool]) -> None:
        self.picker.add_peer(peer, Bitfield.from_indices(self.N, (i for i, h in enumerate(has) if h)))
        self.outstanding.setdefault(peer, set())

    @precondition(lambda self: self.outstanding)
    @rule(data=st.data(), index=st.integers(0, N - 1))
    def have(self, data: st.DataObject, index: int) -> None:
        peer = data.draw(st.sampled_from(sorted(self.outstanding)))
        before = self.picker.availability(index)
        self.picker.peer_has(peer, index)
        assert self.picker.availability(index) in (before, before + 1)

    @precondition(lambda self: self.outstanding)
    @rule(
        data=st.data(),
        count=st.integers(1, 8),
        new=st.booleans(),
        allowed=st.none() | st.sets(st.integers(0, N)),
    )
    def pick(self, data: st.DataObject, count: int, new: bool, allowed: set[int] | None) -> None:
        peer = data.draw(st.sampled_from(sorted(self.outstanding)))
        got = self.picker.pick_blocks(peer, count, allow_new_piece=new, allowed=allowed)
        assert len(got) <= count and len(set(got)) == len(got)
        assert not set(got) & self.outstanding[peer], "a block twice to the same peer"
        for block in got:
            assert block.piece not in self.picker.have
            assert allowed is None or block.piece in allowed
        self.outstanding[peer] |= set(got)

    @precondition(lambda self: any(self.outstanding.values()))
    @rule(data=st.data(), abort=st.booleans())
    def resolve(self, data: st.DataObject, abort: bool) -> None:
        peer = data.draw(st.sampled_from(sorted(p for p, s in self.outstanding.items() if s)))
        block = data.draw(st.sampled_from(sorted(self.outstanding[peer], key=lambda b: (b.piece, b.begin))))
        self.outstanding[peer].discard(block)
        if abort:
            self.picker.abort_request(peer, block)
            return
        result = self.picker.block_received(peer, block)
        for other in result.cancel:
            assert isinstance(other, int)
            self.outstanding[other].discard(block)

    @precondition(lambda self: self.outstanding)
    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        peer = data.draw(st.sampled_from(sorted(self.outstanding)))
        freed = self.picker.remove_peer(peer)
        assert set(freed) == self.outstanding.pop(peer)

    @rule(index=st.integers(0, N - 1), ok=st.booleans())
    def hashed(self, index: int, ok: bool) -> None:
        if not self.picker.is_pending(index):
            return
        if ok:
            self.picker.piece_verified(index)
        else:
            assert self.picker.piece_failed(index)

    @invariant()
    def consistent(self) -> None:
        if hasattr(self, "picker"):
            self.picker.check_invariants()
            assert all(self.picker.availability(i) >= 0 for i in range(self.N))
            for peer, blocks in self.outstanding.items():
                assert self.picker.blocks_in_flight(peer) == len(blocks)


TestPickerMachine = PickerMachine.TestCase
TestPickerMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
