"""Per-peer bookkeeping for the swarm engine: the link, the protocol machine, rates.

A :class:`Peer` is plain state.  The policy (what to request, whom to unchoke,
when to drop) lives in the rooms of :class:`~p2pshare.engine.torrent.Torrent`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from p2pshare.config import EngineConfig
from p2pshare.core.types import PeerAddress
from p2pshare.core.wire.connection import PeerConnection
from p2pshare.core.wire.messages import Message, Request
from p2pshare.core.wire.metadata import MetadataMessage
from p2pshare.io.link import Link

__all__ = ["Peer", "RateMeter"]

_ENGINE = EngineConfig()


class RateMeter:
    """Bytes per second over a short window, sampled once per engine tick."""

    __slots__ = ("_last_time", "_last_total", "_min_interval", "_time_constant", "rate", "total")

    def __init__(self, now: float, time_constant: float = 2.0, min_interval: float = 0.05) -> None:
        self.total = 0
        self.rate = 0.0
        self._last_total = 0
        self._last_time = now
        self._time_constant = time_constant
        self._min_interval = min_interval

    def add(self, n: int) -> None:
        self.total += n

    def current(self, now: float) -> float:
        """The rate to act on now: the smoothed rate, or before the first sample the average so far.

        Without this, a fast peer would be held at the initial request queue for the whole
        first sampling interval.
        """
        if self.rate > 0:
            return self.rate
        dt = now - self._last_time
        return (self.total - self._last_total) / dt if dt >= self._min_interval else 0.0

    def sample(self, now: float) -> float:
        dt = now - self._last_time
        if dt <= 0:
            return self.rate
        instant = (self.total - self._last_total) / dt
        # Exponential moving average with a time constant of EngineConfig.rate_time_constant.
        weight = min(1.0, dt / self._time_constant)
        self.rate += (instant - self.rate) * weight
        self._last_total = self.total
        self._last_time = now
        return self.rate


class Peer:
    """One connected peer of one torrent."""

    def __init__(
        self,
        link: Link,
        conn: PeerConnection,
        address: PeerAddress,
        outgoing: bool,
        now: float,
        rates: EngineConfig = _ENGINE,
    ) -> None:
        self.link = link
        self.conn = conn
        self.address = address
        self.outgoing = outgoing
        self.peer_id = b""
        self.client = "unknown"
        self.down = RateMeter(now, rates.rate_time_constant, rates.rate_min_interval)
        self.up = RateMeter(now, rates.rate_time_constant, rates.rate_min_interval)
        self.connected_at = now
        self.last_recv = now
        self.last_send = now
        self.last_block = now
        self.snubbed = False
        self.strikes = 0
        self.handshake_done = False
        self.metadata_ext_id = 0  #: the peer's ut_metadata id (0: none)
        self.reqq: int | None = None
        self.dht_port: int | None = None
        self.in_picker = False
        self.revealed: set[int] = set()  #: super-seeding: pieces announced to it that it lacks
        self.uploads: deque[Request] = deque()
        self.upload_task: asyncio.Task[object] | None = None
        self.closed = False
        self.close_reason = ""
        self._out: list[bytes] = []
        self._out_bytes = 0
        #: called when the first bytes are queued, so the owner schedules a flush
        self.on_pending: Callable[[Peer], None] = lambda peer: peer.flush()

    @property
    def label(self) -> str:
        return str(self.address)

    def send(self, msg: Message | MetadataMessage, now: float) -> None:
        """Encode through the protocol machine (which tracks state) and queue the bytes."""
        if self.closed:
            return
        self.write(self.conn.send(msg))
        self.last_send = now

    def send_many(self, msgs: list[Message], now: float) -> None:
        if self.closed or not msgs:
            return
        self.write(b"".join([self.conn.send(m) for m in msgs]))
        self.last_send = now

    def write(self, data: bytes) -> None:
        """Queue encoded bytes; they go out in one write per peer per event-loop turn.

        Haves to every peer after each verified piece, request top-ups, cancels: sent one
        by one, each would be a syscall; coalesced, a loop turn costs one per peer.
        """
        if not data or self.closed:
            return
        if not self._out:
            self.on_pending(self)
        self._out.append(data)
        self._out_bytes += len(data)

    def flush(self) -> None:
        """Write what :meth:`write` queued (before any bytes that must follow it)."""
        if self._out:
            out, self._out = self._out, []
            self._out_bytes = 0
            self.link.write(out[0] if len(out) == 1 else b"".join(out))

    @property
    def unsent(self) -> int:
        """Bytes queued for this peer and not yet taken by the kernel: ours plus the transport's."""
        return self._out_bytes + self.link.write_buffer_size

    def __repr__(self) -> str:
        return f"<Peer {self.label} {self.client}>"
