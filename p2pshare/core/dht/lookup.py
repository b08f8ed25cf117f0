"""Iterative Kademlia lookup (find_node / get_peers), as a pure state machine.

Theory of operation
-------------------
A :class:`Lookup` keeps candidates sorted by XOR distance to the target.  Each
candidate is NEW, IN_FLIGHT, RESPONDED or FAILED; an in-flight query may also be
marked *slow* when its short timeout passes.

:meth:`Lookup.next_queries` walks the candidates nearest first, skipping failed
and slow ones, and

* counts RESPONDED candidates until ``k`` of them are found;
* counts IN_FLIGHT ones as outstanding;
* picks NEW ones to query while fewer than ``branch_factor`` queries are active.

The lookup has converged when the ``k`` nearest live candidates have all answered
and nothing nearer is outstanding, or when nothing is left to ask and every query
still out has passed its short timeout.  A slow query widens the branch factor
by one (so a lost packet costs one short timeout, not a full one) and no longer
holds up convergence; if its answer arrives later it is used all the same.

As in the Kademlia paper, once an answer brings no candidate nearer than the
nearest already known, the lookup is in its final phase: it stops probing ``alpha``
at a time and asks every remaining one of the ``k`` nearest at once, which saves
about two round trips per lookup at the same message count.

The lookup knows nothing of transactions, packets or time: the node feeds it
answers and timeouts and sends the queries it picks.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from p2pshare.core.dht.ids import ID_BITS, id_to_int
from p2pshare.core.dht.krpc import Addr

__all__ = ["Candidate", "CandidateState", "Lookup", "LookupKind"]


class LookupKind(Enum):
    """What a lookup is for."""

    FIND_NODE = "find_node"
    GET_PEERS = "get_peers"
    ANNOUNCE = "announce"  #: get_peers, then announce_peer to the closest nodes
    BOOTSTRAP = "bootstrap"  #: find_node of our own id
    REFRESH = "refresh"  #: find_node of a random id in a stale bucket
    GET_ITEM = "get_item"  #: BEP 44 get, keeping the item with the highest seq
    PUT_ITEM = "put_item"  #: BEP 44 get for tokens, then put to the closest nodes


class CandidateState(Enum):
    NEW = 0
    IN_FLIGHT = 1
    RESPONDED = 2
    FAILED = 3


@dataclass(slots=True, eq=False)
class Candidate:
    """A node the lookup knows of; ``node_id`` is None for a bootstrap address."""

    addr: Addr
    node_id: bytes | None
    dist: int
    depth: int
    state: CandidateState = CandidateState.NEW
    slow: bool = False
    token: bytes | None = None


class Lookup:
    """State of one iterative lookup; see the module docstring."""

    def __init__(
        self,
        lookup_id: int,
        kind: LookupKind,
        target: bytes,
        *,
        k: int,
        alpha: int,
        max_candidates: int,
        max_rounds: int,
    ) -> None:
        self.lookup_id = lookup_id
        self.kind = kind
        self.target = target
        self._target_int = id_to_int(target)
        self.k = k
        self.alpha = alpha
        self.branch_factor = alpha
        self.max_candidates = max_candidates
        self.max_rounds = max_rounds
        self._sorted: list[Candidate] = []
        self._by_addr: dict[Addr, Candidate] = {}
        self._ids: set[bytes] = set()
        self._unknown = 0
        self.active = 0  #: in-flight queries not yet marked slow
        self.in_flight = 0
        self.converged = False
        self.finished = False
        self.final_phase = False
        # statistics
        self.queries_sent = 0
        self.responses = 0
        self.failures = 0
        self.max_depth = 0

    # -- candidates ------------------------------------------------------------------

    def _dist(self, node_id: bytes | None) -> int:
        if node_id is None:
            self._unknown += 1
            return (1 << ID_BITS) + self._unknown  # unknown ids sort after every real one
        return id_to_int(node_id) ^ self._target_int

    def add_candidates(self, nodes: Iterable[tuple[bytes | None, Addr]], depth: int) -> None:
        """Offer nodes (from the table, a bootstrap list or an answer) as candidates."""
        for node_id, addr in nodes:
            if addr in self._by_addr or (node_id is not None and node_id in self._ids):
                continue
            dist = self._dist(node_id)
            if len(self._sorted) >= self.max_candidates:
                if dist >= self._sorted[-1].dist:
                    continue
                if not self._drop_farthest():
                    continue
            cand = Candidate(addr, node_id, dist, depth)
            bisect.insort(self._sorted, cand, key=_dist_of)
            self._by_addr[addr] = cand
            if node_id is not None:
                self._ids.add(node_id)

    def _drop_farthest(self) -> bool:
        for i in range(len(self._sorted) - 1, -1, -1):
            c = self._sorted[i]
            if c.state in (CandidateState.NEW, CandidateState.FAILED):
                del self._sorted[i]
                del self._by_addr[c.addr]
                if c.node_id is not None:
                    self._ids.discard(c.node_id)
                return True
        return False

    def get(self, addr: Addr) -> Candidate | None:
        return self._by_addr.get(addr)

    # -- progress --------------------------------------------------------------------

    def next_queries(self) -> list[Candidate]:
        """Candidates to query now (marked in flight); updates :attr:`converged`."""
        if self.converged or self.finished:
            return []
        chosen: list[Candidate] = []
        results_target = self.k
        outstanding = 0
        for c in self._sorted:
            if results_target == 0:
                break
            state = c.state
            if state is CandidateState.FAILED or c.slow:
                continue
            if state is CandidateState.RESPONDED:
                results_target -= 1
                continue
            if state is CandidateState.IN_FLIGHT:
                outstanding += 1
                continue
            if c.depth >= self.max_rounds:
                continue
            if self.active >= self.branch_factor:
                outstanding += 1  # still to ask: not converged
                break
            c.state = CandidateState.IN_FLIGHT
            self.active += 1
            self.in_flight += 1
            self.queries_sent += 1
            self.max_depth = max(self.max_depth, c.depth + 1)
            outstanding += 1
            chosen.append(c)
        # Converged: the k nearest answered with nothing nearer pending, or nothing is left to
        # ask and no query is still within its short timeout (slow ones are not waited for).
        if (results_target == 0 and outstanding == 0) or (self.active == 0 and not chosen):
            self.converged = True
        return chosen

    def on_response(
        self, addr: Addr, node_id: bytes, nodes: Iterable[tuple[bytes, Addr]], token: bytes | None
    ) -> None:
        """An answer from ``addr``: record it and its nodes."""
        c = self._by_addr.get(addr)
        if c is None or c.state is not CandidateState.IN_FLIGHT:
            return
        self._settle(c)
        c.state = CandidateState.RESPONDED
        c.token = token
        self.responses += 1
        if c.node_id != node_id:
            # A bootstrap address (id unknown until now) or a node that changed its id.
            if c.node_id is not None:
                self._ids.discard(c.node_id)
            if node_id in self._ids:
                c.state = CandidateState.FAILED  # duplicate of a known candidate
            else:
                self._sorted.remove(c)
                c.node_id = node_id
                c.dist = id_to_int(node_id) ^ self._target_int
                bisect.insort(self._sorted, c, key=_dist_of)
                self._ids.add(node_id)
        if not self.converged:
            best = self._nearest_dist()
            self.add_candidates(nodes, c.depth + 1)
            if best is not None and best <= c.dist and self._nearest_dist() == best:
                self.final_phase = True
                self.branch_factor = max(self.branch_factor, self.k)

    def _nearest_dist(self) -> int | None:
        for c in self._sorted:
            if c.state is not CandidateState.FAILED:
                return c.dist
        return None

    def on_slow(self, addr: Addr) -> None:
        """The short timeout of the query to ``addr`` passed: open one more slot."""
        c = self._by_addr.get(addr)
        if c is None or c.state is not CandidateState.IN_FLIGHT or c.slow:
            return
        c.slow = True
        self.active -= 1

    def on_failure(self, addr: Addr) -> None:
        """The query to ``addr`` timed out or got an error."""
        c = self._by_addr.get(addr)
        if c is None or c.state is not CandidateState.IN_FLIGHT:
            return
        self._settle(c)
        c.state = CandidateState.FAILED
        self.failures += 1

    def _settle(self, c: Candidate) -> None:
        self.in_flight -= 1
        if c.slow:
            c.slow = False
        else:
            self.active -= 1

    def closest_responded(self, count: int) -> list[Candidate]:
        """The ``count`` nearest candidates that answered, nearest first."""
        out = []
        for c in self._sorted:
            if c.state is CandidateState.RESPONDED:
                out.append(c)
                if len(out) == count:
                    break
        return out


def _dist_of(c: Candidate) -> int:
    return c.dist
