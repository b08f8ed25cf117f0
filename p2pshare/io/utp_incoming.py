"""Incoming uTP connections, routed by the info hash of their handshake like TCP ones.

The :class:`~p2pshare.io.listener.Listener` does this for TCP; :class:`UtpIncoming`
is the same rule for links a :class:`~p2pshare.io.utp_socket.UtpSocket` accepts:
read the first 48 bytes (pstrlen, pstr, reserved, info hash), put them back, and
hand the link to ``route(info_hash, link)``.  A link that does not send a valid
prefix within ``timeout`` is closed; at most ``max_pending`` wait at once (more
are refused at once, newest first).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from p2pshare.io.link import Link
from p2pshare.io.utp_socket import UtpLink

__all__ = ["UtpIncoming"]

log = logging.getLogger("p2pshare.utp_incoming")

_ROUTING_PREFIX = 48
_PROTOCOL = b"\x13BitTorrent protocol"

Router = Callable[[bytes, Link], bool]


class UtpIncoming:
    """The ``on_accept`` of a session's UtpSocket: reads the handshake prefix, then routes."""

    def __init__(self, route: Router, *, timeout: float, max_pending: int) -> None:
        self._route = route
        self._timeout = timeout
        self._max_pending = max_pending
        self.pending = 0  #: accepted links not routed or closed yet
        self.accepted = 0  #: links routed to a torrent, ever

    def __call__(self, link: UtpLink) -> None:
        if self.pending >= self._max_pending:
            log.info("refusing an incoming uTP connection: %d handshakes already pending", self.pending)
            link.abort()
            return
        self.pending += 1
        buffer = bytearray()
        settled = [False]
        timer = asyncio.get_running_loop().call_later(self._timeout, link.abort)

        def settle() -> None:
            if not settled[0]:
                settled[0] = True
                self.pending -= 1
                timer.cancel()

        def on_data(data: memoryview) -> None:
            if settled[0]:
                return
            buffer.extend(data)
            if len(buffer) < _ROUTING_PREFIX:
                if not _PROTOCOL.startswith(bytes(buffer[:20])):
                    settle()
                    link.abort()
                return
            settle()
            if buffer[:20] != _PROTOCOL:
                link.abort()
                return
            info_hash = bytes(buffer[28:48])
            link.detach(unread=buffer)
            if self._route(info_hash, link):
                self.accepted += 1
            else:
                log.debug("incoming uTP connection for unknown info hash %s", info_hash.hex())
                link.close()

        def on_close(exc: Exception | None) -> None:
            settle()

        link.set_handlers(on_data, on_close)
