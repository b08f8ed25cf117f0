"""A loopback TCP ``Link`` for tests: an asyncio protocol with the whole Link surface.

The engine's own TCP link is being reshaped elsewhere; tests of the stream layer use
this small one so they depend only on the :class:`~p2pshare.io.link.Link` protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterable

from p2pshare.io.link import Buffer, CloseHandler, DataHandler


class TcpLink(asyncio.BufferedProtocol):
    """Bytes in, bytes out over one TCP connection; reads land in one reused buffer."""

    def __init__(self) -> None:
        self._buf = bytearray(256 * 1024)
        self._view = memoryview(self._buf)
        self._pending = bytearray()
        self._on_data: DataHandler | None = None
        self._on_close: CloseHandler | None = None
        self._early_close: tuple[Exception | None] | None = None
        self.transport: asyncio.Transport | None = None
        self._address: tuple[str, int] = ("", 0)
        self._closed = False
        self._can_write = asyncio.Event()
        self._can_write.set()
        self.writes = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self._address = (peer[0], peer[1]) if peer else ("", 0)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.set_write_buffer_limits(high=1024 * 1024, low=256 * 1024)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        data = self._view[:nbytes]
        if self._on_data is None:
            self._pending += data
        else:
            self._on_data(data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._can_write.set()
        if self._on_close is None:
            self._early_close = (exc,)
        else:
            handler, self._on_close = self._on_close, None
            handler(exc)

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    # -- Link -----------------------------------------------------------------------

    @property
    def remote_address(self) -> tuple[str, int]:
        return self._address

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def writable(self) -> bool:
        return self._can_write.is_set()

    @property
    def write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size() if self.transport is not None else 0

    def set_handlers(self, on_data: DataHandler, on_close: CloseHandler) -> None:
        self._on_data = on_data
        self._on_close = on_close
        if self._pending:
            data = bytes(self._pending)
            self._pending.clear()
            on_data(memoryview(data))
        if self._early_close is not None and self._on_close is not None:
            handler, self._on_close = self._on_close, None
            handler(self._early_close[0])

    def write(self, data: Buffer) -> None:
        if self.transport is not None and not self._closed:
            self.writes += 1
            self.transport.write(data)

    def writelines(self, parts: Iterable[Buffer]) -> None:
        if self.transport is not None and not self._closed:
            self.writes += 1
            self.transport.writelines(list(parts))

    async def wait_writable(self) -> None:
        await self._can_write.wait()

    def pause_reading(self) -> None:
        if self.transport is not None and not self._closed and self.transport.is_reading():
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self._closed and not self.transport.is_reading():
            self.transport.resume_reading()

    def close(self) -> None:
        if self.transport is not None and not self._closed:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None and not self._closed:
            self.transport.abort()


async def dial(host: str, port: int, local_host: str | None = None, timeout: float = 10.0) -> TcpLink:
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout):
        _, link = await loop.create_connection(
            TcpLink, host, port, local_addr=(local_host, 0) if local_host else None
        )
    return link


class Acceptor:
    """A loopback listener whose accepted links are queued for the test to take."""

    def __init__(self) -> None:
        self.links: asyncio.Queue[TcpLink] = asyncio.Queue()
        self.server: asyncio.Server | None = None
        self.port = 0

    def _make(self) -> TcpLink:
        link = TcpLink()
        self.links.put_nowait(link)
        return link

    async def accept(self, timeout: float = 10.0) -> TcpLink:
        async with asyncio.timeout(timeout):
            return await self.links.get()


@contextlib.asynccontextmanager
async def listening(host: str = "127.0.0.1") -> AsyncIterator[Acceptor]:
    acceptor = Acceptor()
    loop = asyncio.get_running_loop()
    acceptor.server = await loop.create_server(acceptor._make, host, 0)
    acceptor.port = acceptor.server.sockets[0].getsockname()[1]
    try:
        yield acceptor
    finally:
        acceptor.server.close()
        await acceptor.server.wait_closed()


@contextlib.asynccontextmanager
async def tcp_pair(host: str = "127.0.0.1") -> AsyncIterator[tuple[TcpLink, TcpLink]]:
    """A connected loopback pair (dialer, acceptor); both closed afterwards."""
    async with listening(host) as acceptor:
        client = await dial(host, acceptor.port)
        server = await acceptor.accept()
        try:
            yield client, server
        finally:
            client.abort()
            server.abort()
            await asyncio.sleep(0)
