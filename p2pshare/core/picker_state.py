"""The picker's state: pieces, blocks, peers and their requests (see :mod:`.picker`).

:class:`PickerState` holds what :class:`~p2pshare.core.picker.PiecePicker` knows and
answers the queries; the picker adds the picking and the block results on top.
"""

from __future__ import annotations

import random
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from p2pshare.config import PickerConfig
from p2pshare.core.availability import AvailabilityOrder
from p2pshare.core.bitfield import Bitfield
from p2pshare.core.geometry import BlockRef, Geometry

__all__ = ["FREE", "RECEIVED", "REQUESTED", "BlockReceived", "K", "Partial", "PickerState"]

FREE = 0
REQUESTED = 1
RECEIVED = 2

#: The engine's name for a peer: any hashable (a connection object, an address, an id).
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class BlockReceived(Generic[K]):
    """What the arrival of one block meant to the picker."""

    piece: int
    #: every block of the piece is now in: hash it, then call piece_verified / piece_failed
    piece_complete: bool
    #: we already had this block (or the whole piece); the data can be dropped
    duplicate: bool
    #: other peers that had this block requested: send them a cancel (endgame)
    cancel: tuple[K, ...]
    #: the sending peer had an outstanding request for it in the picker
    requested: bool


class Partial(Generic[K]):
    """Block-level state of one PARTIAL or PENDING piece."""

    __slots__ = ("free", "nblocks", "received", "requesters", "senders", "state")

    def __init__(self, nblocks: int) -> None:
        self.nblocks = nblocks
        self.state = bytearray(nblocks)  # FREE / REQUESTED / RECEIVED per block
        self.requesters: list[list[K] | None] = [None] * nblocks
        self.senders: list[K | None] = [None] * nblocks
        self.free = nblocks
        self.received = 0


class _Peer:
    """What the picker knows about one peer."""

    __slots__ = ("has", "interesting", "requests")

    def __init__(self, has: Bitfield | None, interesting: int) -> None:
        self.has = has  # None: a seed (have-all / full bitfield), counted in _seeds
        self.interesting = interesting  # pieces it has that we lack (not used for seeds)
        self.requests: set[tuple[int, int]] = set()


class PickerState(AvailabilityOrder, Generic[K]):
    """Pieces, blocks, peers and requests of one torrent; the queries and the book-keeping."""

    def __init__(
        self,
        geometry: Geometry,
        have: Bitfield,
        config: PickerConfig,
        rng: random.Random,
        *,
        wanted: Bitfield | None = None,
    ) -> None:
        n = geometry.num_pieces
        if have.length != n:
            raise ValueError(f"have bitfield has {have.length} pieces, torrent has {n}")
        if wanted is not None and wanted.length != n:
            raise ValueError(f"wanted bitfield has {wanted.length} pieces, torrent has {n}")
        #: pieces to download (None: all); the others are never picked, and a peer that has only
        #: those is not interesting
        self._wanted = wanted.copy() if wanted is not None else None
        self._wanted_mask = _as_int(wanted if wanted is not None else Bitfield(n, full=True))
        self._seq_window = 0  # sequential: pieces after the first missing one picked in order
        self._seq_first = 0  # no wanted piece before this one is missing
        self._geometry = geometry
        self._config = config
        self._rng = rng
        self._n = n
        self._bs = geometry.block_size
        self._piece_length = geometry.piece_length
        self._last_size = geometry.piece_size(n - 1) if n else 0
        self._have = have.copy()
        self._seeds = 0
        self._peers: dict[K, _Peer] = {}
        self._partials: dict[int, Partial[K]] = {}
        self._with_free: dict[int, None] = {}  # PARTIAL pieces with at least one free block
        free = [i for i in range(n) if i not in self._have and self.wants(i)]
        self._left = len(free)  # wanted pieces not verified
        AvailabilityOrder.__init__(self, n, free, rng)

    # ------------------------------------------------------------------ queries

    @property
    def have(self) -> Bitfield:
        """Pieces we have verified (the picker's own copy: read, don't modify)."""
        return self._have

    @property
    def complete(self) -> bool:
        """Every wanted piece is verified (every piece, when all are wanted)."""
        return self._left == 0

    @property
    def left(self) -> int:
        """Wanted pieces not verified yet."""
        return self._left

    def wants(self, index: int) -> bool:
        """Whether piece ``index`` is to be downloaded."""
        return self._wanted is None or index in self._wanted

    def wanted_pieces(self) -> range | Bitfield:
        """The pieces to download (all of them unless a selection was given)."""
        return range(self._n) if self._wanted is None else self._wanted

    @property
    def partial_pieces(self) -> int:
        """Pieces started but not verified (PARTIAL and PENDING)."""
        return len(self._partials)

    def availability(self, index: int) -> int:
        """Number of connected peers that have piece ``index``."""
        return self._avail[index] + self._seeds

    def blocks_in_flight(self, peer: K) -> int:
        """Blocks requested from ``peer`` and not yet received, aborted or cancelled."""
        ps = self._peers.get(peer)
        return len(ps.requests) if ps is not None else 0

    def requests_of(self, peer: K) -> list[BlockRef]:
        """The blocks ``peer`` has outstanding, in piece/offset order."""
        ps = self._peers.get(peer)
        if ps is None:
            return []
        return [self._ref(p, b) for p, b in sorted(ps.requests)]

    def is_pending(self, index: int) -> bool:
        """True if every block of the piece is in and it awaits verification."""
        part = self._partials.get(index)
        return part is not None and part.received == part.nblocks

    def interesting_count(self, peer: K) -> int:
        """Number of pieces ``peer`` has that we have not verified."""
        ps = self._peers[peer]
        if ps.has is None:
            return self._left
        return ps.interesting

    def is_peer_interesting(self, peer: K) -> bool:
        return self.interesting_count(peer) > 0

    def is_interesting(self, has: Bitfield) -> bool:
        """True if ``has`` holds a wanted piece we have not verified."""
        if self._wanted is None and len(has) > len(self._have):
            return True
        return bool(_as_int(has) & ~_as_int(self._have) & self._wanted_mask)

    def __contains__(self, peer: object) -> bool:
        return peer in self._peers

    # ------------------------------------------------------------------ peers

    def add_peer(self, peer: K, has: Bitfield) -> None:
        """Count a peer's pieces (bitfield, have-all as a full one, have-none as an empty one).

        Calling it again for a known peer replaces its bitfield and keeps its requests.
        The bitfield is copied.
        """
        if has.length != self._n:
            raise ValueError(f"peer bitfield has {has.length} pieces, torrent has {self._n}")
        old = self._peers.get(peer)
        requests = old.requests if old is not None else set()
        if old is not None:
            self._uncount(old)
        if has.complete:
            ps = _Peer(None, 0)
            self._seeds += 1
        else:
            copy = has.copy()
            ps = _Peer(copy, (_as_int(copy) & ~_as_int(self._have) & self._wanted_mask).bit_count())
            for i in copy:
                self._inc(i)
        ps.requests = requests
        self._peers[peer] = ps

    def peer_has(self, peer: K, index: int) -> None:
        """A HAVE message: ``peer`` now has piece ``index``."""
        ps = self._peers[peer]
        if ps.has is None:
            return
        if ps.has.add(index):
            self._inc(index)
            if index not in self._have and self.wants(index):
                ps.interesting += 1

    def remove_peer(self, peer: K) -> list[BlockRef]:
        """Forget a peer; return the blocks it had requested (freed unless others requested them).

        Blocks it delivered stay credited to it, so a later piece_failed still names it.
        """
        ps = self._peers.pop(peer, None)
        if ps is None:
            return []
        freed = sorted(ps.requests)
        for p, b in freed:
            self._release(p, b, peer)
        ps.requests.clear()
        self._uncount(ps)
        return [self._ref(p, b) for p, b in freed]

    # ------------------------------------------------------------------ internals: pieces

    def _nblocks(self, p: int) -> int:
        size = self._last_size if p == self._n - 1 else self._piece_length
        return (size + self._bs - 1) // self._bs

    def _ref(self, p: int, b: int) -> BlockRef:
        size = self._last_size if p == self._n - 1 else self._piece_length
        begin = b * self._bs
        return BlockRef(p, begin, min(self._bs, size - begin))

    def _locate(self, block: BlockRef) -> tuple[int, int]:
        p = block.piece
        if not 0 <= p < self._n or block.begin < 0 or block.begin % self._bs:
            raise ValueError(f"not a block of this torrent: {block}")
        b = block.begin // self._bs
        size = self._last_size if p == self._n - 1 else self._piece_length
        if block.begin >= size or block.length != min(self._bs, size - block.begin):
            raise ValueError(f"not a block of this torrent: {block}")
        return p, b

    def _begin(self, p: int) -> Partial[K]:
        """FREE -> PARTIAL."""
        self._remove(p)
        part: Partial[K] = Partial(self._nblocks(p))
        self._partials[p] = part
        self._with_free[p] = None
        return part

    def _drop_partial(self, p: int) -> Partial[K]:
        """Forget a piece's block state, and every peer's requests for it."""
        part = self._partials.pop(p)
        self._with_free.pop(p, None)
        for b, rl in enumerate(part.requesters):
            if rl:
                for q in rl:
                    self._peers[q].requests.discard((p, b))
        return part

    def _release(self, p: int, b: int, peer: K) -> None:
        """``peer`` no longer has block (p, b) requested (its own request set is already updated)."""
        part = self._partials.get(p)
        if part is None:
            return
        rl = part.requesters[b]
        if rl is None or peer not in rl:
            return
        rl.remove(peer)
        if rl:
            return
        part.requesters[b] = None
        part.state[b] = FREE
        part.free += 1
        if part.free == part.nblocks:  # nothing requested or received: back to FREE
            self._partials.pop(p)
            self._with_free.pop(p, None)
            if self.wants(p):
                self._insert(p)
        else:
            self._with_free[p] = None

    # ------------------------------------------------------------------ internals: availability

    def _uncount(self, ps: _Peer) -> None:
        if ps.has is None:
            self._seeds -= 1
        else:
            for i in ps.has:
                self._dec(i)

    # ------------------------------------------------------------------ self-check (tests)

    def check_invariants(self) -> None:
        """Raise AssertionError if internal bookkeeping is inconsistent (O(everything): tests only)."""
        n = self._n
        avail = [0] * n
        seeds = 0
        for ps in self._peers.values():
            if ps.has is None:
                seeds += 1
                continue
            for i in ps.has:
                avail[i] += 1
            lacking = sum(1 for i in ps.has if i not in self._have and self.wants(i))
            assert ps.interesting == lacking, "interesting count drifted"
        assert avail == self._avail, "availability drifted"
        assert seeds == self._seeds
        in_order = self.check_order()
        pos = self._pos
        for i in range(n):
            states = (i in in_order) + (i in self._partials) + (i in self._have)
            expected = 1 if self.wants(i) or i in self._have else 0  # an unwanted missing piece: none
            assert states == expected, f"piece {i} is in {states} states"
            assert (pos[i] >= 0) == (i in in_order)
        assert self._left == sum(1 for i in range(n) if self.wants(i) and i not in self._have)
        expected_requests: dict[K, set[tuple[int, int]]] = {peer: set() for peer in self._peers}
        for p, part in self._partials.items():
            free = sum(1 for s in part.state if s == FREE)
            received = sum(1 for s in part.state if s == RECEIVED)
            assert part.free == free and part.received == received
            assert free < part.nblocks, "a partial piece with nothing requested or received"
            assert (p in self._with_free) == (free > 0)
            for b, s in enumerate(part.state):
                rl = part.requesters[b]
                if s == REQUESTED:
                    assert rl and len(set(rl)) == len(rl)
                    for q in rl:
                        expected_requests[q].add((p, b))
                else:
                    assert rl is None
                assert (part.senders[b] is not None) == (s == RECEIVED)
        for peer, ps in self._peers.items():
            assert ps.requests == expected_requests[peer], "peer request set drifted"


def _as_int(bf: Bitfield) -> int:
    return int.from_bytes(bf.to_bytes(), "big")
