"""The asyncio UDP adapter for a sans-I/O :class:`~p2pshare.core.dht.node.DhtNode`.

One :class:`DhtEndpoint` owns one UDP socket and one timer.  It parses nothing:

* each datagram that arrives is size-checked and handed to ``node.receive_datagram``;
  the node takes a token from the endpoint's per-source-IP bucket
  (``node.admit_query``) for *every* datagram it would send because of a query
  (the reply, an error reply, the ping that verifies a newcomer), so responses to
  our own queries are never limited and a flood of queries, malformed or not, gets
  at most the bucket's worth of answers (no reflection);
* after every call into the node, the datagrams it produced go into a bounded
  outgoing queue (``max_outgoing_queue``; overflow is dropped and counted) that is
  drained while the transport accepts writes;
* the single timer is re-armed from ``node.get_timer()``;
* events the node produced are delivered to ``on_event`` on the next loop
  iteration (so a caller that just started a lookup can register for its id first);
* the socket is shared with uTP, as libtorrent shares it: a datagram that is not a
  bencoded dict (KRPC always starts with ``d``) goes to ``on_foreign_datagram`` when
  one is set, and ``sendto`` sends another protocol's datagram through the socket.

Host names (bootstrap routers) are resolved here, with a bounded wait, never in
the core.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import socket
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any, TypeVar, cast

from p2pshare.config import DhtConfig
from p2pshare.core.dht.events import DhtEvent
from p2pshare.core.dht.krpc import Addr
from p2pshare.core.dht.node import DhtNode
from p2pshare.errors import PortInUseError

__all__ = ["DhtEndpoint", "RateLimiter", "is_ip_literal"]

log = logging.getLogger(__name__)
T = TypeVar("T")


def is_ip_literal(host: str) -> bool:
    """Whether ``host`` is an IP address (needs no resolving)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class RateLimiter:
    """A token bucket per source IP; at most ``max_sources`` buckets are kept."""

    def __init__(self, rate: float, burst: int, max_sources: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_sources = max_sources
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, ip: str, now: float) -> bool:
        """Take one token for ``ip``; False if its bucket is empty."""
        tokens, last = self._buckets.pop(ip, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        ok = tokens >= 1.0
        if ok:
            tokens -= 1.0
        self._buckets[ip] = (tokens, now)
        while len(self._buckets) > self.max_sources:
            self._buckets.popitem(last=False)  # least recently active source
        return ok

    def __len__(self) -> int:
        return len(self._buckets)


class DhtEndpoint(asyncio.DatagramProtocol):
    """Drives one :class:`DhtNode` over one UDP socket; see the module docstring."""

    def __init__(
        self,
        node: DhtNode,
        config: DhtConfig,
        on_event: Callable[[DhtEvent], None] | None = None,
    ) -> None:
        self.node = node
        self.config = config
        self.on_event = on_event
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.DatagramTransport | None = None
        self._queue: deque[tuple[bytes, Addr]] = deque()
        self._paused = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when: float | None = None
        self._events: list[DhtEvent] = []
        self._dispatch_scheduled = False
        self._limiter = RateLimiter(
            config.incoming_rate_per_source, config.incoming_burst, config.max_rate_sources
        )
        node.admit_query = self._admit_query
        #: receives every datagram that is not KRPC (uTP shares this socket), unchecked
        self.on_foreign_datagram: Callable[[bytes, Addr], None] | None = None
        self.closed = False
        self.stats: dict[str, int] = {
            "datagrams_in": 0,
            "datagrams_out": 0,
            "dropped_oversized": 0,
            "dropped_rate_limited": 0,
            "dropped_queue_full": 0,
            "send_errors": 0,
        }

    @classmethod
    async def open(
        cls,
        node_factory: Callable[[float], DhtNode],
        *,
        host: str,
        port: int,
        config: DhtConfig,
        on_event: Callable[[DhtEvent], None] | None = None,
    ) -> DhtEndpoint:
        """Bind a UDP socket on ``host:port`` (0 picks a port) and start driving a new node."""
        loop = asyncio.get_running_loop()
        node = node_factory(loop.time())
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            _, protocol = await loop.create_datagram_endpoint(
                lambda: cls(node, config, on_event), local_addr=(host, port), family=family
            )
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    f"UDP port {port} on {host} is in use; pick another with --dht-port"
                ) from None
            raise
        assert isinstance(protocol, cls)
        protocol._rearm()
        return protocol

    # -- properties -------------------------------------------------------------------

    @property
    def local_address(self) -> Addr:
        assert self._transport is not None
        sockname = self._transport.get_extra_info("sockname")
        return (sockname[0], sockname[1])

    def now(self) -> float:
        return self._loop.time()

    @property
    def queued(self) -> int:
        return len(self._queue)

    # -- calling into the node --------------------------------------------------------

    def call(self, action: Callable[[DhtNode, float], T]) -> T:
        """Run ``action(node, now)`` and send whatever it produced."""
        result = action(self.node, self._loop.time())
        self._flush()
        return result

    async def resolve(self, host: str, port: int) -> list[Addr]:
        """Addresses of ``host`` in the node's family (bounded by ``resolve_timeout``); [] on failure."""
        if is_ip_literal(host):
            return [(host, port)]
        family = socket.AF_INET6 if self.node.ipv6 else socket.AF_INET
        try:
            async with asyncio.timeout(self.config.resolve_timeout):
                infos = await self._loop.getaddrinfo(host, port, family=family, type=socket.SOCK_DGRAM)
        except (OSError, TimeoutError, UnicodeError) as exc:
            log.warning("cannot resolve DHT node %s:%d: %s", host, port, exc)
            return []
        out: list[Addr] = []
        for info in infos:
            addr = (str(info[4][0]), int(info[4][1]))
            if addr not in out:
                out.append(addr)
        return out

    # -- asyncio.DatagramProtocol -----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (On 3.11 the selector transport does not subclass DatagramTransport.)
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.stats["datagrams_in"] += 1
        if self.closed:
            return
        if self.on_foreign_datagram is not None and data[:1] != b"d":
            self.on_foreign_datagram(data, (str(addr[0]), int(addr[1])))
            return
        if len(data) > self.config.max_packet:
            self.stats["dropped_oversized"] += 1
            return
        source: Addr = (str(addr[0]), int(addr[1]))
        now = self._loop.time()
        try:
            self.node.receive_datagram(data, source, now)
        except Exception:  # a bug in the core must not take the socket down
            log.exception("DHT node failed on a datagram from %s", source)
        self._flush()

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (port unreachable...) show up here; the query simply times out.
        self.stats["send_errors"] += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._cancel_timer()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._drain()

    # -- plumbing ---------------------------------------------------------------------

    def _admit_query(self, ip: str, now: float) -> bool:
        if self._limiter.allow(ip, now):
            return True
        self.stats["dropped_rate_limited"] += 1
        return False

    def _flush(self) -> None:
        limit = self.config.max_outgoing_queue
        for item in self.node.datagrams_to_send():
            if len(self._queue) >= limit:
                self.stats["dropped_queue_full"] += 1
            else:
                self._queue.append(item)
        self._drain()
        while (ev := self.node.next_event()) is not None:
            self._events.append(ev)
        if self._events and not self._dispatch_scheduled:
            self._dispatch_scheduled = True
            self._loop.call_soon(self._dispatch)
        self._rearm()

    def _drain(self) -> None:
        transport = self._transport
        if transport is None or self.closed:
            return
        while self._queue and not self._paused:
            data, addr = self._queue.popleft()
            try:
                transport.sendto(data, addr)
                self.stats["datagrams_out"] += 1
            except (OSError, ValueError) as exc:
                self.stats["send_errors"] += 1
                log.debug("DHT send to %s failed: %s", addr, exc)

    def sendto(self, data: bytes | bytearray, addr: Addr) -> None:
        """Send a datagram of another protocol (uTP) through this socket; errors are counted."""
        transport = self._transport
        if transport is None or self.closed:
            return
        try:
            transport.sendto(data, addr)
        except (OSError, ValueError):
            self.stats["send_errors"] += 1

    def get_extra_info(self, name: str) -> Any:
        """The transport's extra info (``"socket"``, ``"sockname"``), for a protocol sharing it."""
        return self._transport.get_extra_info(name) if self._transport is not None else None

    def _dispatch(self) -> None:
        self._dispatch_scheduled = False
        events, self._events = self._events, []
        if self.on_event is None:
            return
        for ev in events:
            try:
                self.on_event(ev)
            except Exception:
                log.exception("DHT event handler failed on %r", ev)

    def _rearm(self) -> None:
        if self.closed:
            return
        when = self.node.get_timer()
        if when == self._timer_when and self._timer is not None:
            return
        self._cancel_timer()
        if when is not None:
            self._timer_when = when
            self._timer = self._loop.call_at(when, self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_when = None

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_when = None
        if self.closed:
            return
        try:
            self.node.handle_timer(self._loop.time())
        except Exception:
            log.exception("DHT node failed in handle_timer")
        self._flush()

    def close(self) -> None:
        """Stop the timer and close the socket (queued datagrams are dropped)."""
        self.closed = True
        self._cancel_timer()
        self._queue.clear()
        if self._transport is not None:
            self._transport.close()
