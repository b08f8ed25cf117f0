"""The session's reachability room: port mapping on the home router and LSD on the LAN.

:class:`Reachability` owns a :class:`~p2pshare.io.portmap.PortMapper` (the TCP listen port
and the DHT's UDP port) and an :class:`~p2pshare.io.lsd.LsdService`.  Nothing here is
fatal: a failure becomes a :class:`ReachabilityNote` (logged, shown in the live view) and
the swarm goes on.  What it learns feeds the rest of the session:

* the router's external address, for the magnet's ``x.pe`` hint and what ``share`` prints,
  and as a vote for the DHT node's BEP 42 id (:meth:`DhtNode.hint_external_ip`);
* peers heard by LSD, added to the torrent they announced.

Every close is bounded (``config.reach.close_timeout``) so a stuck router never hangs exit.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from p2pshare.config import DEFAULT_CONFIG, Config
from p2pshare.core.types import Addr
from p2pshare.engine.reach_events import ReachabilityNote
from p2pshare.io.lsd import LsdService, PeerFound
from p2pshare.io.portmap import PortMapper
from p2pshare.io.portmap_events import (
    ExternalAddressFound,
    MethodUnavailable,
    PortMapEvent,
    PortMapFailed,
    PortMapped,
    PortMapStatus,
    PortUnmapped,
)

if TYPE_CHECKING:
    from p2pshare.engine.dht_node import DhtService
    from p2pshare.engine.runner import SwarmOptions
    from p2pshare.engine.session import Session
    from p2pshare.engine.torrent import Torrent

__all__ = [
    "Reachability",
    "ReachabilityNote",
    "describe_portmap_event",
    "lsd_peer_router",
    "start_reachability",
    "usable_external",
    "vote_external",
]

log = logging.getLogger("p2pshare.reachability")


class _Mapper(Protocol):
    async def start(self) -> None: ...

    async def wait_settled(self, timeout: float) -> PortMapStatus: ...

    def status(self) -> PortMapStatus: ...

    async def close(self) -> None: ...


class _Lsd(Protocol):
    async def start(self) -> None: ...

    def add_torrent(self, info_hash: bytes) -> None: ...

    def remove_torrent(self, info_hash: bytes) -> None: ...

    def stats(self) -> dict[str, Any]: ...

    async def close(self) -> None: ...


MapperFactory = Callable[..., _Mapper]
LsdFactory = Callable[..., _Lsd]


def describe_portmap_event(event: PortMapEvent) -> ReachabilityNote:
    """One line for the log and the live view."""
    if isinstance(event, PortMapped):
        proto = event.protocol.upper()
        text = f"{proto} port {event.internal_port} mapped to {event.external_port} ({event.method})"
        return ReachabilityNote("mapped", text, True)
    if isinstance(event, PortUnmapped):
        return ReachabilityNote("unmapped", f"{event.protocol.upper()} port {event.port} unmapped", True)
    if isinstance(event, ExternalAddressFound):
        return ReachabilityNote("external", f"external address {event.address} (from {event.method})", True)
    if isinstance(event, PortMapFailed):
        port = f" {event.protocol.upper()} {event.port}" if event.protocol and event.port else ""
        text = f"port mapping{port} failed ({event.method}): {event.reason}"
        return ReachabilityNote("failed", text, False)
    return ReachabilityNote("unavailable", f"no {event.method} gateway: {event.reason}", False)


def usable_external(address: str | None) -> str | None:
    """The address if others on the Internet could dial it (a global one), else None."""
    if address is None:
        return None
    try:
        return address if ipaddress.ip_address(address).is_global else None
    except ValueError:
        return None


def lsd_peer_router(torrents: dict[bytes, Torrent]) -> Callable[[PeerFound], None]:
    """A callback that adds a peer heard by LSD to the running torrent it announced."""

    def on_peer(peer: PeerFound) -> None:
        torrent = torrents.get(peer.info_hash)
        if torrent is not None and not torrent.closed:
            torrent.add_peers([(peer.host, peer.port)], "lsd")

    return on_peer


def vote_external(dht: DhtService, address: str, weight: int) -> None:
    """Count the router's external address as ``weight`` votes for the DHT's BEP 42 id (global ones only)."""
    if usable_external(address) is None:
        return
    endpoint = dht.endpoint
    endpoint.node.hint_external_ip(address, "portmap", weight, endpoint.now())


class Reachability:
    """Port mapping and LSD for one session; see the module docstring."""

    def __init__(
        self,
        config: Config = DEFAULT_CONFIG,
        *,
        port_mapping: bool = True,
        lsd: bool = True,
        on_note: Callable[[ReachabilityNote], None] | None = None,
        on_lsd_peer: Callable[[PeerFound], None] | None = None,
        on_external: Callable[[str], None] | None = None,
        mapper_factory: MapperFactory | None = None,
        lsd_factory: LsdFactory | None = None,
    ) -> None:
        self.config = config
        self.port_mapping = port_mapping and config.portmap.enabled
        self.lsd_enabled = lsd and config.lsd.enabled
        self.on_note = on_note
        self.on_lsd_peer = on_lsd_peer
        self.on_external = on_external
        self._mapper_factory = mapper_factory or PortMapper
        self._lsd_factory = lsd_factory or LsdService
        self.mapper: _Mapper | None = None
        self.lsd: _Lsd | None = None
        self.external_address: str | None = None  #: as the router told us (may be a private one)
        self.notes: list[ReachabilityNote] = []  #: the latest few, newest last
        self._pending_torrents: list[bytes] = []
        self._closed = False

    # -- start / stop -----------------------------------------------------------------------

    async def start(self, *, tcp_port: int, udp_port: int | None) -> None:
        """Start mapping ``tcp_port`` (and the DHT's ``udp_port``) and LSD; returns at once."""
        if self.port_mapping:
            self.mapper = self._mapper_factory(
                self.config.portmap,
                self.config.natpmp,
                tcp_port=tcp_port,
                udp_port=udp_port,
                on_event=self._on_portmap_event,
            )
            await self.mapper.start()
        if self.lsd_enabled:
            self.lsd = self._lsd_factory(self.config.lsd, listen_port=tcp_port, on_peer=self._on_lsd_peer)
            try:
                await self.lsd.start()
            except OSError as exc:  # pragma: no cover - LsdService logs its own socket errors
                self._note(ReachabilityNote("failed", f"LSD unavailable: {exc}", False))
                self.lsd = None
            for info_hash in self._pending_torrents:
                self.add_torrent(info_hash)
            self._pending_torrents.clear()

    async def wait_settled(self, timeout: float) -> PortMapStatus | None:
        """Wait (bounded) until the mapping worked or every method gave up; None with mapping off."""
        if self.mapper is None:
            return None
        return await self.mapper.wait_settled(timeout)

    async def close(self) -> None:
        """Delete our mappings and leave the LSD group, each bounded by its config timeout."""
        if self._closed:
            return
        self._closed = True
        reach = self.config.reach
        if self.lsd is not None:
            await self._bounded(self.lsd.close(), reach.lsd_close_timeout, "LSD")
        if self.mapper is not None:
            await self._bounded(self.mapper.close(), reach.close_timeout, "port mapper")

    @staticmethod
    async def _bounded(coro: Any, timeout: float, what: str) -> None:
        try:
            async with asyncio.timeout(timeout):
                await coro
        except TimeoutError:
            log.warning("closing the %s took over %g s; left behind", what, timeout)
        except Exception as exc:  # exit goes on whatever the router did
            log.warning("closing the %s failed: %r", what, exc)

    # -- torrents -----------------------------------------------------------------------------

    def add_torrent(self, info_hash: bytes) -> None:
        """Announce ``info_hash`` on the LAN now and every ``config.lsd.announce_interval``."""
        if self.lsd is not None:
            self.lsd.add_torrent(info_hash)
        elif self.lsd_enabled and not self._closed:
            self._pending_torrents.append(info_hash)

    def remove_torrent(self, info_hash: bytes) -> None:
        if self.lsd is not None:
            self.lsd.remove_torrent(info_hash)

    # -- what we know -------------------------------------------------------------------------

    def portmap_status(self) -> PortMapStatus | None:
        return self.mapper.status() if self.mapper is not None else None

    def lsd_stats(self) -> dict[str, Any] | None:
        return self.lsd.stats() if self.lsd is not None else None

    @property
    def public_address(self) -> str | None:
        """The external address, when it is one the Internet can dial (not double NAT)."""
        return usable_external(self.external_address)

    def public_endpoint(self) -> Addr | None:
        """Where the Internet can dial our TCP port: the external address and mapped port."""
        address, port = self.public_address, self.mapped_tcp_port()
        return (address, port) if address is not None and port is not None else None

    def mapped_tcp_port(self) -> int | None:
        """The external TCP port the router forwards to us, if any."""
        status = self.portmap_status()
        if status is None:
            return None
        for m in status.mappings:
            if m.protocol == "tcp":
                return m.external_port
        return None

    def summary(self) -> str:
        """One short line for the live view: what the router did for us."""
        parts: list[str] = []
        status = self.portmap_status()
        if status is None:
            parts.append("port mapping off")
        elif status.mapped:
            ext = self.external_address or "?"
            port = self.mapped_tcp_port()
            parts.append(f"mapped {ext}:{port} ({status.active_method})" if port else f"mapped ({ext})")
        elif status.errors:
            parts.append(f"port mapping failed: {status.errors[-1]}")
        else:
            parts.append("port mapping: searching")
        stats = self.lsd_stats()
        if stats is None:
            parts.append("LSD off")
        else:
            parts.append(f"LSD {stats['announces_sent']} sent, {stats['heard']} heard")
        return "; ".join(parts)

    # -- callbacks ----------------------------------------------------------------------------

    def _note(self, note: ReachabilityNote) -> None:
        self.notes = [*self.notes[-9:], note]
        (log.info if note.ok else log.warning)("%s", note.message)
        if self.on_note is not None:
            self.on_note(note)

    def _on_portmap_event(self, event: PortMapEvent) -> None:
        if isinstance(event, MethodUnavailable) and self.mapper is not None:
            status = self.mapper.status()
            if any(state in ("searching", "mapped", "standby") for _, state in status.methods):
                log.info("no %s gateway: %s", event.method, event.reason)  # another method may still map
                return
        self._note(describe_portmap_event(event))
        if isinstance(event, ExternalAddressFound) and event.address != self.external_address:
            self.external_address = event.address
            if self.on_external is not None:
                self.on_external(event.address)

    def _on_lsd_peer(self, peer: PeerFound) -> None:
        if self.on_lsd_peer is not None:
            self.on_lsd_peer(peer)


async def start_reachability(
    session: Session, options: SwarmOptions, on_event: Callable[[ReachabilityNote], None]
) -> Addr | None:
    """The runner's hook: start mapping and LSD as ``options`` say; our public address if known.

    Waits at most ``options.mapping_wait`` for the router (``share`` does, so its magnet
    carries the mapped address in ``x.pe``); ``get`` does not wait.
    """
    if not (options.port_mapping or options.lsd):
        return None
    reach = await session.start_reachability(
        port_mapping=options.port_mapping, lsd=options.lsd, on_note=on_event
    )
    if options.mapping_wait > 0:
        await reach.wait_settled(options.mapping_wait)
    return reach.public_endpoint()
