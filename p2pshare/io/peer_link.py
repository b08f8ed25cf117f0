"""One TCP connection to a peer, as an asyncio Protocol that moves bytes and nothing else.

It parses nothing: received bytes go to ``on_data`` (the engine feeds them to a
sans-I/O :class:`~p2pshare.core.wire.connection.PeerConnection`), and the engine
writes encoded bytes back.  It exposes the transport's flow control so uploads
wait instead of piling up in memory.  :class:`PeerLink` provides
:class:`~p2pshare.io.link.Link`, the one transport seam the engine knows.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterable

from p2pshare.config import LinkConfig
from p2pshare.core.types import PeerAddress
from p2pshare.io.link import Buffer, CloseHandler, DataHandler

__all__ = ["PeerLink", "open_link"]

_DEFAULT = LinkConfig()
_shared = threading.local()


def _read_view(size: int) -> memoryview:
    """The read buffer of this thread's links, shared by all of them.

    A protocol's ``get_buffer`` and ``buffer_updated`` run back to back in the loop's
    thread, and ``on_data`` consumers copy what they keep, so one buffer per thread
    serves every link.  A buffer per link cost 256 KiB per connection, pending ones
    included: 1,000 slow handshakes held 250 MiB, and churn left the heap fragmented.
    """
    view: memoryview | None = getattr(_shared, "view", None)
    if view is None or len(view) != size:
        view = memoryview(bytearray(size))
        _shared.view = view
    return view


class PeerLink(asyncio.BufferedProtocol):
    """Bytes in, bytes out, flow control; handlers can be swapped once (incoming routing).

    Reads land in one buffer shared by the thread's links (``recv_into``), so a link
    allocates nothing per read and holds no read buffer of its own.  ``on_data`` gets a
    memoryview that is valid only during the call: consumers copy what they keep (the
    wire parser appends it to its own buffer).
    """

    def __init__(
        self,
        on_data: DataHandler | None = None,
        on_close: CloseHandler | None = None,
        config: LinkConfig = _DEFAULT,
    ) -> None:
        self._config = config
        self._read_view = _read_view(config.read_buffer)
        self._on_data = on_data
        self._on_close = on_close
        self._pending = bytearray()
        self.transport: asyncio.Transport | None = None
        self._remote = PeerAddress.unchecked("", 0)
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._closed = False
        self.bytes_written = 0

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        if peer:
            self._remote = PeerAddress.unchecked(peer[0], peer[1])
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        # Let the kernel batch reads; the transport reads up to 256 KiB per call.
        transport.set_write_buffer_limits(
            high=self._config.write_high_water, low=self._config.write_low_water
        )

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._read_view

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self._read_view[:nbytes])

    def data_received(self, data: memoryview) -> None:
        if self._on_data is None:
            self._pending += data
        else:
            self._on_data(data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._can_write.set()
        if self._on_close is not None:
            self._on_close(exc)

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    # -- for the listener ---------------------------------------------------------

    def detach(self, unread: Buffer = b"") -> None:
        """Forget the handlers and keep ``unread`` (bytes already consumed) to deliver first.

        The listener reads the start of a handshake to route the link, then hands it
        on with those bytes put back, so the torrent's connection parses all of it.
        """
        self._on_data = None
        self._on_close = None
        self._pending[:0] = unread

    # -- Link -----------------------------------------------------------------------

    @property
    def remote_address(self) -> PeerAddress:
        return self._remote

    @property
    def closed(self) -> bool:
        return self._closed

    def set_handlers(self, on_data: DataHandler, on_close: CloseHandler) -> None:
        """Attach the engine; bytes that arrived before are delivered at once."""
        self._on_data = on_data
        self._on_close = on_close
        if self._pending:
            data = bytes(self._pending)
            self._pending.clear()
            on_data(memoryview(data))

    def write(self, data: Buffer) -> None:
        if self.transport is not None and not self._closed:
            self.transport.write(data)
            self.bytes_written += len(data)

    def writelines(self, parts: Iterable[Buffer]) -> None:
        if self.transport is not None and not self._closed:
            parts = parts if isinstance(parts, list) else list(parts)
            self.transport.writelines(parts)
            self.bytes_written += sum(len(p) for p in parts)

    @property
    def write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size() if self.transport is not None else 0

    @property
    def writable(self) -> bool:
        return self._can_write.is_set()

    async def wait_writable(self) -> None:
        await self._can_write.wait()

    def pause_reading(self) -> None:
        if self.transport is not None and not self._closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self._closed:
            self.transport.resume_reading()

    def close(self) -> None:
        if self.transport is not None and not self._closed:
            self.transport.close()
        self._closed = True

    def abort(self) -> None:
        if self.transport is not None and not self._closed:
            self.transport.abort()
        self._closed = True


async def open_link(
    host: str, port: int, timeout: float, local_host: str | None = None, config: LinkConfig = _DEFAULT
) -> PeerLink:
    """Connect to a peer (from ``local_host`` when given); raises OSError or TimeoutError."""
    loop = asyncio.get_running_loop()
    local_addr = (local_host, 0) if local_host else None
    async with asyncio.timeout(timeout):
        _, link = await loop.create_connection(
            lambda: PeerLink(config=config), host, port, local_addr=local_addr
        )
    return link
