"""A session: one peer id, one listening port, any number of torrents, maybe a DHT node.

Incoming connections are routed by the info hash of their handshake to the
torrent that serves it; encrypted ones (MSE/PE) by SKEY, among every torrent served,
through the :class:`~p2pshare.engine.connector.Connector`, which also encrypts the
links we dial as ``--encryption`` says.  The DHT node, when enabled, is shared by every torrent:
it finds peers for downloads, announces shares, and learns nodes from the BEP 3
``port`` messages peers send.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from p2pshare.config import DEFAULT_CONFIG, Config, EncryptionPolicy
from p2pshare.core.mse import MseError
from p2pshare.core.types import Addr, PeerAddress
from p2pshare.core.wire.messages import make_peer_id
from p2pshare.engine import events as ev
from p2pshare.engine.connector import Connector
from p2pshare.engine.coop import lookup_pause
from p2pshare.engine.hash_exchange import swarm_hashes
from p2pshare.engine.params import StorageFactory, TorrentParams, file_storage
from p2pshare.engine.rate_limit import RateLimits
from p2pshare.engine.torrent import Torrent
from p2pshare.engine.transports import Transport, TransportPolicy
from p2pshare.engine.utp_wiring import UtpWiring
from p2pshare.io.link import Link
from p2pshare.io.listener import Listener
from p2pshare.io.peer_link import PeerLink, open_link
from p2pshare.io.utp_socket import UtpLink

if TYPE_CHECKING:
    from p2pshare.engine.dht_node import DhtService
    from p2pshare.engine.reachability import Reachability, ReachabilityNote

__all__ = ["Session"]

log = logging.getLogger("p2pshare.session")


class Session:
    """Owns the listening socket, the torrents, and (optionally) the DHT node.

    It is the :class:`~p2pshare.engine.params.TorrentHost` of its torrents: it says
    who we are and which ports we have, takes DHT nodes peers name, and opens the
    links torrents dial (TCP today; the torrent never asks which kind).
    """

    def __init__(
        self,
        config: Config = DEFAULT_CONFIG,
        *,
        listen_host: str = "0.0.0.0",
        listen_port: int = 0,
        state_dir: Path | None = None,
        peer_id: bytes | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._config = config
        self.listen_host = listen_host
        self.listen_port = listen_port
        self.state_dir = state_dir
        self._peer_id = peer_id or make_peer_id()
        self.torrents: dict[bytes, Torrent] = {}
        self.dht: DhtService | None = None
        self.connector = Connector(config.mse, config.connector)
        self._accepts: set[asyncio.Task[None]] = set()
        self.reach: Reachability | None = None  #: port mapping and LSD (start_reachability)
        self._listener = Listener(
            self._route,
            timeout=config.wire.handshake_timeout,
            max_pending=config.wire.max_pending_incoming,
            link_config=config.link,
            on_other=self._accept_other,
            plain=config.mse.policy is not EncryptionPolicy.REQUIRE,
        )
        self._rng = rng or random.Random()
        # --encryption require: only TCP carries MSE/PE so far, so no plaintext uTP dials either
        mode = "tcp" if config.mse.policy is EncryptionPolicy.REQUIRE else config.transport.mode
        self.transports = TransportPolicy(config.transport, Transport(mode))
        self.utp = UtpWiring(config, self._route, self.transports)
        self.rates = RateLimits(config.coop)  #: --max-up / --max-down, over all torrents

    @property
    def port(self) -> int:
        return self._listener.port or self.utp.port

    # -- TorrentHost ----------------------------------------------------------------------

    @property
    def peer_id(self) -> bytes:
        return self._peer_id

    @property
    def config(self) -> Config:
        return self._config

    def tcp_port(self) -> int:
        """The port peers reach us on (TCP, and uTP on the same UDP port number)."""
        return self.port

    def dht_port(self) -> int | None:
        return self.dht.port if self.dht is not None else None

    def add_dht_node(self, address: PeerAddress) -> None:
        if self.dht is not None:
            self.dht.add_node(address[0], address[1])

    def pex_flags(self, address: PeerAddress, flags: int) -> None:
        self.connector.pex_flags(address, flags)

    async def connect(self, address: PeerAddress, info_hash: bytes) -> Link:
        """Dial ``address`` on the transports the policy orders, falling back to the next one.

        TCP goes through the connector (MSE/PE as the encryption policy says); uTP links
        carry plaintext, as incoming uTP is accepted (``--encryption require`` turns uTP
        off, see :func:`p2pshare.engine.runner.transport_for`).
        """
        order = self.transports.order(address)
        error: BaseException | None = None
        for attempt, kind in enumerate(order):
            try:
                if kind is Transport.UTP:
                    link: Link = await self.utp.connect(address, self._config.swarm.connect_timeout)
                else:
                    link = await self.connector.dial(address, info_hash, lambda: self._connect_tcp(address))
            except (OSError, TimeoutError) as exc:
                self.transports.dialled(address, kind, False, attempt=attempt)
                error = exc
                continue
            self.transports.dialled(address, kind, True, attempt=attempt)
            return link
        assert error is not None
        raise error

    def note_utp(self, address: PeerAddress) -> None:
        self.transports.note_utp(address)

    def link_failed(self, address: PeerAddress, link: Link) -> None:
        """An outgoing link closed before the BitTorrent handshake: its transport failed there."""
        kind = Transport.UTP if isinstance(link, UtpLink) else Transport.TCP
        self.transports.failed(address, kind)

    async def connect_utp(self, address: PeerAddress) -> Link:
        """Dial ``address`` over uTP only, at once (BEP 55 ``connect``); OSError or TimeoutError."""
        return await self.utp.connect(address, self._config.swarm.connect_timeout)

    async def _connect_tcp(self, address: PeerAddress) -> Link:
        return await open_link(
            address[0],
            address[1],
            self._config.swarm.connect_timeout,
            local_host=self._bind_host(),
            config=self._config.link,
        )

    # -- torrents -------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on TCP and/or uTP (``--transport``); uTP takes the TCP port number on UDP."""
        if self.transports.listens_tcp:
            await self._listener.start(self.listen_host, self.listen_port)
            log.info("listening on %s:%d", self._listener.host, self._listener.port)
        if self.transports.uses_utp:
            port = self._listener.port or self.listen_port
            await self.utp.start(self.listen_host, port, exact=not self.transports.listens_tcp)

    async def start_dht(
        self,
        *,
        bootstrap: Sequence[Addr],
        host: str | None = None,
        port: int = 0,
    ) -> DhtService:
        """Start the shared DHT node (import is lazy so sessions without DHT stay light)."""
        from p2pshare.engine.dht_node import DhtService

        shared = self.utp.socket if self.utp.socket is not None and port in (0, self.utp.port) else None
        self.dht = await DhtService.start(
            host=host or self.listen_host,
            port=port,
            bootstrap=bootstrap,
            state_dir=self.state_dir,
            config=self._config.dht,
            utp=shared,
        )
        return self.dht

    async def start_reachability(
        self, *, port_mapping: bool, lsd: bool, on_note: Callable[[ReachabilityNote], None] | None = None
    ) -> Reachability:
        """Map our ports on the router and join LSD (after start_dht, so the DHT's port is mapped)."""
        from p2pshare.engine.reachability import Reachability, lsd_peer_router

        self.reach = Reachability(
            self._config,
            port_mapping=port_mapping,
            lsd=lsd,
            on_note=on_note,
            on_lsd_peer=lsd_peer_router(self.torrents),
            on_external=self._external_address,
        )
        await self.reach.start(tcp_port=self.port, udp_port=self.dht_port())
        for key in self.torrents:
            self.reach.add_torrent(key)
        return self.reach

    def _external_address(self, address: str) -> None:
        """The router named our external address: a vote for the DHT's BEP 42 node id."""
        from p2pshare.engine.reachability import vote_external

        if self.dht is not None:
            vote_external(self.dht, address, self._config.reach.dht_vote_weight)

    def _route(self, info_hash: bytes, link: Link) -> bool:
        torrent = self.torrents.get(info_hash)
        if torrent is None or torrent.closed:
            return False
        torrent.attach(link, outgoing=False)
        return True

    def _accept_other(self, link: PeerLink) -> None:
        """An incoming link that did not open with a plain handshake: maybe MSE/PE."""
        if not self.connector.accepting():
            link.close()
            return
        task = asyncio.get_running_loop().create_task(self._accept_mse(link), name="mse-accept")
        self._accepts.add(task)
        task.add_done_callback(self._accepts.discard)

    async def _accept_mse(self, link: PeerLink) -> None:
        try:
            wrapped, info_hash = await self.connector.accept(link)
        except MseError as exc:
            log.debug("incoming MSE handshake from %s failed: %s", link.remote_address, exc)
            return
        if info_hash is None or not self._route(info_hash, wrapped):
            wrapped.close()

    async def add_torrent(
        self,
        params: TorrentParams,
        *,
        storage: StorageFactory | None = None,
        on_event: Callable[[ev.EngineEvent], None] | None = None,
    ) -> Torrent:
        """Start a torrent (files under ``params.download_dir`` unless ``storage`` is given)."""
        key = params.info_hash.value
        if key in self.torrents:
            return self.torrents[key]
        torrent = Torrent(
            params,
            self,
            storage=storage or file_storage(params, self._config),
            on_event=on_event,
            rng=self._rng,
            rates=self.rates,
        )
        self.torrents[key] = torrent
        self.connector.serve(key)
        for alias in swarm_hashes(params):  # a hybrid is one swarm under both hashes (BEP 52)
            self.torrents.setdefault(alias.value, torrent)
            self.connector.serve(alias.value)  # MSE peers name either hash by SKEY
        await torrent.start()
        if self.reach is not None:
            self.reach.add_torrent(key)
        if on_event is not None:
            on_event(ev.Listening(params.info_hash.hex, self.port))
        return torrent

    async def remove_torrent(self, torrent: Torrent) -> None:
        """Stop one torrent (an updatable share's old version): no more routing, announcing or peers."""
        for key in [k for k, t in self.torrents.items() if t is torrent]:
            del self.torrents[key]
        if self.dht is not None:
            for swarm_hash in swarm_hashes(torrent.params, torrent.info):
                self.dht.stop_announcing(swarm_hash)
        await torrent.close()

    def _bind_host(self) -> str | None:
        """Outgoing connections leave from the listening address when it is a specific one."""
        if self.listen_host in ("", "0.0.0.0", "::"):
            return None
        return self.listen_host

    async def find_peers_forever(self, torrent: Torrent) -> None:
        """Ask the DHT for peers now, then again: often while few are connected, else every few minutes."""
        assert self.dht is not None
        cfg = self._config.engine
        coop = self._config.coop
        while not torrent.closed and not torrent.completed.is_set():
            found = 0
            for swarm_hash in swarm_hashes(torrent.params, torrent.info):
                async for addr in self.dht.get_peers(swarm_hash, timeout=cfg.dht_search_first_timeout):
                    found += torrent.add_peers([addr], "dht")
            log.info("DHT lookup for %s: %d new peers", torrent.info_hash.hex[:8], found)
            await asyncio.sleep(lookup_pause(len(torrent.peers), coop))

    def announce(self, torrent: Torrent) -> None:
        """Announce ``torrent`` on the DHT now and every re-announce interval."""
        if self.dht is not None:
            for swarm_hash in swarm_hashes(torrent.params, torrent.info):
                self.dht.keep_announced(swarm_hash, self.port)

    async def close(self) -> None:
        if self.reach is not None:
            await self.reach.close()  # bounded: a stuck router never hangs exit
        await self._listener.close()
        for task in list(self._accepts):
            task.cancel()
        if self._accepts:
            await asyncio.wait(list(self._accepts), timeout=self._config.engine.task_close_timeout)
        for torrent in list(self.torrents.values()):
            await torrent.close()
        if self.dht is not None:
            with contextlib.suppress(Exception):
                await self.dht.close()
        self.utp.close()  # after the DHT: its endpoint may ride on this socket
        self.connector.close()
