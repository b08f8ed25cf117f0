"""The port-mapping service: make our TCP and UDP ports reachable through the home router.

``PortMapper`` finds the default gateway (``/proc/net/route``) and the local address that
faces it, then runs NAT-PMP/PCP (:mod:`p2pshare.io.portmap_natpmp`) and UPnP IGD
(:mod:`p2pshare.io.portmap_upnp`) side by side.  The first method that maps every port
becomes the *active* one; the others are closed (and delete whatever they had mapped), so
the router holds one set of mappings.  When every method failed, the whole attempt is
tried again after ``retry_interval``.  Nothing here raises to the caller: each success and
failure is an event (``on_event``) and shows in :meth:`PortMapper.status`.

Use::

    mapper = PortMapper(config.portmap, config.natpmp, tcp_port=6881, udp_port=6881)
    await mapper.start()
    status = await mapper.wait_settled(10.0)   # mapped, or every method failed
    ...
    await mapper.close()                        # deletes our mappings (bounded)
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from p2pshare.config import NatPmpConfig, PortMapConfig
from p2pshare.core.natpmp_wire import NATPMP_PORT, MapProtocol
from p2pshare.core.types import Addr
from p2pshare.io.portmap_events import (
    ExternalAddressFound,
    MethodUnavailable,
    PortMapEvent,
    PortMapFailed,
    PortMapped,
    PortMapStatus,
    PortUnmapped,
)
from p2pshare.io.portmap_natpmp import NatPmpDriver
from p2pshare.io.portmap_upnp import UpnpDriver

__all__ = [
    "ExternalAddressFound",
    "MethodUnavailable",
    "PortMapEvent",
    "PortMapFailed",
    "PortMapStatus",
    "PortMapped",
    "PortMapper",
    "PortUnmapped",
    "default_gateway",
    "local_address_towards",
]

log = logging.getLogger(__name__)
MAX_ERRORS = 20  #: failures kept for the status
RTF_GATEWAY = 0x2


def default_gateway(route_table: str | None = None) -> str | None:
    """The IPv4 default gateway from ``/proc/net/route`` (or the given text of it)."""
    if route_table is None:
        try:
            route_table = Path("/proc/net/route").read_text()
        except OSError:
            return None
    for line in route_table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4:
            continue
        try:
            destination, gateway, flags = int(fields[1], 16), int(fields[2], 16), int(fields[3], 16)
        except ValueError:
            continue
        if destination == 0 and flags & RTF_GATEWAY and gateway:
            return str(ipaddress.IPv4Address(struct.pack("<I", gateway)))
    return None


def local_address_towards(address: str, port: int = NATPMP_PORT) -> str | None:
    """Our own address on the interface that routes to ``address`` (a UDP connect sends nothing)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect((address, port))
            local: str = sock.getsockname()[0]
            return local
    except OSError:
        return None


class _Driver(Protocol):
    method: str

    async def start(self, ports: list[tuple[MapProtocol, int]]) -> None: ...

    async def aclose(self) -> None: ...


class PortMapper:
    """Maps a TCP and a UDP port on the router; see the module docstring."""

    def __init__(
        self,
        config: PortMapConfig | None = None,
        natpmp: NatPmpConfig | None = None,
        *,
        tcp_port: int | None = None,
        udp_port: int | None = None,
        gateway: str | None = None,
        on_event: Callable[[PortMapEvent], None] | None = None,
        natpmp_port: int = NATPMP_PORT,
    ) -> None:
        self.config = config or PortMapConfig()
        self.natpmp_config = natpmp or NatPmpConfig()
        self.ports: list[tuple[MapProtocol, int]] = []
        if tcp_port:
            self.ports.append((MapProtocol.TCP, tcp_port))
        if udp_port:
            self.ports.append((MapProtocol.UDP, udp_port))
        self.gateway = gateway
        self.natpmp_port = natpmp_port  #: the gateway's NAT-PMP/PCP port (5351; tests use another)
        self.local_ip: str | None = None
        self.on_event = on_event
        self.external_address: str | None = None
        self.external_source: str | None = None
        self.active: str | None = None
        self._methods: dict[str, str] = {m: "off" for m in ("natpmp", "upnp")}
        self._drivers: dict[str, _Driver] = {}
        self._mapped: dict[str, dict[Addr, PortMapped]] = {}
        self._errors: deque[str] = deque(maxlen=MAX_ERRORS)
        self._closed = False
        self._changed = asyncio.Event()
        self._retry_task: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()  #: losing methods deleting their mappings
        self._refused: dict[str, set[Addr]] = {}  #: ports a method's gateway refused

    # -- public ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Find the gateway and start every enabled method; returns at once (work goes on)."""
        if not self.config.enabled or not self.ports:
            return
        if self.gateway is None:
            self.gateway = default_gateway()
        if self.gateway is None:
            self._fail_all("no default gateway (no IPv4 default route)")
            return
        self.local_ip = local_address_towards(self.gateway, self.natpmp_port)
        if self.local_ip is None:
            self._fail_all(f"no local address routes to the gateway {self.gateway}")
            return
        await self._start_drivers()

    async def wait_settled(self, timeout: float) -> PortMapStatus:
        """Wait (at most ``timeout``) until a method mapped every port or every method gave up."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._settled():
            self._changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return self.status()

    def status(self) -> PortMapStatus:
        mappings = tuple(self._mapped.get(self.active, {}).values()) if self.active else ()
        return PortMapStatus(
            gateway=self.gateway,
            local_ip=self.local_ip,
            methods=tuple(self._methods.items()),
            active_method=self.active,
            external_address=self.external_address,
            external_source=self.external_source,
            mappings=mappings,
            errors=tuple(self._errors),
            closed=self._closed,
        )

    async def close(self) -> None:
        """Stop renewing and delete every mapping we hold (each method bounded by its close timeout)."""
        if self._closed:
            return
        self._closed = True
        if self._retry_task is not None:
            self._retry_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retry_task
        drivers, self._drivers = list(self._drivers.values()), {}
        await asyncio.gather(*(self._close_driver(d) for d in drivers), *self._closing)
        self._changed.set()

    # -- drivers -------------------------------------------------------------------------------

    async def _start_drivers(self) -> None:
        assert self.gateway is not None and self.local_ip is not None
        for method in self.config.protocols:
            driver: _Driver
            if method == "natpmp":
                driver = NatPmpDriver(
                    self.natpmp_config,
                    self.gateway,
                    self.local_ip,
                    self._report_from("natpmp"),
                    port=self.natpmp_port,
                )
            elif method == "upnp":
                driver = UpnpDriver(self.config, self.gateway, self.local_ip, self._report_from("upnp"))
            else:
                self._errors.append(f"unknown port-mapping method {method!r}")
                continue
            self._methods[method] = "searching"
            self._drivers[method] = driver
            try:
                await driver.start(list(self.ports))
            except OSError as exc:
                self._report_from(method)(MethodUnavailable(method, f"could not start: {exc}"))
        self._changed.set()

    async def _close_driver(self, driver: _Driver) -> None:
        try:
            await driver.aclose()
        except Exception as exc:  # a failure to clean up is reported, never raised
            log.warning("closing %s port mapping failed: %s", driver.method, exc)
            self._errors.append(f"{driver.method}: closing failed: {exc}")

    def _report_from(self, family: str) -> Callable[[PortMapEvent], None]:
        def report(event: PortMapEvent) -> None:
            self._on_event(family, event)

        return report

    def _on_event(self, family: str, event: PortMapEvent) -> None:
        if isinstance(event, PortMapped):
            self._refused.get(family, set()).discard((event.protocol, event.internal_port))
            self._mapped.setdefault(family, {})[(event.protocol, event.internal_port)] = event
            if self.active is None and len(self._mapped[family]) == len(self.ports):
                self._activate(family)
            if self.active == family:
                self._methods[family] = "mapped"
        elif isinstance(event, PortUnmapped):
            self._mapped.get(family, {}).pop((event.protocol, event.port), None)
        elif isinstance(event, ExternalAddressFound):
            if (
                self.external_source is None
                or self.external_source.split("/")[0] == family
                or not self.active
            ):
                self.external_address, self.external_source = event.address, event.method
        elif isinstance(event, MethodUnavailable):
            self._methods[family] = "unavailable"
            self._errors.append(f"{event.method}: {event.reason}")
            driver = self._drivers.pop(family, None)
            if driver is not None:
                self._close_later(driver)  # releases its socket; it holds no mapping
            self._maybe_retry()
        elif isinstance(event, PortMapFailed):
            self._errors.append(f"{event.method}: {event.reason}")
            if event.protocol is not None and event.port is not None and self.active is None:
                refused = self._refused.setdefault(family, set())
                refused.add((event.protocol, event.port))
                if len(refused) + len(self._mapped.get(family, {})) >= len(self.ports):
                    self._methods[family] = "refused"  # answered, but not every port: settled
        log.info("port mapping: %s", event)
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                log.exception("port-mapping event handler failed")
        self._changed.set()

    def _activate(self, family: str) -> None:
        """``family`` mapped every port first: keep it, close the others (they delete their mappings)."""
        self.active = family
        for other, driver in list(self._drivers.items()):
            if other != family:
                del self._drivers[other]
                self._methods[other] = "standby"
                self._close_later(driver)

    def _close_later(self, driver: _Driver) -> None:
        task = asyncio.get_running_loop().create_task(self._close_driver(driver))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _settled(self) -> bool:
        if self._closed or self.active is not None:
            return True
        return not any(state == "searching" for state in self._methods.values())

    def _maybe_retry(self) -> None:
        if self._closed or self.active is not None or self._drivers:
            return
        if self._retry_task is None or self._retry_task.done():
            self._retry_task = asyncio.get_running_loop().create_task(self._retry_later())

    async def _retry_later(self) -> None:
        await asyncio.sleep(self.config.retry_interval)
        if not self._closed and self.active is None:
            await self._start_drivers()

    def _fail_all(self, reason: str) -> None:
        for method in self.config.protocols:
            if method in self._methods:
                self._methods[method] = "unavailable"
        self._errors.append(reason)
        if self.on_event is not None:
            try:
                self.on_event(MethodUnavailable("portmap", reason))
            except Exception:
                log.exception("port-mapping event handler failed")
        self._changed.set()
