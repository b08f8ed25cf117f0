"""The asyncio adapter for the sans-I/O :class:`~p2pshare.core.utp.manager.UtpManager`.

One :class:`UtpSocket` drives one manager over one UDP socket and one re-armed timer.
The socket is shared with the DHT, as libtorrent's ``utp_socket_manager`` shares it:
either :meth:`UtpSocket.open_with_dht` (our batched socket; KRPC datagrams go to a
:class:`~p2pshare.io.dht_endpoint.DhtEndpoint` built on it: the faster way) or
:meth:`UtpSocket.over_dht` (an existing endpoint's socket: it hands over every
datagram that is not KRPC, and we send through it); or it is uTP's own
(:meth:`UtpSocket.open`).  Our own socket is read in batches by
:class:`~p2pshare.io.utp_udp.BatchedUdpSocket`: one wake-up and one ack per burst.

Each connection is a :class:`UtpLink`, which provides the :class:`~p2pshare.io.link.Link`
protocol: writes go into the connection's send buffer (``writable`` turns False above
``write_high_water``), ``pause_reading`` holds data in the machine so the advertised
window shrinks, and ``on_close`` is called once.

After every datagram, write burst or timer, the adapter drains the machine: datagrams
go to the socket, events to the links, and the timer is re-armed from ``get_timer()``
(only when the deadline moved earlier: a timer that fires early just re-arms).
Writes are flushed on the next loop iteration, so a burst of small writes becomes one
packet.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from p2pshare.config import DhtConfig, UtpConfig
from p2pshare.core.dht.events import DhtEvent
from p2pshare.core.dht.node import DhtNode
from p2pshare.core.types import Addr
from p2pshare.core.utp import Closed, CloseReason, Connected, DataReceived, IncomingConnection, UtpManager
from p2pshare.errors import RemoteProtocolError
from p2pshare.io.dht_endpoint import DhtEndpoint
from p2pshare.io.link import Buffer, CloseHandler, DataHandler, Link
from p2pshare.io.utp_udp import BatchedUdpSocket, SharedTransport

__all__ = ["UtpLink", "UtpSocket"]

log = logging.getLogger(__name__)
SendTo = Callable[[bytes | bytearray, Addr], None]


def _close_error(ev: Closed) -> Exception | None:
    reason = ev.reason
    if reason is CloseReason.EOF or reason is CloseReason.LOCAL:
        return None
    text = f"uTP: {reason.value}" + (f": {ev.detail}" if ev.detail else "")
    if reason is CloseReason.RESET:
        return ConnectionResetError(text)
    if reason is CloseReason.REFUSED:
        return ConnectionRefusedError(text)
    if reason is CloseReason.TIMEOUT:
        return TimeoutError(text)
    return RemoteProtocolError(text)


class UtpLink:
    """One uTP connection as a :class:`~p2pshare.io.link.Link`."""

    def __init__(self, owner: UtpSocket, handle: int, addr: Addr) -> None:
        self._owner = owner
        self._handle = handle
        self._addr = addr
        self._closed = False
        self._on_data: DataHandler | None = None
        self._on_close: CloseHandler | None = None
        self._early: list[bytes] = []
        self._close_error: Exception | None = None
        self._close_pending = False  #: closed before handlers were set
        self._writable_waiters: list[asyncio.Future[None]] = []
        self._user_paused = False

    @property
    def remote_address(self) -> Addr:
        return self._addr

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def write_buffer_size(self) -> int:
        return 0 if self._closed else self._owner.manager.buffered(self._handle)

    @property
    def writable(self) -> bool:
        return self.write_buffer_size <= self._owner.config.write_high_water

    def set_handlers(self, on_data: DataHandler, on_close: CloseHandler) -> None:
        self._on_data = on_data
        self._on_close = on_close
        early, self._early = self._early, []
        for data in early:
            on_data(memoryview(data))
        if self._close_pending:
            self._close_pending = False
            on_close(self._close_error)
            return
        if not self._closed and not self._user_paused:
            self._owner.manager.resume_reading(self._handle)
            self._owner.flush()

    def detach(self, unread: Buffer = b"") -> None:
        """Forget the handlers; ``unread`` (bytes already consumed) is delivered first to the next ones.

        The incoming router reads the start of a handshake to find the torrent, then
        hands the link on with those bytes put back (as :meth:`PeerLink.detach`).
        """
        self._on_data = None
        self._on_close = None
        if unread:
            self._early.insert(0, bytes(unread))
        if not self._closed:
            self._owner.manager.pause_reading(self._handle)  # until the next set_handlers

    def write(self, data: Buffer) -> None:
        if self._closed or not data:
            return
        self._owner.manager.send(self._handle, data)
        self._owner.schedule_flush()

    def writelines(self, parts: Iterable[Buffer]) -> None:
        for part in parts:
            self.write(part)

    async def wait_writable(self) -> None:
        if self._closed or self.write_buffer_size <= self._owner.config.write_low_water:
            return
        fut: asyncio.Future[None] = self._owner.loop.create_future()
        self._writable_waiters.append(fut)
        self._owner.watch_writable(self)
        await fut

    def pause_reading(self) -> None:
        self._user_paused = True
        if not self._closed:
            self._owner.manager.pause_reading(self._handle)

    def resume_reading(self) -> None:
        self._user_paused = False
        if not self._closed and self._on_data is not None:
            self._owner.manager.resume_reading(self._handle)
            self._owner.flush()

    def close(self) -> None:
        """Flush what was written, then FIN."""
        if self._closed:
            return
        self._owner.manager.close(self._handle, self._owner.loop.time())
        self._owner.schedule_flush()
        self._mark_closed(None)

    def abort(self) -> None:
        if self._closed:
            return
        self._owner.manager.abort(self._handle)
        self._owner.schedule_flush()
        self._mark_closed(None)

    # -- called by the UtpSocket ------------------------------------------------------

    def _deliver(self, data: bytes) -> None:
        if self._closed:
            return
        if self._on_data is None:
            self._early.append(data)
        else:
            self._on_data(memoryview(data))

    def _check_writable(self) -> bool:
        """Wake writers once the buffer is below the low-water mark; True when none wait any more."""
        if self._closed or self.write_buffer_size <= self._owner.config.write_low_water:
            waiters, self._writable_waiters = self._writable_waiters, []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)
        return not self._writable_waiters

    def _mark_closed(self, error: Exception | None) -> None:
        if self._closed:
            return
        self._closed = True
        self._owner.forget(self._handle)
        self._check_writable()
        if self._on_close is None:
            self._close_pending = True
            self._close_error = error
        else:
            self._on_close(error)


class UtpSocket:
    """Drives a :class:`UtpManager` over a UDP socket; hands out :class:`UtpLink` objects."""

    def __init__(
        self,
        manager: UtpManager,
        sendto: SendTo,
        *,
        on_accept: Callable[[UtpLink], None] | None = None,
    ) -> None:
        self.manager = manager
        self.config = manager.config
        self.loop = asyncio.get_running_loop()
        self._sendto = sendto
        self.on_accept = on_accept
        manager.accept_incoming = on_accept is not None
        self._links: dict[int, UtpLink] = {}
        self._connecting: dict[int, asyncio.Future[None]] = {}
        self._watch: dict[int, UtpLink] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when: float | None = None
        self._flush_scheduled = False
        self._close_transport: Callable[[], None] | None = None
        self._udp: BatchedUdpSocket | None = None
        self._dht: DhtEndpoint | None = None
        self.closed = False
        self.local_address: Addr = ("", 0)

    # -- construction -----------------------------------------------------------------

    @staticmethod
    def _tune(sock: socket.socket | None, size: int) -> None:
        if sock is None:
            return
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, opt, size)
            except OSError as exc:  # pragma: no cover - platform limits
                log.debug("cannot set UDP buffer to %d: %s", size, exc)

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        config: UtpConfig | None = None,
        *,
        on_accept: Callable[[UtpLink], None] | None = None,
        manager: UtpManager | None = None,
    ) -> UtpSocket:
        """uTP on a UDP socket of its own, bound to ``host:port`` (0 picks a port), read in batches."""
        mgr = manager or UtpManager(config)
        self = cls(mgr, lambda data, addr: None, on_accept=on_accept)
        udp = BatchedUdpSocket.bind(
            host,
            port,
            self.feed,
            self.flush,
            buffer_size=mgr.config.socket_buffer,
            max_datagram=mgr.config.max_datagram,
            max_batch=mgr.config.read_batch,
            max_queue=mgr.config.max_send_queue,
        )
        self._sendto = udp.sendto
        self._udp = udp
        self._close_transport = udp.close
        self.local_address = udp.local_address
        return self

    @classmethod
    async def open_with_dht(
        cls,
        node_factory: Callable[[float], DhtNode],
        *,
        host: str,
        port: int,
        dht_config: DhtConfig,
        config: UtpConfig | None = None,
        on_event: Callable[[DhtEvent], None] | None = None,
        on_accept: Callable[[UtpLink], None] | None = None,
        manager: UtpManager | None = None,
    ) -> tuple[UtpSocket, DhtEndpoint]:
        """One batched UDP socket for the DHT and uTP: KRPC (``d...``) to a new DHT endpoint, the rest to us.

        The endpoint sends through the same socket; closing this UtpSocket closes the socket
        (close the endpoint first to stop its timer).
        """
        self = await cls.open(host, port, config, on_accept=on_accept, manager=manager)
        return self, self.attach_dht(node_factory, dht_config=dht_config, on_event=on_event)

    def attach_dht(
        self,
        node_factory: Callable[[float], DhtNode],
        *,
        dht_config: DhtConfig,
        on_event: Callable[[DhtEvent], None] | None = None,
    ) -> DhtEndpoint:
        """A DHT endpoint on this (own, batched) socket: KRPC datagrams go to it, it sends through us.

        For a session that opened uTP first (on its TCP port number) and starts the DHT later.
        Close the endpoint before this socket.
        """
        if self._udp is None or self.closed:
            raise RuntimeError("attach_dht needs an open socket of our own (UtpSocket.open)")
        if self._dht is not None:
            raise RuntimeError("a DHT endpoint is already attached")
        dht = DhtEndpoint(node_factory(self.loop.time()), dht_config, on_event)
        dht.connection_made(SharedTransport(self._udp))
        dht._rearm()
        self._dht = dht
        return dht

    @classmethod
    def over_dht(
        cls,
        endpoint: DhtEndpoint,
        config: UtpConfig | None = None,
        *,
        on_accept: Callable[[UtpLink], None] | None = None,
        manager: UtpManager | None = None,
    ) -> UtpSocket:
        """uTP on the DHT's UDP socket: every datagram that is not KRPC comes to us."""
        self = cls(manager or UtpManager(config), endpoint.sendto, on_accept=on_accept)
        endpoint.on_foreign_datagram = self.datagram_received
        cls._tune(endpoint.get_extra_info("socket"), self.config.socket_buffer)
        self.local_address = endpoint.local_address
        return self

    # -- public -----------------------------------------------------------------------

    async def connect(self, addr: Addr, timeout: float | None = None) -> UtpLink:
        """Open a uTP connection to ``addr``; raise ConnectionRefusedError or TimeoutError."""
        if self.closed:
            raise ConnectionError("the uTP socket is closed")
        handle = self.manager.connect(addr, self.loop.time())
        link = UtpLink(self, handle, addr)
        self.manager.pause_reading(handle)  # until set_handlers
        self._links[handle] = link
        fut: asyncio.Future[None] = self.loop.create_future()
        self._connecting[handle] = fut
        self.flush()
        try:
            async with asyncio.timeout(timeout if timeout is not None else self.config.connect_timeout):
                await fut
        except BaseException:
            self._connecting.pop(handle, None)
            link.abort()
            raise
        return link

    def close(self) -> None:
        """Abort every connection and stop; our own socket closes (``open``/``open_with_dht``),
        an endpoint's socket (``over_dht``) stays open."""
        if self.closed:
            return
        for link in list(self._links.values()):
            link.abort()
        self.flush()
        self.closed = True
        self._cancel_timer()
        for fut in self._connecting.values():
            if not fut.done():
                fut.set_exception(ConnectionError("the uTP socket was closed"))
        self._connecting.clear()
        if self._close_transport is not None:
            self._close_transport()

    # -- plumbing ---------------------------------------------------------------------

    def forget(self, handle: int) -> None:
        self._links.pop(handle, None)
        self._watch.pop(handle, None)

    def watch_writable(self, link: UtpLink) -> None:
        self._watch[link._handle] = link

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        """One datagram, then a flush (the DHT endpoint hands them over one at a time)."""
        self.feed(data, addr)
        self.flush()

    def feed(self, data: bytes, addr: Addr) -> None:
        """One datagram into the machine, without flushing (a batch ends with ``flush``)."""
        if self.closed:
            return
        if self._dht is not None and data[:1] == b"d":
            self._dht.datagram_received(data, addr)  # KRPC, on a socket we own (open_with_dht)
            return
        try:
            self.manager.receive_datagram(data, addr, self.loop.time())
        except Exception:  # a bug in the core must not take the socket down
            log.exception("uTP manager failed on a datagram from %s", addr)

    def schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        """Send what the machine produced, deliver its events, re-arm the timer."""
        self._flush_scheduled = False
        mgr = self.manager
        if not self.closed:
            sendto = self._sendto
            for data, addr in mgr.datagrams_to_send(self.loop.time()):
                try:
                    sendto(data, addr)
                except (OSError, ValueError) as exc:
                    log.debug("uTP send to %s failed: %s", addr, exc)
        while (ev := mgr.next_event()) is not None:
            try:
                self._dispatch(ev)
            except Exception:
                log.exception("uTP event handler failed on %r", type(ev).__name__)
        if self._watch:
            for handle, link in list(self._watch.items()):
                if link._check_writable():
                    self._watch.pop(handle, None)
        self._rearm()

    def _dispatch(self, ev: object) -> None:
        if isinstance(ev, DataReceived):
            link = self._links.get(ev.conn)
            if link is not None:
                link._deliver(ev.data)
        elif isinstance(ev, Connected):
            fut = self._connecting.pop(ev.conn, None)
            if fut is not None and not fut.done():
                fut.set_result(None)
        elif isinstance(ev, IncomingConnection):
            if self.on_accept is None:
                self.manager.abort(ev.conn)
                return
            link = UtpLink(self, ev.conn, ev.addr)
            self.manager.pause_reading(ev.conn)  # until set_handlers
            self._links[ev.conn] = link
            self.on_accept(link)
        elif isinstance(ev, Closed):
            error = _close_error(ev)
            fut = self._connecting.pop(ev.conn, None)
            if fut is not None and not fut.done():
                fut.set_exception(error or ConnectionError("uTP connection closed while connecting"))
            link = self._links.get(ev.conn)
            if link is not None:
                link._mark_closed(error)

    def _rearm(self) -> None:
        if self.closed:
            return
        when = self.manager.get_timer()
        if when is None:
            return  # an armed timer, if any, fires once for nothing
        if self._timer is not None and self._timer_when is not None and self._timer_when <= when:
            return  # the armed one comes first; it re-arms for the rest (no churn per datagram)
        self._cancel_timer()
        if when is not None:
            self._timer_when = when
            self._timer = self.loop.call_at(when, self._on_timer)

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
            self.manager.handle_timer(self.loop.time())
        except Exception:
            log.exception("uTP manager failed in handle_timer")
        self.flush()


if TYPE_CHECKING:  # mypy checks that a UtpLink is a Link

    def _is_a_link(link: UtpLink) -> Link:
        return link
