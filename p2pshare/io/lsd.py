"""The asyncio adapter for BEP 14 LSD: multicast sockets around a sans-I/O :class:`LsdNode`.

One UDP socket per address family, bound to the LSD port (6771) with SO_REUSEADDR (other
clients on this machine may listen too), joined to the group, multicast loopback on (our
own announces come back and are dropped by cookie), TTL ``config.ttl``.  IPv6 is optional:
if its socket cannot be made (no IPv6, no route to ff15::/16), LSD goes on over IPv4 and
says so in :meth:`LsdService.stats`.  Nothing here raises after :meth:`start`; failures are logged.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import struct
from collections.abc import Callable
from typing import Any

from p2pshare.config import LsdConfig
from p2pshare.core.lsd import LsdNode, PeerFound
from p2pshare.core.types import Addr
from p2pshare.errors import RemoteProtocolError
from p2pshare.io.lsd_ifaces import ipv4_multicast_interfaces, multicast_sender

__all__ = ["LsdService", "PeerFound"]

log = logging.getLogger(__name__)


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, service: LsdService) -> None:
        self.service = service

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        host = str(addr[0])
        if len(addr) >= 4 and addr[3] and "%" not in host:  # IPv6 link-local: keep the interface
            try:
                host = f"{host}%{socket.if_indextoname(addr[3])}"
            except OSError:
                host = f"{host}%{addr[3]}"
        self.service._on_datagram(data, host)

    def error_received(self, exc: Exception) -> None:
        log.debug("LSD socket error: %s", exc)


class LsdService:
    """BEP 14 announces and listening on the LAN; ``on_peer`` is called for each peer found."""

    def __init__(
        self,
        config: LsdConfig | None = None,
        *,
        listen_port: int,
        on_peer: Callable[[PeerFound], None],
        interface_ip: str = "0.0.0.0",
        ipv6: bool = True,
    ) -> None:
        self.config = config or LsdConfig()
        self.listen_port = listen_port
        self.on_peer = on_peer
        self.interface_ip = interface_ip
        self.want_ipv6 = ipv6
        self.cookie = os.urandom(6).hex()
        self.node: LsdNode | None = None
        self._transports: dict[int, asyncio.DatagramTransport] = {}  #: family -> transport
        self._timer: asyncio.TimerHandle | None = None
        self._errors: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        #: with interface_ip 0.0.0.0: one sender per LAN interface (IPv4), so a VPN or container
        #: default route does not swallow the announces; empty: send through the default one
        self._senders: dict[str, socket.socket] = {}
        self.interfaces: list[str] = []  #: the interfaces IPv4 announces go out on

    async def start(self) -> None:
        """Open the sockets and join the groups; an IPv4 failure is logged and leaves LSD off."""
        self._loop = asyncio.get_running_loop()
        groups = []
        wanted = ((socket.AF_INET, self.config.group_v4), (socket.AF_INET6, self.config.group_v6))
        for family, group in wanted:
            if family == socket.AF_INET6 and not self.want_ipv6:
                continue
            try:
                sock = self._open(family, group)
            except OSError as exc:
                self._errors.append(f"{group[0]}: {exc}")
                log.info("LSD over %s unavailable: %s", group[0], exc)
                continue
            transport, _ = await self._loop.create_datagram_endpoint(lambda: _Receiver(self), sock=sock)
            self._transports[family] = transport
            groups.append(group)
        self.node = LsdNode(self.config, port=self.listen_port, cookie=self.cookie, groups=groups)
        self._pump()

    def add_torrent(self, info_hash: bytes) -> None:
        if self.node is not None and self._loop is not None:
            self.node.add_torrent(info_hash, self._loop.time())
            self._pump()

    def remove_torrent(self, info_hash: bytes) -> None:
        if self.node is not None:
            self.node.remove_torrent(info_hash)
            self._pump()

    def stats(self) -> dict[str, Any]:
        node = self.node
        return {
            "groups": [g[0] for g in node.groups] if node else [],
            "announces_sent": node.announces_sent if node else 0,
            "heard": node.heard if node else 0,
            "own_ignored": node.own_ignored if node else 0,
            "malformed": node.malformed if node else 0,
            "errors": list(self._errors),
            "interfaces": list(self.interfaces),
        }

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for transport in self._transports.values():
            transport.close()
        self._transports.clear()
        for sock in self._senders.values():
            sock.close()
        self._senders.clear()
        self.node = None

    # -- sockets ---------------------------------------------------------------------------------

    def _open(self, family: int, group: Addr) -> socket.socket:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if hasattr(socket, "SO_REUSEPORT"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET:
                sock.bind(("0.0.0.0", group[1]))
                iface = socket.inet_aton(self.interface_ip)
                mreq = socket.inet_aton(group[0]) + iface
                try:
                    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
                except OSError:
                    # no default route: the LAN interfaces may still be joined one by one
                    if self.interface_ip != "0.0.0.0" or not self._join_every_interface(sock, group):
                        raise
                else:
                    if self.interface_ip == "0.0.0.0":
                        self._join_every_interface(sock, group)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, self.config.ttl)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
                if self.interface_ip != "0.0.0.0":
                    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, iface)
            else:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(("::", group[1]))
                mreq6 = socket.inet_pton(socket.AF_INET6, group[0]) + struct.pack("@I", 0)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq6)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, self.config.ttl)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 1)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    def _join_every_interface(self, sock: socket.socket, group: Addr) -> bool:
        """Join the group on each LAN interface too, and open a sender for each; any joined?"""
        for name, address in ipv4_multicast_interfaces():
            mreq = socket.inet_aton(group[0]) + socket.inet_aton(address)
            try:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:  # the default interface: joined already
                    log.debug("LSD cannot join %s on %s: %s", group[0], name, exc)
                    continue
            try:
                self._senders[address] = multicast_sender(address, self.config.ttl)
                self.interfaces.append(name)
            except OSError as exc:
                log.debug("LSD cannot send on %s: %s", name, exc)
        return bool(self._senders)

    def _send_v4(self, payload: bytes, group: Addr) -> bool:
        """Send through every interface's sender; False when there are none (use the default)."""
        for address, sock in self._senders.items():
            try:
                sock.sendto(payload, group)
            except OSError as exc:  # a full buffer or a vanished interface loses one announce
                log.debug("LSD announce via %s failed: %s", address, exc)
        return bool(self._senders)

    # -- plumbing ------------------------------------------------------------------------------

    def _on_datagram(self, data: bytes, source: str) -> None:
        if self.node is None or self._loop is None:
            return
        try:
            self.node.receive_data(data, source, self._loop.time())
        except RemoteProtocolError as exc:
            log.debug("malformed LSD datagram from %s: %s", source, exc)
        except ValueError:
            log.debug("LSD datagram from an unparsable source %r", source)
        self._pump()

    def _on_timer(self) -> None:
        self._timer = None
        if self.node is not None and self._loop is not None:
            self.node.handle_timer(self._loop.time())
        self._pump()

    def _pump(self) -> None:
        node, loop = self.node, self._loop
        if node is None or loop is None:
            return
        for group, payload in node.datagrams_to_send():
            v6 = ":" in group[0]
            if not v6 and socket.AF_INET in self._transports and self._send_v4(payload, group):
                continue
            transport = self._transports.get(socket.AF_INET6 if v6 else socket.AF_INET)
            if transport is not None:
                transport.sendto(payload, group)
        while (event := node.next_event()) is not None:
            try:
                self.on_peer(event)
            except Exception:
                log.exception("LSD peer handler failed")
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        when = node.get_timer()
        if when is not None:
            self._timer = loop.call_at(when, self._on_timer)
