"""An in-memory network of sans-I/O DHT nodes on a virtual clock.

Used by the tests and by ``benchmarks/dht_sim.py``: the real :class:`DhtNode`
code runs unchanged; only the transport is simulated.  Every datagram is
delivered after a random one-way latency and may be lost; datagrams to dead or
unknown addresses vanish.  The clock jumps from event to event, so hours of
protocol time take as long as the work done in them.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from p2pshare.core.dht.events import DhtEvent
from p2pshare.core.dht.krpc import Addr
from p2pshare.core.dht.node import DhtNode

__all__ = ["SimNetwork", "SimStats"]

_DELIVER = 0
_TIMER = 1


@dataclass(slots=True)
class SimStats:
    """Datagrams a node sent and received (delivered to it)."""

    sent: int = 0
    received: int = 0


@dataclass(slots=True)
class _Slot:
    node: DhtNode
    stats: SimStats = field(default_factory=SimStats)
    timer: float | None = None
    events: list[tuple[float, DhtEvent]] = field(default_factory=list)


class SimNetwork:
    """Nodes keyed by address, joined by a lossy, laggy virtual network."""

    def __init__(
        self,
        *,
        rng: random.Random,
        latency: tuple[float, float] = (0.02, 0.2),
        loss: float = 0.0,
        start: float = 0.0,
    ) -> None:
        self.rng = rng
        self.latency = latency
        self.loss = loss
        self.now = start
        self.slots: dict[Addr, _Slot] = {}
        self.dead: set[Addr] = set()
        self._queue: list[tuple[float, int, int, Addr, bytes, Addr]] = []
        self._seq = 0
        self.delivered = 0
        self.lost = 0

    # -- membership -------------------------------------------------------------------

    def add(self, addr: Addr, node: DhtNode) -> None:
        self.slots[addr] = _Slot(node)
        self._sync(addr)

    def node(self, addr: Addr) -> DhtNode:
        return self.slots[addr].node

    def stats(self, addr: Addr) -> SimStats:
        return self.slots[addr].stats

    def kill(self, addr: Addr) -> None:
        """The node stops sending and receiving (its queued events vanish)."""
        self.dead.add(addr)

    def events(self, addr: Addr) -> list[DhtEvent]:
        """Events a node produced so far (drained from it after every step)."""
        return [ev for _, ev in self.slots[addr].events]

    def timed_events(self, addr: Addr) -> list[tuple[float, DhtEvent]]:
        """Events a node produced so far, each with the virtual time it appeared."""
        return self.slots[addr].events

    # -- driving ----------------------------------------------------------------------

    def call(self, addr: Addr, action: Callable[[DhtNode, float], object]) -> object:
        """Run ``action(node, now)`` on a node and send what it produced."""
        result = action(self.slots[addr].node, self.now)
        self._sync(addr)
        return result

    def _push(self, when: float, kind: int, dst: Addr, data: bytes, src: Addr) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (when, self._seq, kind, dst, data, src))

    def _sync(self, addr: Addr) -> None:
        slot = self.slots[addr]
        node = slot.node
        lo, hi = self.latency
        for data, dst in node.datagrams_to_send():
            slot.stats.sent += 1
            if self.loss and self.rng.random() < self.loss:
                self.lost += 1
                continue
            self._push(self.now + self.rng.uniform(lo, hi), _DELIVER, dst, data, addr)
        while (ev := node.next_event()) is not None:
            slot.events.append((self.now, ev))
        when = node.get_timer()
        if when is not None and (slot.timer is None or when < slot.timer):
            slot.timer = when
            self._push(when, _TIMER, addr, b"", addr)

    def step(self) -> bool:
        """Process the next event; False when nothing is left."""
        while self._queue:
            when, _, kind, dst, data, src = heapq.heappop(self._queue)
            slot = self.slots.get(dst)
            if slot is None or dst in self.dead:
                continue
            if kind == _TIMER:
                if slot.timer != when:
                    continue  # superseded by an earlier timer
                slot.timer = None
                self.now = max(self.now, when)
                slot.node.handle_timer(self.now)
            else:
                if src in self.dead:
                    continue
                self.now = max(self.now, when)
                self.delivered += 1
                slot.stats.received += 1
                slot.node.receive_datagram(data, src, self.now)
            self._sync(dst)
            return True
        return False

    def run_until(self, done: Callable[[], bool], *, max_time: float, max_steps: int = 10_000_000) -> bool:
        """Step until ``done()``, ``max_time`` of virtual time passes, or ``max_steps``; returns done()."""
        deadline = self.now + max_time
        for _ in range(max_steps):
            if done():
                return True
            if not self._queue or self._queue[0][0] > deadline:
                break
            self.step()
        self.now = max(self.now, min(deadline, self.now))
        return done()

    def run_for(self, duration: float, *, max_steps: int = 10_000_000) -> None:
        """Advance virtual time by ``duration``, processing everything due."""
        deadline = self.now + duration
        for _ in range(max_steps):
            if not self._queue or self._queue[0][0] > deadline:
                break
            self.step()
        self.now = deadline
