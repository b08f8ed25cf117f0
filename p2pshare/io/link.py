"""The transport seam: one narrow ``Link`` that every kind of peer stream provides.

The wire protocol does not care how bytes travel.  A TCP connection
(:class:`~p2pshare.io.peer_link.PeerLink`), a uTP socket and an encrypted stream
(MSE/PE, wrapping another link) all offer the same small surface, and the engine
never asks which one it holds::

    TCP socket ─┐
    uTP socket ─┼─> [MSE/PE stream, when negotiated] ─> Link ─> wire connection ─> engine

Rules every implementation keeps:

* ``on_data`` gets a memoryview that is valid only during the call; the consumer
  copies what it keeps.  Bytes that arrive before ``set_handlers`` are buffered and
  delivered, in order, from inside ``set_handlers``.
* ``on_close`` is called once, after the last ``on_data``, with the error (or None
  for an orderly close by the remote side).  ``close``/``abort`` by us call it too.
* ``writable`` is False while the outgoing buffer is above its high-water mark;
  ``wait_writable`` returns once it drains (or at once when the link is closed).
* Writes after close are silently dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from p2pshare.core.types import Addr

__all__ = ["Buffer", "CloseHandler", "DataHandler", "Link"]

Buffer = bytes | bytearray | memoryview
DataHandler = Callable[[memoryview], None]  #: the view is valid only during the call
CloseHandler = Callable[[Exception | None], None]


class Link(Protocol):
    """A reliable, ordered byte stream to one peer, with flow control both ways."""

    @property
    def remote_address(self) -> Addr:
        """The peer's (host, port) as the transport sees it (a PeerAddress is such a tuple)."""
        ...

    @property
    def closed(self) -> bool: ...

    @property
    def writable(self) -> bool:
        """False while the outgoing buffer is above its high-water mark."""
        ...

    @property
    def write_buffer_size(self) -> int:
        """Bytes accepted by ``write`` and not yet handed to the network."""
        ...

    def set_handlers(self, on_data: DataHandler, on_close: CloseHandler) -> None:
        """Attach the consumer; bytes that arrived earlier are delivered at once."""
        ...

    def write(self, data: Buffer) -> None: ...

    def writelines(self, parts: Iterable[Buffer]) -> None: ...

    async def wait_writable(self) -> None:
        """Return once the outgoing buffer drained below its low-water mark, or the link closed."""
        ...

    def pause_reading(self) -> None:
        """Stop delivering ``on_data`` until ``resume_reading`` (back-pressure to the peer)."""
        ...

    def resume_reading(self) -> None: ...

    def close(self) -> None:
        """Flush what was written, then close."""
        ...

    def abort(self) -> None:
        """Close at once, dropping unsent data."""
        ...
