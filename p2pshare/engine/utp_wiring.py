"""uTP in a session: one UDP socket on the TCP port number, shared with the DHT node.

:class:`UtpWiring` opens the session's :class:`~p2pshare.io.utp_socket.UtpSocket`
(batched reads) on the same port number as the TCP listener, as libtorrent does,
so the one port peers learn (handshake ``p``, DHT announce, PEX) reaches us on
either transport.  The DHT node later rides on this socket
(:meth:`~p2pshare.io.utp_socket.UtpSocket.attach_dht`): KRPC is told apart by its
first byte.  Incoming uTP links are routed by their handshake's info hash like
TCP ones (:class:`~p2pshare.io.utp_incoming.UtpIncoming`).

The link's write marks come from :class:`~p2pshare.config.LinkConfig`, so TCP and
uTP links give the engine the same back-pressure.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from dataclasses import replace

from p2pshare.config import Config, EncryptionPolicy
from p2pshare.core.types import Addr
from p2pshare.core.utp import UtpManager
from p2pshare.engine.transports import TransportPolicy
from p2pshare.errors import PortInUseError
from p2pshare.io.link import Link
from p2pshare.io.utp_incoming import UtpIncoming
from p2pshare.io.utp_socket import UtpSocket

__all__ = ["UtpWiring"]

log = logging.getLogger("p2pshare.utp")

Router = Callable[[bytes, Link], bool]


class UtpWiring:
    """The session's uTP socket, its incoming router, and dialling over it."""

    def __init__(self, config: Config, route: Router, policy: TransportPolicy) -> None:
        self.config = replace(
            config.utp,
            write_high_water=config.link.write_high_water,
            write_low_water=config.link.write_low_water,
        )
        self._route = route
        self._policy = policy
        #: --encryption require: uTP links carry no MSE/PE yet, so incoming ones are refused
        self.refuse_plain = config.mse.policy is EncryptionPolicy.REQUIRE
        self.incoming = UtpIncoming(
            self._route_incoming,
            timeout=config.wire.handshake_timeout,
            max_pending=config.transport.max_pending_utp_incoming,
        )
        self.socket: UtpSocket | None = None

    @property
    def port(self) -> int:
        return self.socket.local_address[1] if self.socket is not None else 0

    async def start(self, host: str, port: int, *, exact: bool) -> None:
        """Bind UDP ``host:port``; if it is taken and not ``exact``, any free port (outgoing still works)."""
        try:
            self.socket = await self._open(host, port)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            if exact or not port:
                raise PortInUseError(
                    f"UDP port {port} is already in use; pick another with --port, or 0 for any free port"
                ) from None
            log.warning("UDP port %d is taken; uTP listens on any free port (peers may not reach it)", port)
            self.socket = await self._open(host, 0)
        log.info("uTP on UDP %s:%d", *self.socket.local_address)

    async def _open(self, host: str, port: int) -> UtpSocket:
        return await UtpSocket.open(
            host, port, self.config, on_accept=self.incoming, manager=UtpManager(self.config)
        )

    def _route_incoming(self, info_hash: bytes, link: Link) -> bool:
        if self.refuse_plain:
            link.abort()
            return False
        self._policy.note_incoming_utp(link.remote_address[0])
        return self._route(info_hash, link)

    async def connect(self, address: Addr, timeout: float) -> Link:
        """A uTP link to ``address``; ConnectionError when uTP is off, else OSError/TimeoutError."""
        if self.socket is None or self.socket.closed:
            raise ConnectionError("uTP is not enabled in this session")
        return await self.socket.connect((address[0], address[1]), timeout)

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()
