"""The FREE pieces of a torrent, kept in one list sorted by availability (rarest first).

``_order`` holds the FREE pieces; ``_start[k]`` is where the bucket of pieces with
availability ``k`` begins; ``_pos[i]`` is the position of piece ``i`` (-1 if not
FREE); ``_avail[i]`` is piece ``i``'s availability (seeds not counted).  A HAVE
moves a piece one bucket up by swapping it with the bucket's last element and
moving the boundary, O(1) (libtorrent ``piece_picker``); it is then swapped with a
random member of its new bucket, so ties are broken at random.  This is the base
of :class:`~p2pshare.core.picker.PiecePicker`, which reads these lists directly on
its picking path.
"""

from __future__ import annotations

import random

from p2pshare.errors import LocalProtocolError

__all__ = ["AvailabilityOrder"]


class AvailabilityOrder:
    """Availability counts and the rarest-first order of the FREE pieces."""

    def __init__(self, n: int, free: list[int], rng: random.Random) -> None:
        self._rng = rng
        self._avail = [0] * n  # availability not counting seeds
        order = list(free)
        rng.shuffle(order)
        self._order = order
        self._pos = [-1] * n
        for position, piece in enumerate(order):
            self._pos[piece] = position
        self._start = [0, len(order)]  # bucket k = order[_start[k]:_start[k + 1]]

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

    def check_order(self) -> set[int]:
        """Raise AssertionError unless the buckets and positions agree; return the FREE pieces."""
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
        return in_order
