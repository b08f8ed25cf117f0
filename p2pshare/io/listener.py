"""The session's one listening TCP port; incoming peers are routed by the info hash
in the first 48 bytes of their handshake (pstrlen, pstr, reserved, info hash).

A connection whose first bytes are not a plain BitTorrent handshake (an MSE/PE
handshake starts with a random public key) goes, with those bytes put back, to
``on_other`` when one is given (the session runs the MSE receiver there), else it is closed.
``plain=False`` (``--encryption require``) closes plain BitTorrent peers instead.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections import OrderedDict
from collections.abc import Callable

from p2pshare.config import LinkConfig
from p2pshare.errors import PortInUseError
from p2pshare.io.link import Link
from p2pshare.io.peer_link import PeerLink

__all__ = ["Listener"]

log = logging.getLogger("p2pshare.listener")

#: pstrlen (1) + "BitTorrent protocol" (19) + reserved (8) + info hash (20).
_ROUTING_PREFIX = 48
_PROTOCOL = b"\x13BitTorrent protocol"

Router = Callable[[bytes, Link], bool]
OtherHandler = Callable[[PeerLink], None]
_LINK = LinkConfig()


class Listener:
    """Accepts TCP connections and hands each to ``route(info_hash, link)``.

    ``route`` returns False for an unknown info hash, and the link is closed.  A
    connection that does not send a valid handshake prefix within ``timeout`` is closed.

    At most ``max_pending`` connections wait for their handshake at once.  A new one
    past that evicts the oldest pending one (never itself): slow or silent handshakes
    (slowloris) then cost each other their place, while an honest peer, whose handshake
    arrives in one round trip, is routed long before ``max_pending`` newer connections
    could push it out.  A pending connection holds a few hundred bytes: the link (which
    reads into a shared buffer), at most 48 bytes of prefix and its timer.
    """

    def __init__(
        self,
        route: Router,
        timeout: float = 10.0,
        max_pending: int = 64,
        link_config: LinkConfig = _LINK,
        *,
        on_other: OtherHandler | None = None,
        plain: bool = True,
    ) -> None:
        self._route = route
        self._on_other = on_other
        self._plain = plain
        self._link_config = link_config
        self._timeout = timeout
        self._max_pending = max_pending
        #: accepted links that have not been routed or closed yet, oldest first
        self._pending: OrderedDict[PeerLink, None] = OrderedDict()
        self.evicted = 0  #: pending connections closed to make room for newer ones
        self._server: asyncio.Server | None = None
        self.port = 0
        self.host = ""

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(self._make_link, host, port, reuse_address=True)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    f"port {port} is already in use; pick another with --port, or 0 for any free port"
                ) from None
            raise
        sockname = self._server.sockets[0].getsockname()
        self.host, self.port = sockname[0], sockname[1]

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _make_link(self) -> PeerLink:
        buffer = bytearray()
        link = PeerLink(config=self._link_config)
        loop = asyncio.get_running_loop()
        timer = loop.call_later(self._timeout, link.abort)
        while len(self._pending) >= self._max_pending:
            oldest, _ = self._pending.popitem(last=False)
            self.evicted += 1
            log.debug("%d handshakes pending: closing the oldest to make room", self._max_pending)
            oldest.abort()
        self._pending[link] = None

        def settle() -> None:
            self._pending.pop(link, None)

        def not_plain() -> None:
            timer.cancel()
            settle()
            if self._on_other is None:
                link.abort()
                return
            link.detach(unread=buffer)
            self._on_other(link)

        def on_data(data: memoryview) -> None:
            buffer.extend(data)
            head = bytes(buffer[:20])
            if not _PROTOCOL.startswith(head):
                not_plain()
                return
            if not self._plain and len(head) == len(_PROTOCOL):
                timer.cancel()
                settle()
                link.abort()
                return
            if len(buffer) < _ROUTING_PREFIX:
                return
            timer.cancel()
            settle()
            info_hash = bytes(buffer[28:48])
            # Put the bytes back so the torrent's connection parses the whole handshake.
            link.detach(unread=buffer)
            if not self._route(info_hash, link):
                log.debug("incoming connection for unknown info hash %s", info_hash.hex())
                link.close()

        def on_close(exc: Exception | None) -> None:
            timer.cancel()
            settle()

        link.set_handlers(on_data, on_close)
        return link

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
