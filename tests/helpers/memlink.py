"""An in-memory ``Link`` pair (h11's ConnectionPair idea) for tests that need no sockets.

Writes are delivered to the other end on the next loop iteration, in order; the
writer's buffer counts bytes the other end has not delivered yet, so ``writable`` /
``wait_writable`` and ``pause_reading`` behave like a real transport's flow control.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable

from p2pshare.io.link import Buffer, CloseHandler, DataHandler


class MemLink:
    """One end of an in-memory stream; make two with :func:`mem_pair`."""

    def __init__(self, address: tuple[str, int], high: int = 1 << 20, low: int = 256 << 10) -> None:
        self._address = address
        self.peer: MemLink | None = None
        self._high = high
        self._low = low
        self._inbox: deque[bytes] = deque()
        self._inbox_bytes = 0
        self._on_data: DataHandler | None = None
        self._on_close: CloseHandler | None = None
        self._paused = False
        self._closed = False
        self._peer_closing = False  # the other end closed: report after the inbox drains
        self._close_reported = False
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._scheduled = False
        self.writes = 0  #: write / writelines calls that carried data (tests count batching)

    @property
    def remote_address(self) -> tuple[str, int]:
        assert self.peer is not None
        return self.peer._address

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def writable(self) -> bool:
        return self._can_write.is_set()

    @property
    def write_buffer_size(self) -> int:
        return self.peer._inbox_bytes if self.peer is not None else 0

    def set_handlers(self, on_data: DataHandler, on_close: CloseHandler) -> None:
        self._on_data = on_data
        self._on_close = on_close
        self._schedule()

    def write(self, data: Buffer) -> None:
        self.writelines([data])

    def writelines(self, parts: Iterable[Buffer]) -> None:
        peer = self.peer
        if self._closed or peer is None or peer._closed:
            return
        chunk = b"".join(bytes(p) for p in parts)
        if not chunk:
            return
        self.writes += 1
        peer._inbox.append(chunk)
        peer._inbox_bytes += len(chunk)
        if peer._inbox_bytes > self._high:
            self._can_write.clear()
        peer._schedule()

    async def wait_writable(self) -> None:
        await self._can_write.wait()

    def pause_reading(self) -> None:
        self._paused = True

    def resume_reading(self) -> None:
        self._paused = False
        self._schedule()

    def close(self) -> None:
        """Flush: the other end gets everything written, then sees the close."""
        if self._closed:
            return
        self._closed = True
        self._can_write.set()
        if self.peer is not None and not self.peer._closed:
            self.peer._peer_closing = True
            self.peer._schedule()
        self._report_close(None)

    def abort(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._can_write.set()
        self._inbox.clear()
        if self.peer is not None and not self.peer._closed:
            self.peer._inbox.clear()
            self.peer._inbox_bytes = 0
            self.peer._closed = True
            self.peer._can_write.set()
            self.peer._report_close(ConnectionResetError("peer aborted"))
        self._report_close(None)

    # -- delivery ------------------------------------------------------------------

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._deliver)

    def _deliver(self) -> None:
        self._scheduled = False
        while self._inbox and not self._paused and self._on_data is not None and not self._closed:
            chunk = self._inbox.popleft()
            self._inbox_bytes -= len(chunk)
            if self.peer is not None and self._inbox_bytes <= self.peer._low:
                self.peer._can_write.set()
            self._on_data(memoryview(chunk))
        if self._peer_closing and not self._inbox and self._on_close is not None and not self._closed:
            self._closed = True
            self._can_write.set()
            self._report_close(None)

    def _report_close(self, exc: Exception | None) -> None:
        if not self._close_reported and self._on_close is not None:
            self._close_reported = True
            self._on_close(exc)


def mem_pair(high: int = 1 << 20, low: int = 256 << 10) -> tuple[MemLink, MemLink]:
    """Two connected in-memory links: (the dialer's end, the acceptor's end)."""
    a = MemLink(("127.0.0.2", 50001), high, low)
    b = MemLink(("127.0.0.3", 6881), high, low)
    a.peer, b.peer = b, a
    return a, b
