"""The asyncio adapter for :class:`~p2pshare.core.natpmp.NatPmpClient`: one UDP socket to the gateway.

The socket is connected to ``gateway:5351``, so the kernel drops datagrams from anyone
else and reports an ICMP port unreachable as ``ConnectionRefusedError`` (a gateway with no
NAT-PMP/PCP service: the client gives up at once instead of after 9 tries).  A second
socket listens on 224.0.0.1:5350 for the gateway's announcements (restart, new address);
only datagrams from the gateway's address are fed to the client.  Events of the
client are translated into the port-mapping service's events (:mod:`p2pshare.io.portmap_events`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable

from p2pshare.config import NatPmpConfig
from p2pshare.core.natpmp import (
    AddressFailed,
    Closed,
    ExternalAddress,
    GatewayRestarted,
    GatewayUnsupported,
    MappingFailed,
    MappingReady,
    MappingRemoved,
    NatPmpClient,
)
from p2pshare.core.natpmp_wire import ANNOUNCE_PORT, NATPMP_PORT, MapProtocol
from p2pshare.errors import RemoteProtocolError
from p2pshare.io.portmap_events import (
    ExternalAddressFound,
    MethodUnavailable,
    PortMapEvent,
    PortMapFailed,
    PortMapped,
    PortUnmapped,
)

__all__ = ["NatPmpDriver"]

log = logging.getLogger(__name__)
ANNOUNCE_GROUP = "224.0.0.1"  #: all hosts: where gateways multicast NAT-PMP/PCP announcements


class NatPmpDriver(asyncio.DatagramProtocol):
    """Maps ports through NAT-PMP or PCP on the default gateway, renews them, deletes them on close."""

    method = "natpmp"

    def __init__(
        self,
        config: NatPmpConfig,
        gateway: str,
        local_ip: str,
        report: Callable[[PortMapEvent], None],
        *,
        port: int = NATPMP_PORT,
        announce_port: int | None = ANNOUNCE_PORT,
    ) -> None:
        self.config = config
        self.gateway = gateway
        self.port = port
        self.announce_port = announce_port  #: None: do not listen for announcements
        self.report = report
        self.client = NatPmpClient(config, client_ip=local_ip, nonce=os.urandom(12))
        self._transport: asyncio.DatagramTransport | None = None
        self._announcements: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closed = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    async def start(self, ports: list[tuple[MapProtocol, int]]) -> None:
        """Open the socket and send the first requests; everything after happens on callbacks."""
        self._transport, _ = await self._loop.create_datagram_endpoint(
            lambda: self, remote_addr=(self.gateway, self.port)
        )
        await self._listen_announcements()
        now = self._loop.time()
        self.client.start(now)
        for protocol, internal_port in ports:
            self.client.add_mapping(protocol, internal_port, now)
        self._pump()

    async def aclose(self) -> None:
        """Delete our mappings (bounded by ``close_timeout``) and close the socket."""
        if self._transport is not None and not self.client.finished:
            self.client.close(self._loop.time())
            self._pump()
            try:
                await asyncio.wait_for(self._closed.wait(), self.config.close_timeout)
            except TimeoutError:
                self.report(PortMapFailed(self.method, "the gateway did not confirm the deletes in time"))
        if self._timer is not None:
            self._timer.cancel()
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        if self._announcements is not None:
            self._announcements.close()
            self._announcements = None

    async def _listen_announcements(self) -> None:
        """Join 224.0.0.1:5350, where a restarted gateway announces itself (best effort)."""
        if self.announce_port is None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((ANNOUNCE_GROUP, self.announce_port))
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            log.info("not listening for NAT-PMP/PCP announcements: %s", exc)
            return
        # the same protocol object: it accepts only datagrams whose source is the gateway
        self._announcements, _ = await self._loop.create_datagram_endpoint(lambda: self, sock=sock)

    # -- asyncio callbacks ----------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if addr[0] != self.gateway:
            return
        try:
            self.client.receive_data(data, self._loop.time())
        except RemoteProtocolError as exc:
            log.info("bad NAT-PMP/PCP datagram from %s: %s", self.gateway, exc)
        self._pump()

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, ConnectionRefusedError):
            self.client.gateway_unreachable(self._loop.time())
            self._pump()

    def _on_timer(self) -> None:
        self._timer = None
        self.client.handle_timer(self._loop.time())
        self._pump()

    # -- plumbing -----------------------------------------------------------------------------

    def _pump(self) -> None:
        if self._transport is not None:
            for datagram in self.client.datagrams_to_send():
                self._transport.sendto(datagram)
        while (event := self.client.next_event()) is not None:
            self._translate(event)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        when = self.client.get_timer()
        if when is not None:
            self._timer = self._loop.call_at(when, self._on_timer)

    def _translate(self, event: object) -> None:
        method = f"{self.method}/{self.client.dialect.value}"
        if isinstance(event, MappingReady):
            self.report(
                PortMapped(
                    method, event.protocol.value, event.internal_port, event.external_port, event.lifetime
                )
            )
        elif isinstance(event, ExternalAddress):
            self.report(ExternalAddressFound(method, event.address))
        elif isinstance(event, MappingFailed):
            self.report(PortMapFailed(method, event.reason, event.protocol.value, event.internal_port))
        elif isinstance(event, AddressFailed):
            self.report(PortMapFailed(method, f"external address: {event.reason}"))
        elif isinstance(event, MappingRemoved):
            self.report(PortUnmapped(method, event.protocol.value, event.internal_port))
        elif isinstance(event, GatewayUnsupported):
            self.report(MethodUnavailable(self.method, event.reason))
            self._closed.set()
        elif isinstance(event, GatewayRestarted):
            log.info("NAT-PMP gateway %s restarted (epoch %d); mapping again", self.gateway, event.epoch)
        elif isinstance(event, Closed):
            self._closed.set()
