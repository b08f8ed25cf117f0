"""Reaching peers: dialling within the limits, taking over links, and what PEX and BEP 55 say of peers.

:class:`Connecting` is a base of :class:`~p2pshare.engine.torrent.Torrent` (the torrent
provides the state, as for the other rooms' handlers).  It dials through the host
(``TorrentHost.connect``: TCP or uTP, MSE as the policy says), takes over any
:class:`~p2pshare.io.link.Link` it is handed without asking which kind it is, keeps one
of two crossing dials (a hole punch dials from both sides), and passes what PEX says of
a peer on to the transport policy (uTP first), the connector (prefers encryption) and
the BEP 55 room (the teller is the first relay to ask).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterable
from typing import TYPE_CHECKING, Any, cast

from p2pshare.config import Config
from p2pshare.core.metainfo import Info
from p2pshare.core.types import Addr, InfoHash, PeerAddress
from p2pshare.core.wire import connection as wc
from p2pshare.core.wire.pex import PexFlags
from p2pshare.engine import events as ev
from p2pshare.engine.crossed_links import Detachable, settle_crossed
from p2pshare.engine.hash_exchange import HashExchange
from p2pshare.engine.holepunch import HolepunchRoom
from p2pshare.engine.params import TorrentHost, TorrentParams
from p2pshare.engine.peer import Peer
from p2pshare.engine.peer_book import KnownPeer, PeerBook
from p2pshare.errors import Violation
from p2pshare.io.link import Link

__all__ = ["CROSSED", "Connecting"]

log = logging.getLogger("p2pshare.torrent")

CROSSED = "crossed with the peer's own dial, which both sides keep"


class Connecting:
    """Dialling and attaching links (see the module docstring)."""

    params: TorrentParams
    info_hash: InfoHash
    info: Info | None
    host: TorrentHost
    peer_id: bytes
    config: Config
    peers: dict[PeerAddress, Peer]
    book: PeerBook
    hashes: HashExchange
    holepunch: HolepunchRoom
    closed: bool
    _loop: asyncio.AbstractEventLoop | None

    if TYPE_CHECKING:  # provided by the torrent (declared here for the type checker only)

        def _emit(self, event: ev.EngineEvent) -> None: ...

        def _spawn(self, coro: Coroutine[Any, Any, object], name: str) -> asyncio.Task[object]: ...

        def _now(self) -> float: ...

        def _on_data(self, peer: Peer, data: memoryview) -> None: ...

        def _on_link_closed(self, peer: Peer, exc: Exception | None) -> None: ...

        def _drop(
            self, peer: Peer, reason: str, *, kind: Violation | None = None, ban: bool = False
        ) -> None: ...

        def _schedule_flush(self, peer: Peer) -> None: ...

    def add_peers(self, addresses: Iterable[Addr], source: str) -> int:
        """Remember addresses to connect to; return how many were new."""
        new = self.book.add((PeerAddress.unchecked(h, p) for h, p in addresses), source)
        if new:
            self._emit(ev.PeersFound(new, source))
            self._connect_more()
        return new

    def _connect_more(self) -> None:
        if self.closed or self._loop is None:
            return
        for addr, known in self.book.to_dial(self._loop.time(), len(self.peers)):
            self._spawn(self._connect(addr, known), f"connect-{addr}")

    async def _connect(self, addr: PeerAddress, known: KnownPeer) -> None:
        try:
            link = await self.host.connect(addr, self.info_hash.value)
        except (OSError, TimeoutError) as exc:
            now = asyncio.get_running_loop().time()
            delay = self.book.dial_failed(known, now)
            log.debug("connect to %s failed (%s); retry in %.0fs", addr, exc, delay)
            self.holepunch.dial_failed(addr, now)  # BEP 55: maybe a relay can introduce us
            return
        self.book.dial_done()
        if self.closed:
            link.close()
            return
        self.attach(link, outgoing=True, address=addr)

    def _pex_flags(self, address: PeerAddress, via: PeerAddress, flags: int) -> None:
        """What PEX said of ``address``: prefers encryption (the connector), uTP and reachability."""
        self.host.pex_flags(address, flags)
        utp, reachable = bool(flags & PexFlags.UTP), bool(flags & PexFlags.REACHABLE)
        self.note_pex_peer(address, via, utp=utp, reachable=reachable)

    def note_pex_peer(self, address: PeerAddress, via: PeerAddress, *, utp: bool, reachable: bool) -> None:
        """The hook for PEX (BEP 11): ``via`` told us about ``address`` with these flags.

        The uTP flag orders our dials (uTP first); the teller is the first relay to ask
        for a rendezvous; a peer flagged unreachable is asked for at once, not after a
        failed dial.
        """
        if utp:
            self.host.note_utp(address)
        self.holepunch.learned_from(address, via)
        if not reachable and utp and address not in self.peers:
            self.holepunch.want(address, self._now())

    def _dial_utp(self, addr: PeerAddress) -> None:
        """BEP 55 ``connect``: send uTP SYNs to ``addr`` now (the other side does the same)."""
        if not self.closed:
            self._spawn(self._connect_utp(addr), f"holepunch-{addr}")

    async def _connect_utp(self, addr: PeerAddress) -> None:
        try:
            link = await self.host.connect_utp(addr)
        except (OSError, TimeoutError) as exc:
            log.info("hole punch to %s failed: %s", addr, exc)
            return
        if self.closed:
            link.close()
            return
        self.attach(link, outgoing=True, address=addr)

    def attach(self, link: Link, *, outgoing: bool, address: PeerAddress | None = None) -> None:
        """Take over a connected link (outgoing, or incoming routed by its info hash)."""
        if address is None:
            host, port = link.remote_address
            address = PeerAddress.unchecked(host, port)
        if self.closed or self.book.is_banned(address[0]):
            link.close()
            return
        if address in self.peers:
            self._crossed(link, address, outgoing)
            return
        if len(self.peers) >= self.config.swarm.max_peers:
            link.close()
            return
        conn = wc.PeerConnection(
            self.info_hash.value if outgoing else None,  # incoming: either hash of a hybrid (v2_handlers)
            self.peer_id,
            initiator=outgoing,
            num_pieces=self.info.num_pieces if self.info is not None else None,
            limits=self.config.wire,
            fast=True,
            extensions=True,
            dht=self.host.dht_port() is not None,
            v2=self.hashes.speaks_v2(self.params, self.info),
            hash_limits=self.config.hashes,
        )
        if self.info is not None:
            conn.set_geometry(self.info.geometry)
        now = self._now()
        peer = Peer(link, conn, address, outgoing, now, self.config.engine)
        peer.on_pending = self._schedule_flush
        self.peers[address] = peer
        self.book.attached(address)
        if outgoing:
            # Before set_handlers: an encrypted link may deliver the peer's handshake (sent
            # with the MSE handshake) at once, and ours must be on the wire before any reply.
            link.write(conn.handshake_bytes())
            peer.last_send = now
        link.set_handlers(lambda data: self._on_data(peer, data), lambda exc: self._on_link_closed(peer, exc))

    def _crossed(self, link: Link, address: PeerAddress, outgoing: bool) -> None:
        """A second link to a peer we are dialling (a hole punch: both sides dial): keep one."""
        existing = self.peers[address]
        if outgoing or not existing.outgoing or existing.handshake_done or not hasattr(link, "detach"):
            link.close()
            return

        def keep(won: Link) -> None:
            old = self.peers.get(address)
            if old is not None and not old.handshake_done:
                self._drop(old, CROSSED)
            self.attach(won, outgoing=False, address=address)

        settle_crossed(cast(Detachable, link), self.peer_id, keep, timeout=self.config.wire.handshake_timeout)
