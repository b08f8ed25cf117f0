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
   few pieces is served by walking its own bitfield instead.  In sequential mode
   (streaming) the *read-ahead window* comes first: the ``window`` missing wanted pieces
   from the first missing one on, in index order; while the peer has any of them, no
   piece outside the window is started (a peer with none of them is asked rarest first,
   so it is still useful).  Pieces outside the wanted set (files not chosen) are never
   in ``_order`` at all;
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
``random.Random`` it is given.  Its parts: :mod:`.availability` (the ordered FREE
list), :mod:`.picker_state` (pieces, blocks, peers, queries), this module (picking
and block results), :mod:`.pipelining` (how many requests to keep in flight).
"""

from __future__ import annotations

from collections.abc import Container

from p2pshare.core.bitfield import Bitfield
from p2pshare.core.geometry import BlockRef
from p2pshare.core.picker_state import FREE, RECEIVED, REQUESTED, BlockReceived, K, Partial, PickerState
from p2pshare.core.pipelining import queue_depth
from p2pshare.errors import LocalProtocolError

__all__ = ["BlockReceived", "PiecePicker", "queue_depth"]

#: Random probes into the free list before falling back to a full scan (random-first phase).
_RANDOM_PROBES = 16
#: A peer with fewer than 1/this of the free pieces is served by walking its own bitfield.
_SPARSE_RATIO = 16


class PiecePicker(PickerState[K]):
    """Availability, rarest-first piece selection and block bookkeeping for one torrent.

    Peers are keys of any hashable type (a connection object, an id).  See the module
    docstring for the theory of operation; the state is in
    :class:`~p2pshare.core.picker_state.PickerState`.
    """

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

        # 2. new pieces: the read-ahead window in order (sequential), then random / rarest first
        new_budget = 0 if not allow_new_piece else (max_new_pieces if max_new_pieces is not None else count)
        free_left = False  # a FREE piece this peer could give us remains unstarted
        in_window = False  # sequential: the peer has a missing piece of the window (so stay in it)
        if self._seq_window:
            pos = self._pos
            for p in self._window():
                if (has is not None and p not in has) or (allowed is not None and p not in allowed):
                    continue
                in_window = True
                if pos[p] < 0:
                    continue  # started already
                if new_budget <= 0:
                    free_left = True
                    break
                new_budget -= 1
                count = self._start_piece(p, peer, requests, count, picked)
                if count == 0:
                    return picked
        order = self._order if not in_window else []
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

    # ------------------------------------------------------------------ sequential

    def set_sequential(self, window: int) -> None:
        """Download in index order: new pieces come only from the ``window`` missing pieces from
        the first missing one on, in order, while the peer has any of them (a peer with none of
        them is still asked rarest first); 0 turns it off (rarest first everywhere)."""
        if window < 0:
            raise ValueError("the read-ahead window cannot be negative")
        self._seq_window = window

    @property
    def first_missing(self) -> int:
        """The lowest wanted piece not verified (``num_pieces`` when none is missing)."""
        i = self._seq_first
        while i < self._n and (i in self._have or not self.wants(i)):
            i += 1
        self._seq_first = i
        return i

    def _window(self) -> list[int]:
        """The missing wanted pieces of the read-ahead window, in index order (FREE or started)."""
        out: list[int] = []
        i = self.first_missing
        while i < self._n and len(out) < self._seq_window:
            if self.wants(i) and i not in self._have:
                out.append(i)
            i += 1
        return out

    def _take_free(
        self,
        p: int,
        part: Partial[K],
        peer: K,
        requests: set[tuple[int, int]],
        count: int,
        picked: list[BlockRef],
    ) -> int:
        state = part.state
        requesters = part.requesters
        b = state.find(FREE)
        while b >= 0 and count:
            state[b] = REQUESTED
            requesters[b] = [peer]
            requests.add((p, b))
            picked.append(self._ref(p, b))
            part.free -= 1
            count -= 1
            b = state.find(FREE, b + 1)
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
            b = state.find(REQUESTED)
            while b >= 0:
                if (p, b) not in requests:
                    rl = requesters[b]
                    assert rl is not None
                    if len(rl) < limit:
                        by_level[len(rl)].append((p, b))
                b = state.find(REQUESTED, b + 1)
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
            if not self.wants(p):
                return BlockReceived(p, False, True, (), requested)  # a piece we did not choose
            part = self._begin(p)
        state = part.state[b]
        if state == RECEIVED:
            return BlockReceived(p, False, True, (), requested)
        cancel: tuple[K, ...] = ()
        rl = part.requesters[b]
        if rl is not None:
            if len(rl) > 1 or rl[0] != peer:  # endgame: others asked for it too
                cancel = tuple(q for q in rl if q != peer)
                for q in cancel:
                    self._peers[q].requests.discard((p, b))
            part.requesters[b] = None
        if state == FREE:
            part.free -= 1
            if part.free == 0:
                self._with_free.pop(p, None)
        part.state[b] = RECEIVED
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
        if not self.wants(index):
            return  # it was never counted as missing
        self._left -= 1
        for ps in self._peers.values():
            if ps.has is not None and index in ps.has:
                ps.interesting -= 1

    def block_senders(self, index: int) -> list[K | None]:
        """Who sent each block of partial piece ``index`` (None: not received); [] if not partial."""
        part = self._partials.get(index)
        return list(part.senders) if part is not None else []

    def piece_failed(self, index: int) -> set[K]:
        """Piece ``index`` failed its hash: reset it to FREE and return the peers that sent blocks of it."""
        self._geometry.check_piece(index)
        if index in self._have:
            raise LocalProtocolError(f"piece {index} failed its hash after it was verified")
        if index not in self._partials:
            return set()
        part = self._drop_partial(index)
        if self.wants(index):
            self._insert(index)
        return {s for s in part.senders if s is not None}
