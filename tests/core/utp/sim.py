"""Two uTP managers joined by a simulated path on a virtual clock (loss, reordering, duplication, delay)."""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from p2pshare.config import UtpConfig
from p2pshare.core.utp import Closed, Connected, DataReceived, IncomingConnection, UtpEvent, UtpManager

A = ("127.0.0.2", 6881)
B = ("127.0.0.3", 6881)


@dataclass
class Path:
    """How the simulated network treats each datagram in one direction."""

    delay: float = 0.010
    jitter: float = 0.0  #: uniform extra delay (reorders packets)
    loss: float = 0.0
    duplicate: float = 0.0
    rate: float | None = None  #: bytes/s of a bottleneck link with an unbounded queue
    mtu: int | None = None  #: datagrams larger than this are dropped
    queue_limit: float | None = None  #: bottleneck buffer, in seconds of queue; beyond it: tail drop


@dataclass
class RenoFlow:
    """A loss-based bulk flow (TCP Reno-like, AIMD on tail drops) through the a->b bottleneck."""

    start: float
    stop: float
    mss: int = 1400
    cwnd: float = 2.0
    ssthresh: float = float("inf")
    inflight: int = 0
    last_cut: float = -1.0
    delivered: list[tuple[float, int]] = field(default_factory=list)  #: (time, bytes) at the sink


@dataclass
class Pair:
    """Two managers and the datagrams in flight between them, driven by ``run``."""

    config: UtpConfig = field(default_factory=UtpConfig)
    seed: int = 1
    ab: Path = field(default_factory=Path)
    ba: Path = field(default_factory=Path)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.now = 0.0
        self.a = UtpManager(self.config, rng=random.Random(self.seed + 1))
        self.b = UtpManager(self.config, rng=random.Random(self.seed + 2))
        self.queue: list[tuple[float, int, bytes, str]] = []
        self._n = 0
        self.events: dict[str, list[UtpEvent]] = {"a": [], "b": []}
        self.received: dict[str, dict[int, bytearray]] = {"a": {}, "b": {}}
        self.link_free = {"a": 0.0, "b": 0.0}  #: bottleneck busy until (per direction's sender)
        self.datagrams = {"a": 0, "b": 0}
        #: called with (side, datagram); True drops it (for targeted losses)
        self.drop: Callable[[str, bytes], bool] | None = None
        self.queue_delays: list[tuple[float, float]] = []  #: (time, bottleneck queuing delay) a->b
        self.delivered: list[tuple[float, int]] = []  #: (time, bytes) uTP data delivered at b
        self.tcp: RenoFlow | None = None

    def _bottleneck(self, side: str, size: int) -> float | None:
        """When a datagram sent now through ``side``'s bottleneck arrives; None if tail-dropped."""
        path = self.ab if side == "a" else self.ba
        assert path.rate is not None
        start = max(self.now, self.link_free[side])
        if path.queue_limit is not None and start - self.now > path.queue_limit:
            return None
        if side == "a":
            self.queue_delays.append((self.now, start - self.now))
        self.link_free[side] = start + size / path.rate
        return self.link_free[side] + path.delay

    def _push(self, t: float, data: bytes, dest: str) -> None:
        self._n += 1
        heapq.heappush(self.queue, (t, self._n, data, dest))

    def add_tcp(self, flow: RenoFlow) -> None:
        """Run ``flow`` beside the uTP connection, from ``flow.start`` to ``flow.stop``."""
        self.tcp = flow
        self._push(flow.start, b"", "tcp_src")

    def _tcp(self, kind: str) -> None:
        flow = self.tcp
        assert flow is not None
        rtt = self.ab.delay + self.ba.delay
        if kind == "tcp_sink":
            flow.delivered.append((self.now, flow.mss))
            self._push(self.now + self.ba.delay, b"ack", "tcp_src")
            return
        if kind == "tcp_src" and flow.inflight:  # an ack (the first tcp_src only starts the flow)
            flow.inflight -= 1
            flow.cwnd += 1.0 if flow.cwnd < flow.ssthresh else 1.0 / flow.cwnd
        elif kind == "tcp_loss":
            flow.inflight -= 1
            if self.now - flow.last_cut > rtt + (self.ab.queue_limit or 0.0):
                flow.cwnd = max(flow.cwnd / 2, 2.0)
                flow.ssthresh = flow.cwnd
                flow.last_cut = self.now
        while flow.start <= self.now < flow.stop and flow.inflight < int(flow.cwnd):
            flow.inflight += 1
            arrival = self._bottleneck("a", flow.mss)
            if arrival is None:
                self._push(self.now + rtt, b"", "tcp_loss")  # learnt from duplicate acks an RTT later
            else:
                self._push(arrival, b"", "tcp_sink")

    def _mgr(self, side: str) -> UtpManager:
        return self.a if side == "a" else self.b

    def _emit(self, side: str) -> None:
        mgr = self._mgr(side)
        path = self.ab if side == "a" else self.ba
        dest = "b" if side == "a" else "a"
        for data, _addr in mgr.datagrams_to_send(self.now):
            self.datagrams[side] += 1
            if self.rng.random() < path.loss or (path.mtu is not None and len(data) > path.mtu):
                continue
            if self.drop is not None and self.drop(side, bytes(data)):
                continue
            copies = 2 if self.rng.random() < path.duplicate else 1
            for _ in range(copies):
                t = self.now + path.delay + self.rng.random() * path.jitter
                if path.rate is not None:
                    arrival = self._bottleneck(side, len(data))
                    if arrival is None:
                        continue
                    t = arrival
                self._push(t, bytes(data), dest)
        while (ev := mgr.next_event()) is not None:
            self.events[side].append(ev)
            if isinstance(ev, DataReceived):
                self.received[side].setdefault(ev.conn, bytearray()).extend(ev.data)
                if side == "b":
                    self.delivered.append((self.now, len(ev.data)))

    def flush(self) -> None:
        self._emit("a")
        self._emit("b")

    def step(self, until: float) -> bool:
        """Advance to the next datagram or timer before ``until``; False when nothing is due."""
        timers = [t for t in (self.a.get_timer(), self.b.get_timer()) if t is not None]
        next_dgram = self.queue[0][0] if self.queue else None
        candidates = [*timers, *([next_dgram] if next_dgram is not None else [])]
        if not candidates:
            return False
        t = min(candidates)
        if t > until:
            self.now = until
            return False
        self.now = max(self.now, t)
        if next_dgram is not None and next_dgram <= t:
            _, _, data, dest = heapq.heappop(self.queue)
            if dest.startswith("tcp"):
                self._tcp(dest)
                return True
            src = A if dest == "b" else B
            self._mgr(dest).receive_datagram(data, src, self.now)
        else:
            for m in (self.a, self.b):
                timer = m.get_timer()
                if timer is not None and timer <= self.now:
                    m.handle_timer(self.now)
        self.flush()
        return True

    @staticmethod
    def share(log: list[tuple[float, int]], t0: float, t1: float, rate: float) -> float:
        """Fraction of a ``rate`` bytes/s link that ``log`` delivered between t0 and t1."""
        return sum(n for t, n in log if t0 <= t < t1) / ((t1 - t0) * rate)

    def run(self, until: float, stop: Callable[[], bool] | None = None, max_steps: int = 2_000_000) -> None:
        """Run the simulation until ``until`` (virtual seconds) or ``stop()`` is true."""
        for _ in range(max_steps):
            if stop is not None and stop():
                return
            if not self.step(until):
                return
        raise AssertionError("simulation did not settle")

    def connect(self) -> tuple[int, int]:
        """Open a connection from a to b; return (a's handle, b's handle)."""
        ha = self.a.connect(B, self.now)
        self.flush()
        self.run(
            self.now + 30,
            stop=lambda: any(isinstance(e, Connected) and e.conn == ha for e in self.events["a"]),
        )
        accepted = [e.conn for e in self.events["b"] if isinstance(e, IncomingConnection)]
        assert accepted, "the connection was never established (every SYN or its answer lost)"
        return ha, accepted[-1]

    def closed(self, side: str, conn: int) -> Closed | None:
        return next((e for e in self.events[side] if isinstance(e, Closed) and e.conn == conn), None)
