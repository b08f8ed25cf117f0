"""Engine tests without sockets: torrents joined by in-memory links, and scripted raw peers.

:class:`MemoryNetwork` plays the part of the operating system's TCP: a host
listens on a :class:`PeerAddress`, and ``connect`` hands the listener one end of a
:func:`~p2pshare.io.memory_link.memory_link_pair` and the dialler the other.
:class:`MemoryHost` is a :class:`~p2pshare.engine.params.TorrentHost` on that
network, so a real :class:`~p2pshare.engine.torrent.Torrent` runs unchanged.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from p2pshare.config import DEFAULT_CONFIG, Config
from p2pshare.core.metainfo import Info, build_info
from p2pshare.core.types import PeerAddress
from p2pshare.core.wire import Event, Message, MessageParser, PeerConnection
from p2pshare.core.wire.extension import ExtensionHandshake
from p2pshare.core.wire.messages import make_peer_id
from p2pshare.core.wire.metadata import MetadataMessage
from p2pshare.engine import events as ev
from p2pshare.engine.connector import Connector
from p2pshare.engine.params import TorrentParams
from p2pshare.engine.torrent import Torrent
from p2pshare.errors import RemoteProtocolError
from p2pshare.io.link import Link
from p2pshare.io.memory_link import memory_link_pair
from p2pshare.io.storage import MemoryStorage

Accept = Callable[[Link], None]


def quick_config(**swarm: Any) -> Config:
    """The default configuration with a fast tick, plus any SwarmConfig overrides."""
    return replace(DEFAULT_CONFIG, swarm=replace(DEFAULT_CONFIG.swarm, status_interval=0.05, **swarm))


class MemoryNetwork:
    """Listening addresses and in-memory connections between them."""

    def __init__(self) -> None:
        self.listeners: dict[PeerAddress, Accept] = {}
        self.dials: list[tuple[float, PeerAddress]] = []  #: (loop time, address) of every dial
        self._ports = iter(range(40000, 60000))

    def listen(self, address: PeerAddress, accept: Accept) -> None:
        self.listeners[address] = accept

    def connect(self, source_host: str, address: PeerAddress) -> Link:
        self.dials.append((asyncio.get_running_loop().time(), address))
        accept = self.listeners.get(address)
        if accept is None:
            raise ConnectionRefusedError(f"nothing listens on {address}")
        mine, theirs = memory_link_pair(PeerAddress(source_host, next(self._ports)), address)
        accept(theirs)
        return mine


class MemoryHost:
    """A TorrentHost whose links are in-memory; records the DHT nodes peers name."""

    def __init__(
        self, network: MemoryNetwork, address: PeerAddress, config: Config, dht_port: int | None = None
    ) -> None:
        self.network = network
        self.address = address
        self._config = config
        self._peer_id = make_peer_id()
        self._dht_port = dht_port
        self.dht_nodes: list[PeerAddress] = []
        self.utp_dials: list[PeerAddress] = []
        self.failed_links: list[PeerAddress] = []
        self.utp_hints: list[PeerAddress] = []
        #: when set, links are dialed through it (MSE/PE as its policy says)
        self.connector: Connector | None = None

    @property
    def peer_id(self) -> bytes:
        return self._peer_id

    @property
    def config(self) -> Config:
        return self._config

    def tcp_port(self) -> int:
        return self.address.port

    def dht_port(self) -> int | None:
        return self._dht_port

    def add_dht_node(self, address: PeerAddress) -> None:
        self.dht_nodes.append(address)

    def pex_flags(self, address: PeerAddress, flags: int) -> None:
        if self.connector is not None:
            self.connector.pex_flags(address, flags)

    async def connect(self, address: PeerAddress, info_hash: bytes) -> Link:
        if self.connector is None:
            return self.network.connect(self.address.host, address)

        async def memory() -> Link:
            return self.network.connect(self.address.host, address)

        return await self.connector.dial(address, info_hash, memory)

    def note_utp(self, address: PeerAddress) -> None:
        self.utp_hints.append(address)

    def link_failed(self, address: PeerAddress, link: Link) -> None:
        self.failed_links.append(address)

    async def connect_utp(self, address: PeerAddress) -> Link:
        """The in-memory network has one kind of link; hole-punch dials are recorded."""
        self.utp_dials.append(address)
        return self.network.connect(self.address.host, address)


def make_payload(size: int, piece_length: int, seed: int = 0) -> tuple[Info, bytes]:
    """A single-file manifest over ``size`` random bytes, and the bytes."""
    data = random.Random(seed).randbytes(size)
    hashes = b"".join(hashlib.sha1(data[i : i + piece_length]).digest() for i in range(0, size, piece_length))
    return build_info("payload.bin", [(("payload.bin",), size)], piece_length, hashes, single_file=True), data


class Swarm:
    """Torrents on one MemoryNetwork, each with MemoryStorage; closes them all."""

    def __init__(self, tmp_path: Path) -> None:
        self.network = MemoryNetwork()
        self.tmp_path = tmp_path
        self.torrents: list[Torrent] = []
        self.events: dict[str, list[ev.EngineEvent]] = {}
        self.storages: dict[str, MemoryStorage] = {}

    async def add(
        self,
        host: str,
        info: Info,
        *,
        data: bytes | None = None,
        config: Config | None = None,
        magnet: bool = False,
        dht_port: int | None = None,
        port: int = 6881,
    ) -> tuple[Torrent, MemoryHost]:
        """A torrent on ``host``: a seed of ``data`` when given, else an empty download."""
        address = PeerAddress(host, port)
        mhost = MemoryHost(self.network, address, config or quick_config(), dht_port)
        events = self.events.setdefault(host, [])

        def open_storage(got: Info) -> MemoryStorage:
            storage = MemoryStorage(got.geometry, data)
            self.storages[host] = storage
            return storage

        params = TorrentParams(
            info.info_hash,
            info=None if magnet else info,
            download_dir=self.tmp_path / host,
            assume_complete=data is not None,
        )
        torrent = Torrent(params, mhost, storage=open_storage, on_event=events.append)
        self.network.listen(address, lambda link: torrent.attach(link, outgoing=False))
        await torrent.start()
        self.torrents.append(torrent)
        return torrent, mhost

    async def close(self) -> None:
        async with asyncio.timeout(10):
            for t in self.torrents:
                await t.close()


@asynccontextmanager
async def memory_swarm(tmp_path: Path) -> AsyncIterator[Swarm]:
    swarm = Swarm(tmp_path)
    try:
        yield swarm
    finally:
        await swarm.close()


class RawPeer:
    """A scripted peer: a bare PeerConnection on the far end of an in-memory link."""

    def __init__(self, link: Link, info: Info, *, fast: bool = True, extensions: bool = False) -> None:
        self.link = link
        self.conn = PeerConnection(
            info.info_hash.value,
            make_peer_id(),
            initiator=True,
            num_pieces=info.num_pieces,
            fast=fast,
            extensions=extensions,
        )
        self.conn.set_geometry(info.geometry)
        self.events: list[Event] = []  #: what our PeerConnection made of the bytes
        self.wire: list[Message] = []  #: every message exactly as it arrived (a second, plain parser)
        self._parser = MessageParser()
        self._handshake_seen = False
        self.error: RemoteProtocolError | None = None
        self.closed: Exception | bool | None = False
        link.set_handlers(self._on_data, self._on_close)
        link.write(self.conn.handshake_bytes())

    def _on_data(self, data: memoryview) -> None:
        parser = self._parser
        parser.feed(data)
        if not self._handshake_seen:
            self._handshake_seen = parser.next_handshake() is not None
        if self._handshake_seen:
            while (msg := parser.next_message()) is not None:
                self.wire.append(msg)
        try:
            self.conn.receive_data(data)
            while (event := self.conn.next_event()) is not None:
                self.events.append(event)
        except RemoteProtocolError as exc:
            self.error = exc

    def _on_close(self, exc: Exception | None) -> None:
        self.closed = exc if exc is not None else True

    def send(self, *msgs: Message | ExtensionHandshake | MetadataMessage) -> None:
        self.link.write(b"".join(self.conn.send(m) for m in msgs))

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


async def dial(swarm: Swarm, torrent_host: MemoryHost, info: Info, source: str, **kw: Any) -> RawPeer:
    """A raw peer at ``source`` connected to the torrent on ``torrent_host``."""
    link = swarm.network.connect(source, torrent_host.address)
    return RawPeer(link, info, **kw)


async def until(predicate: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Poll ``predicate`` on the loop until it holds; fail naming ``what`` after ``timeout`` s."""
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}") from None


def of(events: list[ev.EngineEvent], kind: type[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]
