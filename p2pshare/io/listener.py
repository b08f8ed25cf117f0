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
        self._pending = 0  #: accepted links that have not been routed or closed yet
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

    def _make_link(self) -> PeerLink:
        buffer = bytearray()
        link = PeerLink(config=self._link_config)
        loop = asyncio.get_running_loop()
        timer = loop.call_later(self._timeout, link.close)
        if self._pending >= self._max_pending:
            # A flood of connections that never say which torrent they want: refuse the
            # newest rather than let them hold sockets and memory.
            log.info("refusing an incoming connection: %d handshakes already pending", self._pending)
            link.refuse = True
        self._pending += 1
        counted = [True]

        def settle() -> None:
            if counted[0]:
                counted[0] = False
                self._pending -= 1

        def not_plain() -> None:
            timer.cancel()
            settle()
            if self._on_other is None:
                link.close()
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
                link.close()
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
