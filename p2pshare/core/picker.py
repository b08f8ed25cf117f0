"""The piece picker: which blocks to ask which peer for.

Theory of operation
-------------------
Every piece is in exactly one of four states::

    FREE ──pick/receive──▶ PARTIAL ──last block received──▶ PENDING ──piece_verified──▶ HAVE
     ▲                       │                                 │
     └──every block freed────┘                                 │
     └──────────────────────────piece_failed───────────────────┘

(``piece_verified`` is accepted in any state, e.g. for pieces found on disk.)

* FREE pieces live in ``_order``, one list sorted by availability (the number of
  peers that have the piece, seeds not counted: a seed adds one to every piece, so it
  never changes the order).  ``_start[k]`` is where the bucket of pieces with
  availability ``k`` begins; ``_pos[i]`` is the position of piece ``i`` (-1 if not
  FREE).  A HAVE message moves a piece one bucket up by swapping it with the bucket's
  last element and moving the boundary, O(1) (libtorrent ``piece_picker``); it is then
  swapped with a random member of its new bucket, so ties are broken at random.
* PARTIAL and PENDING pieces have a :class:`_Partial` record: one byte of state per
  block (free / requested / received), the peers that requested each block and the
  peer that delivered it, so a piece that fails its hash names its contributors.
* Each peer's requests are a set of ``(piece, block)`` pairs, so freeing a peer's
  requests, counting them and checking "never the same block twice" are O(1) each.

Picking for one peer, in order:

1. free blocks of PARTIAL pieces the peer has (finish what was started);
2. blocks of new pieces: at random while we have fewer than ``random_first_pieces``
   pieces (get something to trade), rarest first after that; scanning ``_order``
   from the front stops at the first piece the peer has, so this is cheap; a peer with
   few pieces is served by walking its own bitfield instead;
3. only if the peer has no free block left anywhere: blocks other peers already
   requested (endgame), fewest requesters first (then oldest piece), never one this
   peer requested and never more than ``endgame_max_requesters`` requesters per
   block.  When the block arrives, :meth:`PiecePicker.block_received` names the other
   requesters so the engine can cancel.  Endgame is not a mode: it is what happens
   when only busy blocks remain.

Within step 1, started pieces are served in the order they (last) got a free block,
which is start order unless requests were aborted.  ``allow_new_piece=False`` stops
step 2 and, while a FREE piece the peer has remains, step 3 too: busy blocks are for
the end of the download, not for a full buffer budget.

The picker does no I/O and keeps no clock; randomness comes from the
``random.Random`` it is given.
"""

from __future__ import annotations

import math
import random
from collections.abc import Container, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from p2pshare.config import BLOCK_SIZE, PickerConfig
from p2pshare.core.bitfield import Bitfield
from p2pshare.core.geometry import BlockRef, Geometry
from p2pshare.errors import LocalProtocolError

__all__ = ["BlockReceived", "PiecePicker", "queue_depth"]

_FREE = 0
_REQUESTED = 1
_RECEIVED = 2

#: Random probes into the free list before falling back to a full scan (random-first phase).
_RANDOM_PROBES = 16
#: A peer with fewer than 1/this of the free pieces is served by walking its own bitfield.
_SPARSE_RATIO = 16

#: The engine's name for a peer: any hashable (a connection object, an address, an id).
K = TypeVar("K", bound=Hashable)


def queue_depth(
    rate_bytes_per_s: float, peer_reqq: int | None, config: PickerConfig, *, block_size: int = BLOCK_SIZE
) -> int:
    """How many block requests to keep outstanding to a peer that gives us ``rate_bytes_per_s``.

    With no rate measured yet (``rate <= 0``) this is ``config.initial_queue``; after that
    it is ``queue_seconds`` worth of the peer's rate in blocks, at least ``min_queue``.
    The result never exceeds ``config.max_queue`` nor the peer's ``reqq`` (BEP 10), and
    is at least 1.
    """
    if rate_bytes_per_s > 0 and math.isfinite(rate_bytes_per_s):
        depth = max(config.min_queue, math.ceil(rate_bytes_per_s * config.queue_seconds / block_size))
    else:
        depth = config.initial_queue
    depth = min(depth, config.max_queue)
    if peer_reqq is not None and peer_reqq > 0:
        depth = min(depth, peer_reqq)
    return max(1, depth)


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


class _Partial(Generic[K]):
    """Block-level state of one PARTIAL or PENDING piece."""

    __slots__ = ("free", "nblocks", "received", "requesters", "senders", "state")

    def __init__(self, nblocks: int) -> None:
        self.nblocks = nblocks
        self.state = bytearray(nblocks)  # _FREE / _REQUESTED / _RECEIVED per block
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


class PiecePicker(Generic[K]):
    """Availability, rarest-first piece selection and block bookkeeping for one torrent.

    Peers are keys of any hashable type (a connection object, an id).  See the module
    docstring for the theory of operation.
    """

    def __init__(self, geometry: Geometry, have: Bitfield, config: PickerConfig, rng: random.Random) -> None:
        n = geometry.num_pieces
        if have.length != n:
            raise ValueError(f"have bitfield has {have.length} pieces, torrent has {n}")
        self._geometry = geometry
        self._config = config
        self._rng = rng
        self._n = n
        self._bs = geometry.block_size
        self._piece_length = geometry.piece_length
        self._last_size = geometry.piece_size(n - 1) if n else 0
        self._have = have.copy()
        self._avail = [0] * n  # availability not counting seeds
        self._seeds = 0
        self._peers: dict[K, _Peer] = {}
        self._partials: dict[int, _Partial[K]] = {}
        self._with_free: dict[int, None] = {}  # PARTIAL pieces with at least one free block
        order = [i for i in range(n) if i not in self._have]
        rng.shuffle(order)
        self._order = order
        self._pos = [-1] * n
        for position, piece in enumerate(order):
            self._pos[piece] = position
        self._start = [0, len(order)]  # bucket k = order[_start[k]:_start[k + 1]]

    # ------------------------------------------------------------------ queries

    @property
    def have(self) -> Bitfield:
        """Pieces we have verified (the picker's own copy: read, don't modify)."""
        return self._have

    @property
    def complete(self) -> bool:
        return len(self._have) == self._n

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
            return self._n - len(self._have)
        return ps.interesting

    def is_peer_interesting(self, peer: K) -> bool:
        return self.interesting_count(peer) > 0

    def is_interesting(self, has: Bitfield) -> bool:
        """True if ``has`` holds a piece we have not verified."""
        if len(has) > len(self._have):
            return True
        return bool(_as_int(has) & ~_as_int(self._have))

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
            ps = _Peer(copy, (_as_int(copy) & ~_as_int(self._have)).bit_count())
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
            if index not in self._have:
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

    # ------------------------------------------------------------------ picking

    def pick_blocks(
        self,
        peer: K,
        count: int,
        *,
        allow_new_piece: bool = True,
        allowed: Container[int] | None = None,
        max_new_pieces: int | None = None,
    ) -> list[BlockRef]:
        """Choose up to ``count`` blocks to request from ``peer`` and mark them requested by it.

        ``allow_new_piece=False`` (or ``max_new_pieces``) limits how many FREE pieces may
        be started in this call, for the engine's buffer budget.  ``allowed`` restricts
        picks to those pieces (BEP 6 allowed-fast set while choked).  Busy blocks
        (endgame) are given only when the peer has no free block left at all.
        """
        ps = self._peers[peer]
        picked: list[BlockRef] = []
        if count <= 0 or (ps.has is not None and ps.interesting == 0):
            return picked
        has = ps.has
        requests = ps.requests
        partials = self._partials

        # 1. free blocks of pieces already started
        if self._with_free:
            for p in list(self._with_free):
                if (has is not None and p not in has) or (allowed is not None and p not in allowed):
                    continue
                count = self._take_free(p, partials[p], peer, requests, count, picked)
                if count == 0:
                    return picked

        # 2. new pieces
        new_budget = 0 if not allow_new_piece else (max_new_pieces if max_new_pieces is not None else count)
        free_left = False  # a FREE piece this peer could give us remains unstarted
        order = self._order
        if order:
            if len(self._have) < self._config.random_first_pieces:
                while count and new_budget > 0:
                    p = self._random_candidate(has, allowed)
                    if p < 0:
                        break
                    new_budget -= 1
                    count = self._start_piece(p, peer, requests, count, picked)
                if count == 0:
                    return picked
                free_left = new_budget <= 0 and self._random_candidate(has, allowed, probe_only=True) >= 0
            elif has is not None and len(has) * _SPARSE_RATIO < len(order):
                # few pieces: walk the peer's bitfield, not the whole free list
                pos = self._pos
                mine = [p for p in has if pos[p] >= 0 and (allowed is None or p in allowed)]
                mine.sort(key=pos.__getitem__)  # starting a piece keeps the others' bucket order
                for p in mine:
                    if new_budget <= 0:
                        free_left = True
                        break
                    new_budget -= 1
                    count = self._start_piece(p, peer, requests, count, picked)
                    if count == 0:
                        return picked
            else:
                hb = has.to_bytes() if has is not None else None  # raw bits: the fastest membership test
                idx = 0
                while idx < len(order):
                    p = order[idx]
                    if (hb is not None and not hb[p >> 3] & (0x80 >> (p & 7))) or (
                        allowed is not None and p not in allowed
                    ):
                        idx += 1
                        continue
                    if new_budget <= 0:
                        free_left = True
                        break
                    new_budget -= 1
                    # removing p only permutes positions >= idx, so rescan idx
                    count = self._start_piece(p, peer, requests, count, picked)
                    if count == 0:
                        return picked

        # 3. endgame: nothing free anywhere for this peer, so share busy blocks
        if count and not free_left:
            self._take_busy(peer, has, requests, allowed, count, picked)
        return picked

    def _take_free(
        self,
        p: int,
        part: _Partial[K],
        peer: K,
        requests: set[tuple[int, int]],
        count: int,
        picked: list[BlockRef],
    ) -> int:
        state = part.state
        requesters = part.requesters
        b = state.find(_FREE)
        while b >= 0 and count:
            state[b] = _REQUESTED
            requesters[b] = [peer]
            requests.add((p, b))
            picked.append(self._ref(p, b))
            part.free -= 1
            count -= 1
            b = state.find(_FREE, b + 1)
        if part.free == 0:
            self._with_free.pop(p, None)
        return count

    def _start_piece(
        self, p: int, peer: K, requests: set[tuple[int, int]], count: int, picked: list[BlockRef]
    ) -> int:
        part = self._begin(p)
        return self._take_free(p, part, peer, requests, count, picked)

    def _random_candidate(
        self, has: Bitfield | None, allowed: Container[int] | None, probe_only: bool = False
    ) -> int:
        """A uniformly random FREE piece the peer has (and is allowed), or -1."""
        order = self._order
        rng = self._rng
        n = len(order)
        if not n:
            return -1
        if has is not None and len(has) * _SPARSE_RATIO < n:
            pos = self._pos
            mine = [p for p in has if pos[p] >= 0 and (allowed is None or p in allowed)]
            return rng.choice(mine) if mine else -1
        for _ in range(_RANDOM_PROBES):
            p = order[rng.randrange(n)]
            if (has is None or p in has) and (allowed is None or p in allowed):
                return p
        if probe_only:
            for p in order:
                if (has is None or p in has) and (allowed is None or p in allowed):
                    return p
            return -1
        candidates = [p for p in order if (has is None or p in has) and (allowed is None or p in allowed)]
        return rng.choice(candidates) if candidates else -1

    def _take_busy(
        self,
        peer: K,
        has: Bitfield | None,
        requests: set[tuple[int, int]],
        allowed: Container[int] | None,
        count: int,
        picked: list[BlockRef],
    ) -> None:
        limit = self._config.endgame_max_requesters
        if limit < 2:
            return  # endgame disabled
        # by_level[k]: blocks with k requesters; oldest partial pieces first within a level
        by_level: list[list[tuple[int, int]]] = [[] for _ in range(limit)]
        for p, part in self._partials.items():
            if part.received == part.nblocks:
                continue
            if (has is not None and p not in has) or (allowed is not None and p not in allowed):
                continue
            state = part.state
            requesters = part.requesters
            b = state.find(_REQUESTED)
            while b >= 0:
                if (p, b) not in requests:
                    rl = requesters[b]
                    assert rl is not None
                    if len(rl) < limit:
                        by_level[len(rl)].append((p, b))
                b = state.find(_REQUESTED, b + 1)
            if len(by_level[1]) >= count:
                break  # enough of the least-shared blocks already
        for level in by_level:
            for p, b in level:
                rl = self._partials[p].requesters[b]
                assert rl is not None
                rl.append(peer)
                requests.add((p, b))
                picked.append(self._ref(p, b))
                count -= 1
                if count == 0:
                    return

    # ------------------------------------------------------------------ results

    def abort_request(self, peer: K, block: BlockRef) -> None:
        """Our request to ``peer`` is gone (choke, reject, timeout): free the block.

        The block stays requested if other peers have it requested too.  Unknown
        requests are ignored.
        """
        p, b = self._locate(block)
        ps = self._peers.get(peer)
        if ps is None or (p, b) not in ps.requests:
            return
        ps.requests.remove((p, b))
        self._release(p, b, peer)

    def block_received(self, peer: K, block: BlockRef) -> BlockReceived:
        """Record a block's arrival from ``peer``; say whether the piece is complete and whom to cancel.

        A block nobody requested is still accepted if we lack it (``requested`` is False
        then; the engine decides whether that is a protocol error).
        """
        p, b = self._locate(block)
        ps = self._peers.get(peer)
        requested = ps is not None and (p, b) in ps.requests
        if requested:
            assert ps is not None
            ps.requests.remove((p, b))
        if p in self._have:
            return BlockReceived(p, False, True, (), requested)
        part = self._partials.get(p)
        if part is None:
            part = self._begin(p)
        state = part.state[b]
        if state == _RECEIVED:
            return BlockReceived(p, False, True, (), requested)
        cancel: tuple[K, ...] = ()
        rl = part.requesters[b]
        if rl is not None:
            if len(rl) > 1 or rl[0] != peer:  # endgame: others asked for it too
                cancel = tuple(q for q in rl if q != peer)
                for q in cancel:
                    self._peers[q].requests.discard((p, b))
            part.requesters[b] = None
        if state == _FREE:
            part.free -= 1
            if part.free == 0:
                self._with_free.pop(p, None)
        part.state[b] = _RECEIVED
        part.received += 1
        part.senders[b] = peer
        return BlockReceived(p, part.received == part.nblocks, False, cancel, requested)

    def piece_verified(self, index: int) -> None:
        """Piece ``index`` passed its hash (or was found on disk): we have it.

        Outstanding requests for it, if any, are dropped from the picker.
        """
        self._geometry.check_piece(index)
        if index in self._have:
            return
        if index in self._partials:
            self._drop_partial(index)
        elif self._pos[index] >= 0:
            self._remove(index)
        self._have.add(index)
        for ps in self._peers.values():
            if ps.has is not None and index in ps.has:
                ps.interesting -= 1

    def piece_failed(self, index: int) -> set[K]:
        """Piece ``index`` failed its hash: reset it to FREE and return the peers that sent blocks of it."""
        self._geometry.check_piece(index)
        if index in self._have:
            raise LocalProtocolError(f"piece {index} failed its hash after it was verified")
        if index not in self._partials:
            return set()
        part = self._drop_partial(index)
        self._insert(index)
        return {s for s in part.senders if s is not None}

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

    def _begin(self, p: int) -> _Partial[K]:
        """FREE -> PARTIAL."""
        self._remove(p)
        part: _Partial[K] = _Partial(self._nblocks(p))
        self._partials[p] = part
        self._with_free[p] = None
        return part

    def _drop_partial(self, p: int) -> _Partial[K]:
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
        part.state[b] = _FREE
        part.free += 1
        if part.free == part.nblocks:  # nothing requested or received: back to FREE
            self._partials.pop(p)
            self._with_free.pop(p, None)
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

    def _swap(self, i: int, j: int) -> None:
        order = self._order
        a, b = order[i], order[j]
        order[i], order[j] = b, a
        self._pos[a] = j
        self._pos[b] = i

    def _ensure_buckets(self, a: int) -> None:
        start = self._start
        while len(start) < a + 2:
            start.append(start[-1])

    def _inc(self, p: int) -> None:
        a = self._avail[p]
        self._avail[p] = a + 1
        if self._pos[p] < 0:
            return
        self._ensure_buckets(a + 1)
        start = self._start
        # swap to the end of bucket a, move the boundary: p is now first of bucket a + 1
        self._swap(self._pos[p], start[a + 1] - 1)
        start[a + 1] -= 1
        lo = start[a + 1]
        self._swap(lo, self._rng.randrange(lo, start[a + 2]))

    def _dec(self, p: int) -> None:
        a = self._avail[p]
        if a <= 0:
            raise LocalProtocolError(f"availability of piece {p} would become negative")
        self._avail[p] = a - 1
        if self._pos[p] < 0:
            return
        start = self._start
        # swap to the front of bucket a, move the boundary: p is now last of bucket a - 1
        self._swap(self._pos[p], start[a])
        start[a] += 1
        self._swap(start[a] - 1, self._rng.randrange(start[a - 1], start[a]))

    def _remove(self, p: int) -> None:
        """Take a FREE piece out of the ordered list."""
        start = self._start
        top = len(start) - 2
        for k in range(self._avail[p], top):
            self._swap(self._pos[p], start[k + 1] - 1)
            start[k + 1] -= 1
        self._swap(self._pos[p], len(self._order) - 1)
        self._order.pop()
        start[-1] -= 1
        self._pos[p] = -1

    def _insert(self, p: int) -> None:
        """Put a piece back into the ordered list (it becomes FREE)."""
        a = self._avail[p]
        self._ensure_buckets(a)
        start = self._start
        self._order.append(p)
        self._pos[p] = len(self._order) - 1
        start[-1] += 1
        for k in range(len(start) - 2, a, -1):
            self._swap(self._pos[p], start[k])
            start[k] += 1
        self._swap(self._pos[p], self._rng.randrange(start[a], start[a + 1]))

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
            lacking = sum(1 for i in ps.has if i not in self._have)
            assert ps.interesting == lacking, "interesting count drifted"
        assert avail == self._avail, "availability drifted"
        assert seeds == self._seeds
        order, start, pos = self._order, self._start, self._pos
        assert start[0] == 0 and start[-1] == len(order)
        assert all(start[k] <= start[k + 1] for k in range(len(start) - 1))
        for k in range(len(start) - 1):
            for position in range(start[k], start[k + 1]):
                assert self._avail[order[position]] == k, "piece in the wrong bucket"
        for position, p in enumerate(order):
            assert pos[p] == position
        in_order = set(order)
        assert len(in_order) == len(order)
        for i in range(n):
            states = (i in in_order) + (i in self._partials) + (i in self._have)
            assert states == 1, f"piece {i} is in {states} states"
            assert (pos[i] >= 0) == (i in in_order)
        expected_requests: dict[K, set[tuple[int, int]]] = {peer: set() for peer in self._peers}
        for p, part in self._partials.items():
            free = sum(1 for s in part.state if s == _FREE)
            received = sum(1 for s in part.state if s == _RECEIVED)
            assert part.free == free and part.received == received
            assert free < part.nblocks, "a partial piece with nothing requested or received"
            assert (p in self._with_free) == (free > 0)
            for b, s in enumerate(part.state):
                rl = part.requesters[b]
                if s == _REQUESTED:
                    assert rl and len(set(rl)) == len(rl)
                    for q in rl:
                        expected_requests[q].add((p, b))
                else:
                    assert rl is None
                assert (part.senders[b] is not None) == (s == _RECEIVED)
        for peer, ps in self._peers.items():
            assert ps.requests == expected_requests[peer], "peer request set drifted"


def _as_int(bf: Bitfield) -> int:
    return int.from_bytes(bf.to_bytes(), "big")
