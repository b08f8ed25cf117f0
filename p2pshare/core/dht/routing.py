"""The Kademlia routing table of BEP 5.

Theory of operation
-------------------
The 160-bit id space is covered by buckets ``[lo, hi)``, each holding at most ``k``
nodes.  Only the bucket whose range holds our own id may split, so the table is
fine-grained near us and coarse far away.

Only nodes that have answered one of our queries are ever inserted (the node
verifies newcomers with a ping first).  Each entry tracks when it last answered
us, when it last queried us and how many queries in a row it failed:

* good: answered within ``node_questionable_after`` (15 min), or has answered before
  and queried us within that window;
* bad: failed ``node_max_failures`` queries in a row;
* questionable: everything else.

When a bucket is full, a newcomer replaces a bad node; failing that, the bucket
splits if it holds our id; failing that, the newcomer waits in the bucket's
replacement cache, and :meth:`RoutingTable.heard_from` hands back a questionable
node for the caller to ping.  A node that goes bad is swapped for the freshest
replacement at once.  A bucket whose membership has not changed for
``bucket_refresh`` (15 min) is due a refresh lookup (:meth:`buckets_to_refresh`).

Everything takes ``now``; nothing here sends or schedules anything.
"""

from __future__ import annotations

import bisect
import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum

from p2pshare.config import DhtConfig
from p2pshare.core.dht.ids import ID_BITS, id_to_int, random_id_in_range
from p2pshare.core.dht.krpc import Addr

__all__ = ["Bucket", "NodeEntry", "NodeState", "RoutingTable"]

_NEVER = float("-inf")


class NodeState(Enum):
    """BEP 5 node states."""

    GOOD = "good"
    QUESTIONABLE = "questionable"
    BAD = "bad"


@dataclass(slots=True, eq=False)
class NodeEntry:
    """One node in the table."""

    node_id: bytes
    id_int: int
    addr: Addr
    last_response: float
    last_query: float = _NEVER
    failures: int = 0
    last_ping: float = _NEVER

    def state(self, now: float, config: DhtConfig) -> NodeState:
        """Good, questionable or bad at time ``now``."""
        if self.failures >= config.node_max_failures:
            return NodeState.BAD
        window = config.node_questionable_after
        if now - self.last_response < window or now - self.last_query < window:
            return NodeState.GOOD
        return NodeState.QUESTIONABLE

    @property
    def last_seen(self) -> float:
        return max(self.last_response, self.last_query)


@dataclass(slots=True, eq=False)
class Bucket:
    """Nodes whose ids fall in ``[lo, hi)``."""

    lo: int
    hi: int
    last_changed: float
    nodes: list[NodeEntry] = field(default_factory=list)
    replacements: list[NodeEntry] = field(default_factory=list)  #: freshest last

    def covers(self, id_int: int) -> bool:
        return self.lo <= id_int < self.hi


class RoutingTable:
    """Buckets of nodes around ``own_id``; see the module docstring."""

    def __init__(self, own_id: bytes, config: DhtConfig, now: float) -> None:
        self.own_id = own_id
        self.own_int = id_to_int(own_id)
        self.config = config
        self.buckets: list[Bucket] = [Bucket(0, 1 << ID_BITS, now)]
        self._los: list[int] = [0]
        self._by_id: dict[bytes, NodeEntry] = {}
        self._by_addr: dict[Addr, NodeEntry] = {}

    # -- lookups ---------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[NodeEntry]:
        return iter(list(self._by_id.values()))

    def get(self, node_id: bytes) -> NodeEntry | None:
        return self._by_id.get(node_id)

    def get_by_addr(self, addr: Addr) -> NodeEntry | None:
        return self._by_addr.get(addr)

    def bucket_for(self, id_int: int) -> Bucket:
        return self.buckets[bisect.bisect_right(self._los, id_int) - 1]

    def closest(self, target: bytes, count: int, now: float) -> list[NodeEntry]:
        """Up to ``count`` non-bad nodes nearest ``target``, nearest first."""
        t = id_to_int(target)
        limit = self.config.node_max_failures
        return heapq.nsmallest(
            count, (e for e in self._by_id.values() if e.failures < limit), key=lambda e: e.id_int ^ t
        )

    def would_accept(self, node_id: bytes, now: float) -> bool:
        """Whether a new node with this id could enter the table right now."""
        if node_id == self.own_id or node_id in self._by_id:
            return False
        bucket = self.bucket_for(id_to_int(node_id))
        if len(bucket.nodes) < self.config.k or bucket.covers(self.own_int):
            return True
        return any(e.state(now, self.config) is NodeState.BAD for e in bucket.nodes)

    def count(self, now: float) -> dict[str, int]:
        """How many nodes are in each state."""
        counts = {s.value: 0 for s in NodeState}
        for e in self._by_id.values():
            counts[e.state(now, self.config).value] += 1
        return counts

    # -- updates ---------------------------------------------------------------------

    def heard_from(self, node_id: bytes, addr: Addr, now: float, *, responded: bool) -> NodeEntry | None:
        """Record a message from a node; insert it if it answered a query.

        Returns a questionable node the caller should ping (to make room for a
        newcomer waiting in a full bucket's replacement cache), or None.
        """
        if node_id == self.own_id:
            return None
        entry = self._by_id.get(node_id)
        if entry is not None:
            if entry.addr != addr:
                return None  # same id from another address: keep the one we know
            if responded:
                entry.last_response = now
                entry.failures = 0
                self.bucket_for(entry.id_int).last_changed = now
            else:
                entry.last_query = now
            return None
        if not responded:
            return None
        old = self._by_addr.get(addr)
        if old is not None:
            self._remove(old)  # the node at this address changed its id
        new = NodeEntry(node_id, id_to_int(node_id), addr, now)
        return self._insert(new, now)

    def _insert(self, new: NodeEntry, now: float) -> NodeEntry | None:
        k = self.config.k
        while True:
            index = bisect.bisect_right(self._los, new.id_int) - 1
            bucket = self.buckets[index]
            if len(bucket.nodes) < k:
                self._place(bucket, new, now)
                return None
            bad = [e for e in bucket.nodes if e.state(now, self.config) is NodeState.BAD]
            if bad:
                worst = max(bad, key=lambda e: e.failures)
                self._remove(worst)
                self._place(bucket, new, now)
                return None
            if bucket.covers(self.own_int) and bucket.hi - bucket.lo > 1:
                self._split(index)
                continue
            # Full: wait in the replacement cache; ask for a questionable node to be pinged.
            reps = bucket.replacements
            for i, r in enumerate(reps):
                if r.node_id == new.node_id or r.addr == new.addr:
                    del reps[i]
                    break
            reps.append(new)
            if len(reps) > self.config.replacement_cache:
                del reps[0]
            questionable = [
                e
                for e in bucket.nodes
                if e.state(now, self.config) is NodeState.QUESTIONABLE
                and now - e.last_ping >= self.config.query_timeout
            ]
            if questionable:
                target = min(questionable, key=lambda e: e.last_seen)
                target.last_ping = now
                return target
            return None

    def _place(self, bucket: Bucket, entry: NodeEntry, now: float) -> None:
        bucket.nodes.append(entry)
        bucket.last_changed = now
        self._by_id[entry.node_id] = entry
        self._by_addr[entry.addr] = entry

    def _remove(self, entry: NodeEntry) -> None:
        bucket = self.bucket_for(entry.id_int)
        if entry in bucket.nodes:
            bucket.nodes.remove(entry)
        self._by_id.pop(entry.node_id, None)
        if self._by_addr.get(entry.addr) is entry:
            del self._by_addr[entry.addr]

    def _split(self, index: int) -> None:
        old = self.buckets[index]
        mid = (old.lo + old.hi) // 2
        low = Bucket(old.lo, mid, old.last_changed)
        high = Bucket(mid, old.hi, old.last_changed)
        for e in old.nodes:
            (low if e.id_int < mid else high).nodes.append(e)
        for e in old.replacements:
            (low if e.id_int < mid else high).replacements.append(e)
        for b in (low, high):
            while len(b.nodes) < self.config.k and b.replacements:
                e = b.replacements.pop()
                b.nodes.append(e)
                self._by_id[e.node_id] = e
                self._by_addr[e.addr] = e
        self.buckets[index : index + 1] = [low, high]
        self._los[index : index + 1] = [low.lo, high.lo]

    def failed(self, addr: Addr, now: float) -> None:
        """A query to ``addr`` timed out; a node that turns bad yields to a replacement."""
        entry = self._by_addr.get(addr)
        if entry is None:
            return
        entry.failures += 1
        if entry.failures < self.config.node_max_failures:
            return
        bucket = self.bucket_for(entry.id_int)
        if bucket.replacements:
            self._remove(entry)
            self._place(bucket, bucket.replacements.pop(), now)

    def remove(self, node_id: bytes) -> None:
        """Forget a node (for example one that answered with an error it should not have)."""
        entry = self._by_id.get(node_id)
        if entry is not None:
            self._remove(entry)

    # -- maintenance -----------------------------------------------------------------

    def buckets_to_refresh(self, now: float, rng: random.Random) -> list[bytes]:
        """Random targets inside each bucket left unchanged for ``bucket_refresh``; marks them fresh."""
        targets = []
        for b in self.buckets:
            if now - b.last_changed >= self.config.bucket_refresh:
                b.last_changed = now
                targets.append(random_id_in_range(b.lo, b.hi, rng))
        return targets

    def questionable_nodes(self, now: float, limit: int) -> list[NodeEntry]:
        """Up to ``limit`` questionable nodes not pinged lately, least recently seen first; marks them."""
        cands = [
            e
            for e in self._by_id.values()
            if e.state(now, self.config) is NodeState.QUESTIONABLE
            and now - e.last_ping >= self.config.query_timeout
        ]
        chosen = heapq.nsmallest(limit, cands, key=lambda e: e.last_seen)
        for e in chosen:
            e.last_ping = now
        return chosen

    def good_nodes(self, now: float) -> list[NodeEntry]:
        return [e for e in self._by_id.values() if e.state(now, self.config) is NodeState.GOOD]
