"""One TCP connection to a peer, as an asyncio Protocol that moves bytes and nothing else.

It parses nothing: received bytes go to ``on_data`` (the engine feeds them to a
sans-I/O :class:`~p2pshare.core.wire.connection.PeerConnection`), and the engine
writes encoded bytes back.  It exposes the transport's flow control so uploads
wait instead of piling up in memory.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable

__all__ = ["PeerLink", "open_link"]

DataHandler = Callable[[memoryview], None]  #: valid only during the call
CloseHandler = Callable[[Exception | None], None]


#: Bytes one read may return; the buffer is reused for every read of every link.
READ_BUFFER = 256 * 1024

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

    def __init__(self, on_data: DataHandler | None = None, on_close: CloseHandler | None = None) -> None:
        self._read_view = _read_view(READ_BUFFER)
        self._on_data = on_data
        self._on_close = on_close
        self._pending = bytearray()
        self.transport: asyncio.Transport | None = None
        self.peername: tuple[str, int] = ("", 0)
        self._can_write = asyncio.Event()
        self._can_write.set()
        self.closed = False
        self.bytes_written = 0
        #: set before the connection is made to drop it at once (e.g. too many pending)
        self.refuse = False

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.refuse:
            transport.abort()
            return
        peer = transport.get_extra_info("peername")
        if peer:
            self.peername = (peer[0], peer[1])
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        # Let the kernel batch reads; the transport reads up to 256 KiB per call.
        transport.set_write_buffer_limits(high=1024 * 1024, low=256 * 1024)

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
        self.closed = True
        self._can_write.set()
        if self._on_close is not None:
            self._on_close(exc)

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    # -- for the engine -----------------------------------------------------------

    def set_handlers(self, on_data: DataHandler, on_close: CloseHandler) -> None:
        """Attach the engine; bytes that arrived before are delivered at once."""
        self._on_data = on_data
        self._on_close = on_close
        if self._pending:
            data = bytes(self._pending)
            self._pending.clear()
            on_data(memoryview(data))

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)
            self.bytes_written += len(data)

    def writelines(self, parts: list[bytes | memoryview]) -> None:
        if self.transport is not None and not self.closed:
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

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True

    def abort(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.abort()
        self.closed = True


async def open_link(host: str, port: int, timeout: float, local_host: str | None = None) -> PeerLink:
    """Connect to a peer (from ``local_host`` when given); raises OSError or TimeoutError."""
    loop = asyncio.get_running_loop()
    local_addr = (local_host, 0) if local_host else None
    async with asyncio.timeout(timeout):
        _, link = await loop.create_connection(PeerLink, host, port, local_addr=local_addr)
    return link
