"""Two :class:`~p2pshare.io.link.Link` ends joined in-process: engine tests without sockets.

Like h11's ``ConnectionPair``: what one end writes arrives at the other end's
``on_data`` on a later turn of the event loop (never from inside ``write``, as with
a real transport), in reads of at most ``read_size`` bytes.  Flow control is real:
bytes the reader has not taken yet (it paused reading, or the loop has not run)
count in the writer's ``write_buffer_size``; above ``high_water`` the writer is not
``writable`` until the backlog drains below ``low_water``.  ``close`` delivers what
was written and then closes both ends; ``abort`` drops it and the other end sees
a :class:`ConnectionResetError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from p2pshare.config import LinkConfig
from p2pshare.core.types import PeerAddress
from p2pshare.io.link import Buffer, CloseHandler, DataHandler

__all__ = ["MemoryLink", "memory_link_pair"]

#: Defaults: the TCP link's write-buffer marks and read size (config.LinkConfig).
HIGH_WATER = LinkConfig().write_high_water
LOW_WATER = LinkConfig().write_low_water
READ_SIZE = LinkConfig().read_buffer
_A = PeerAddress("127.0.0.1", 50001)
_B = PeerAddress("127.0.0.2", 50002)


class MemoryLink:
    """One end of an in-memory stream; build pairs with :func:`memory_link_pair`."""

    def __init__(
        self, remote_address: PeerAddress, *, high_water: int, low_water: int, read_size: int
    ) -> None:
        self._remote_address = remote_address
        self._high = high_water
        self._low = low_water
        self._read_size = read_size
        self.other: MemoryLink | None = None
        self._inbox = bytearray()  #: written by the other end, not yet delivered here
        self._eof = False  #: the other end closed: report it once the inbox is delivered
        self._eof_error: Exception | None = None  #: ... with this error (None: orderly)
        self._on_data: DataHandler | None = None
        self._on_close: CloseHandler | None = None
        self._paused = False
        self._scheduled = False
        self._closed = False
        self._close_reported = False
        self._close_exc: Exception | None = None
        self._can_write: asyncio.Event | None = None
        self.bytes_written = 0

    # -- Link -------------------------------------------------------------------------

    @property
    def remote_address(self) -> PeerAddress:
        return self._remote_address

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def write_buffer_size(self) -> int:
        other = self.other
        if other is None or self._closed or other._closed:
            return 0  # nothing will drain it any more: writes are dropped
        return len(other._inbox)

    @property
    def writable(self) -> bool:
        return self.write_buffer_size <= self._high or self._closed

    def set_handlers(self, on_data: DataHandler, on_close: CloseHandler) -> None:
        self._on_data = on_data
        self._on_close = on_close
        if self._closed and not self._close_reported:
            self._finish(self._close_exc)
        else:
            self._schedule()

    def write(self, data: Buffer) -> None:
        other = self.other
        if self._closed or other is None or other._closed or not data:
            return
        other._inbox += data
        self.bytes_written += len(data)
        other._schedule()

    def writelines(self, parts: Iterable[Buffer]) -> None:
        for part in parts:
            self.write(part)

    async def wait_writable(self) -> None:
        while not self._closed and self.write_buffer_size > self._low:
            if self._can_write is None:
                self._can_write = asyncio.Event()
            self._can_write.clear()
            await self._can_write.wait()

    def pause_reading(self) -> None:
        self._paused = True

    def resume_reading(self) -> None:
        self._paused = False
        self._schedule()

    def close(self) -> None:
        """Deliver what was written, then close both ends (an orderly close)."""
        if self._closed:
            return
        self._closed = True
        self._wake_writer()
        other = self.other
        if other is not None:
            other._wake_writer()
            if not other._eof:
                other._eof = True
                other._schedule()
        self._finish(None)

    def abort(self) -> None:
        """Close now: unsent bytes are lost and the other end sees a reset."""
        if self._closed:
            return
        self._closed = True
        self._wake_writer()
        other = self.other
        if other is not None:
            other._wake_writer()
        if other is not None and not other._eof:
            other._inbox.clear()
            other._eof = True
            other._eof_error = ConnectionResetError("the remote end aborted the link")
            other._schedule()
        self._finish(None)

    # -- delivery ---------------------------------------------------------------------

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._deliver)

    def _deliver(self) -> None:
        self._scheduled = False
        if self._on_data is None:
            return
        if self._inbox and not self._paused and not self._closed:
            chunk = bytes(self._inbox[: self._read_size])
            del self._inbox[: self._read_size]
            other = self.other
            if other is not None:
                other._wake_writer()
            self._on_data(memoryview(chunk))
            if self._inbox:
                self._schedule()
                return
        if not self._inbox and self._eof and not self._closed:
            self._closed = True
            self._finish(self._eof_error)

    def _wake_writer(self) -> None:
        if self._can_write is not None and self.write_buffer_size <= self._low:
            self._can_write.set()

    def _finish(self, exc: Exception | None) -> None:
        """Report the close once, after the last data (on a later loop turn, like a transport)."""
        self._wake_writer()
        handler = self._on_close
        if handler is None:
            self._close_exc = exc  # reported when the consumer attaches
            return
        if not self._close_reported:
            self._close_reported = True
            asyncio.get_running_loop().call_soon(handler, exc)


def memory_link_pair(
    a: PeerAddress = _A,
    b: PeerAddress = _B,
    *,
    high_water: int = HIGH_WATER,
    low_water: int = LOW_WATER,
    read_size: int = READ_SIZE,
) -> tuple[MemoryLink, MemoryLink]:
    """Two joined ends: the first is at address ``a`` and sees ``b`` as its remote, and back."""
    end_a = MemoryLink(b, high_water=high_water, low_water=low_water, read_size=read_size)
    end_b = MemoryLink(a, high_water=high_water, low_water=low_water, read_size=read_size)
    end_a.other, end_b.other = end_b, end_a
    return end_a, end_b
