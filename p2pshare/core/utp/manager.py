"""The uTP socket manager: many connections over one UDP endpoint, demultiplexed by id.

It owns no socket.  The io layer feeds it every datagram that is not KRPC
(``receive_datagram``), sends what ``datagrams_to_send`` returns, and re-arms one
timer from ``get_timer``.  Connections are keyed by (peer address, our receive id).

Safety against a flood of SYNs or of junk:

* a malformed datagram is dropped and counted, never raised;
* at most ``max_half_open`` accepted connections may be waiting for the peer's
  second packet, and at most ``max_connections`` exist at all; further SYNs are dropped;
* a duplicate SYN (same address and id) re-sends our answer and opens nothing;
* our answer to a SYN is as small as the SYN (no amplification);
* packets for unknown connections are answered with ST_RESET, at most
  ``max_resets_per_second`` of them (token bucket);
* all receive buffers together hold at most ``max_total_recv_buffer`` bytes (each
  connection at most ``recv_buffer``); the advertised windows shrink with it.
"""

from __future__ import annotations

import heapq
import ipaddress
import random
from collections import deque

from p2pshare.config import UtpConfig
from p2pshare.core.utp.connection import ConnState, UtpConnection
from p2pshare.core.utp.events import Addr, IncomingConnection, UtpEvent
from p2pshare.core.utp.packet import (
    HEADER_SIZE,
    SEQ_MASK,
    PacketType,
    UtpPacketError,
    decode,
    encode_header,
)
from p2pshare.core.utp.receiver import RecvBudget
from p2pshare.errors import LocalProtocolError

__all__ = ["UtpManager"]

_SYN = PacketType.SYN
_RESET = PacketType.RESET

Datagram = bytearray


class UtpManager:
    """All uTP connections of one UDP endpoint; see the module docstring."""

    def __init__(
        self,
        config: UtpConfig | None = None,
        *,
        rng: random.Random | None = None,
        accept_incoming: bool = True,
    ) -> None:
        self.config = config or UtpConfig()
        self.rng = rng or random.Random()
        self.accept_incoming = accept_incoming
        self._conns: dict[tuple[Addr, int], UtpConnection] = {}  #: by (address, our recv id)
        self._by_send: dict[tuple[Addr, int], UtpConnection] = {}  #: by (address, our send id)
        self._handles: dict[int, UtpConnection] = {}
        self._next_handle = 1
        self._events: list[UtpEvent] = []
        self._event_queue: deque[UtpEvent] = deque()
        self._dirty: dict[int, UtpConnection] = {}
        self._half_open: dict[int, UtpConnection] = {}  #: accepted, not yet confirmed (may be stale)
        self._deadline: dict[int, float] = {}  #: each connection's next timer
        self._timers: list[tuple[float, int]] = []  #: heap of (deadline, handle); stale entries skipped
        self._resets: list[tuple[bytearray, Addr]] = []
        self._reset_tokens = self.config.max_resets_per_second
        self._reset_time = 0.0
        self.budget = RecvBudget(self.config.max_total_recv_buffer)
        self._large_nets = [ipaddress.ip_network(n) for n in self.config.large_packet_networks]
        self.stats: dict[str, int] = {
            "datagrams_in": 0,
            "datagrams_out": 0,
            "malformed": 0,
            "unknown_connection": 0,
            "syn_refused": 0,
            "resets_sent": 0,
        }

    # -- connections ----------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._handles)

    @property
    def half_open(self) -> int:
        """Accepted connections still waiting for the peer's second packet."""
        stale = [h for h, c in self._half_open.items() if not c.half_open]
        for h in stale:
            del self._half_open[h]
        return len(self._half_open)

    def connection(self, handle: int) -> UtpConnection:
        conn = self._handles.get(handle)
        if conn is None:
            raise LocalProtocolError(f"no uTP connection {handle}")
        return conn

    def _large_ok(self, addr: Addr) -> bool:
        try:
            ip = ipaddress.ip_address(addr[0])
        except ValueError:
            return False
        return any(ip in net for net in self._large_nets)

    def _add(self, conn: UtpConnection) -> None:
        self._conns[(conn.addr, conn.recv_id)] = conn
        self._by_send[(conn.addr, conn.send_id)] = conn
        self._handles[conn.handle] = conn
        self._dirty[conn.handle] = conn

    def _new_handle(self) -> int:
        handle = self._next_handle
        self._next_handle += 1
        return handle

    def connect(self, addr: Addr, now: float) -> int:
        """Start a connection to ``addr``; a Connected or Closed event follows.  Returns its handle."""
        if len(self._handles) >= self.config.max_connections:
            raise LocalProtocolError(f"already {len(self._handles)} uTP connections (max_connections)")
        for _ in range(64):
            recv_id = self.rng.randrange(0, 0x10000)
            send_id = (recv_id + 1) & SEQ_MASK
            if (addr, recv_id) not in self._conns and (addr, send_id) not in self._by_send:
                break
        else:
            raise LocalProtocolError(f"no free uTP connection id towards {addr}")
        conn = UtpConnection(
            self._new_handle(),
            addr,
            self.config,
            self._events,
            recv_id=recv_id,
            send_id=send_id,
            seq_nr=1,
            ack_nr=0,
            state=ConnState.SYN_SENT,
            large_packets=self._large_ok(addr),
            now=now,
            budget=self.budget,
        )
        self._add(conn)
        return conn.handle

    def send(self, handle: int, data: bytes | bytearray | memoryview) -> None:
        conn = self.connection(handle)
        conn.send(data)
        self._dirty[handle] = conn

    def buffered(self, handle: int) -> int:
        """Bytes given to ``send`` for ``handle`` and not in a packet yet (0 once it is gone)."""
        conn = self._handles.get(handle)
        return conn.buffered if conn is not None else 0

    def close(self, handle: int, now: float) -> None:
        """Send what is queued, then FIN; a Closed event follows once the connection is gone."""
        conn = self._handles.get(handle)
        if conn is not None:
            conn.close(now)
            self._dirty[handle] = conn

    def abort(self, handle: int) -> None:
        """Reset the connection at once (a Closed event follows)."""
        conn = self._handles.get(handle)
        if conn is not None:
            conn.abort()
            self._dirty[handle] = conn

    def pause_reading(self, handle: int) -> None:
        conn = self._handles.get(handle)
        if conn is not None:
            conn.pause_reading()

    def resume_reading(self, handle: int) -> None:
        conn = self._handles.get(handle)
        if conn is not None:
            conn.resume_reading()
            self._dirty[handle] = conn

    # -- datagrams in ---------------------------------------------------------------

    def receive_datagram(self, data: bytes | bytearray | memoryview, addr: Addr, now: float) -> None:
        """Process one datagram from ``addr``; malformed ones are dropped and counted."""
        self.stats["datagrams_in"] += 1
        if len(data) > self.config.max_datagram:
            self.stats["malformed"] += 1
            return
        try:
            pkt = decode(data)
        except UtpPacketError:
            self.stats["malformed"] += 1
            return
        kind = pkt.type
        if kind is _SYN:
            key = (addr, (pkt.conn_id + 1) & SEQ_MASK)
            conn = self._conns.get(key)
            if conn is None:
                self._accept(pkt.conn_id, pkt.seq_nr, addr, now)
                return
        else:
            conn = self._conns.get((addr, pkt.conn_id))
            if conn is None and kind is _RESET:
                conn = self._by_send.get((addr, pkt.conn_id))
        if conn is None:
            self.stats["unknown_connection"] += 1
            if kind is not _RESET:
                self._reset(pkt.conn_id, pkt.ack_nr, addr, now)
            return
        conn.receive(pkt, now)
        self._dirty[conn.handle] = conn

    def _accept(self, conn_id: int, seq_nr: int, addr: Addr, now: float) -> None:
        cfg = self.config
        if (
            not self.accept_incoming
            or len(self._handles) >= cfg.max_connections
            or self.half_open >= cfg.max_half_open
            or (addr, conn_id) in self._by_send
        ):
            self.stats["syn_refused"] += 1
            return
        conn = UtpConnection(
            self._new_handle(),
            addr,
            cfg,
            self._events,
            recv_id=(conn_id + 1) & SEQ_MASK,
            send_id=conn_id,
            seq_nr=self.rng.randrange(0, 0x10000),
            ack_nr=seq_nr,
            state=ConnState.SYN_RECV,
            large_packets=self._large_ok(addr),
            now=now,
            budget=self.budget,
        )
        conn.last_recv = now
        self._add(conn)
        self._half_open[conn.handle] = conn
        self._events.append(IncomingConnection(conn.handle, addr))

    def _reset(self, conn_id: int, ack_nr: int, addr: Addr, now: float) -> None:
        rate = self.config.max_resets_per_second
        self._reset_tokens = min(rate, self._reset_tokens + (now - self._reset_time) * rate)
        self._reset_time = now
        if self._reset_tokens < 1.0:
            return
        self._reset_tokens -= 1.0
        buf = bytearray(HEADER_SIZE)
        encode_header(buf, _RESET, conn_id, int(now * 1e6), 0, 0, self.rng.randrange(0, 0x10000), ack_nr)
        self._resets.append((buf, addr))
        self.stats["resets_sent"] += 1

    # -- datagrams out, events, timers ------------------------------------------------

    def datagrams_to_send(self, now: float) -> list[tuple[Datagram, Addr]]:
        """Every datagram due now, for every connection that changed since the last call."""
        out: list[tuple[Datagram, Addr]] = self._resets
        self._resets = []
        dirty = self._dirty
        if dirty:
            self._dirty = {}
            for conn in dirty.values():
                addr = conn.addr
                for pkt in conn.packets_to_send(now):
                    out.append((pkt, addr))
                if conn.dead:
                    self._forget(conn)
                else:
                    self._refresh_timer(conn)
        self.stats["datagrams_out"] += len(out)
        return out

    def _forget(self, conn: UtpConnection) -> None:
        self._handles.pop(conn.handle, None)
        self._half_open.pop(conn.handle, None)
        self._deadline.pop(conn.handle, None)
        if self._conns.get((conn.addr, conn.recv_id)) is conn:
            del self._conns[(conn.addr, conn.recv_id)]
        if self._by_send.get((conn.addr, conn.send_id)) is conn:
            del self._by_send[(conn.addr, conn.send_id)]

    def _refresh_timer(self, conn: UtpConnection) -> None:
        when = conn.get_timer()
        handle = conn.handle
        if when is None:
            self._deadline.pop(handle, None)
        elif self._deadline.get(handle) != when:
            self._deadline[handle] = when
            heapq.heappush(self._timers, (when, handle))
            if len(self._timers) > 4 * len(self._deadline) + 64:  # mostly superseded entries
                self._timers = [(w, h) for h, w in self._deadline.items()]
                heapq.heapify(self._timers)

    def next_event(self) -> UtpEvent | None:
        if self._events:
            self._event_queue.extend(self._events)
            self._events.clear()
        return self._event_queue.popleft() if self._event_queue else None

    def get_timer(self) -> float | None:
        """When ``handle_timer`` should next run (None when no connection needs it)."""
        for conn in self._dirty.values():
            if not conn.dead:
                self._refresh_timer(conn)
        timers = self._timers
        deadline = self._deadline
        while timers:
            when, handle = timers[0]
            if deadline.get(handle) == when:
                return when
            heapq.heappop(timers)  # superseded or forgotten
        return None

    def handle_timer(self, now: float) -> None:
        """Run the timers of every connection whose deadline has come."""
        self.get_timer()
        timers = self._timers
        deadline = self._deadline
        due: list[UtpConnection] = []
        while timers and timers[0][0] <= now:
            when, handle = heapq.heappop(timers)
            conn = self._handles.get(handle)
            if conn is not None and deadline.get(handle) == when:
                del deadline[handle]
                due.append(conn)
        for conn in due:
            conn.handle_timer(now)
            self._dirty[conn.handle] = conn
