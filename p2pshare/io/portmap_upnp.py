"""UPnP IGD port mapping through ``async-upnp-client``: SSDP search, description, SOAP actions.

The library does the SSDP M-SEARCH, fetches and parses the device description, and
builds and parses SOAP; this module chooses the service (WANIPConnection v2, then v1,
then WANPPPConnection v1, in the gateway's own device tree), calls GetExternalIPAddress,
AddPortMapping and DeletePortMapping, renews leases at half life, and reports each step
as a port-mapping event.  Only devices whose description sits at a private (LAN) address
are used, the one at the default gateway's address first; answers are bounded in size.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from async_upnp_client.client import UpnpDevice, UpnpService
from async_upnp_client.client_factory import UpnpFactory
from async_upnp_client.exceptions import UpnpActionResponseError, UpnpError
from async_upnp_client.search import SsdpSearchListener

from p2pshare.config import PortMapConfig
from p2pshare.core.natpmp_wire import MapProtocol
from p2pshare.io.portmap_events import (
    ExternalAddressFound,
    MethodUnavailable,
    PortMapEvent,
    PortMapFailed,
    PortMapped,
    PortUnmapped,
)
from p2pshare.io.upnp_http import BoundedRequester

__all__ = ["IGD_SEARCH_TARGET", "SERVICE_TYPES", "UpnpDriver", "external_candidates", "find_wan_service"]

log = logging.getLogger(__name__)

IGD_SEARCH_TARGET = "urn:schemas-upnp-org:device:InternetGatewayDevice:1"
#: in order of preference
SERVICE_TYPES = (
    "urn:schemas-upnp-org:service:WANIPConnection:2",
    "urn:schemas-upnp-org:service:WANIPConnection:1",
    "urn:schemas-upnp-org:service:WANPPPConnection:1",
)
MAX_LOCATIONS = 16  #: distinct SSDP answers kept from one search
ONLY_PERMANENT_LEASES = 725  #: UPnP error: the gateway accepts lease duration 0 only
CONFLICT_IN_MAPPING_ENTRY = 718  #: UPnP error: that external port is mapped to another host


def find_wan_service(device: UpnpDevice) -> UpnpService | None:
    """The preferred WAN connection service with AddPortMapping anywhere in the device tree."""
    services = [s for d in device.all_devices for s in d.services.values()]
    for service_type in SERVICE_TYPES:
        for service in services:
            if service.service_type == service_type and service.has_action("AddPortMapping"):
                return service
    return None


class UpnpDriver:
    """Maps ports on an Internet Gateway Device found by SSDP; see the module docstring."""

    method = "upnp"

    def __init__(
        self,
        config: PortMapConfig,
        gateway: str | None,
        local_ip: str,
        report: Callable[[PortMapEvent], None],
    ) -> None:
        self.config = config
        self.gateway = gateway
        self.local_ip = local_ip
        self.report = report
        self.service: UpnpService | None = None
        self.mapped: dict[tuple[MapProtocol, int], int] = {}  #: (protocol, internal) -> external port
        self._task: asyncio.Task[None] | None = None
        self._requester = BoundedRequester(config.upnp_http_timeout, config.upnp_max_description)

    @property
    def method_name(self) -> str:
        if self.service is None:
            return self.method
        return f"{self.method}/{self.service.service_type.rsplit(':', 2)[-2]}:{self.service.service_type[-1]}"

    async def start(self, ports: list[tuple[MapProtocol, int]]) -> None:
        self._task = asyncio.create_task(self._run(ports), name="upnp-portmap")

    async def aclose(self) -> None:
        """Stop renewing and delete every mapping we added (bounded by ``close_timeout``)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.service is None or not self.mapped:
            return
        try:
            await asyncio.wait_for(self._delete_all(), self.config.close_timeout)
        except TimeoutError:
            self.report(PortMapFailed(self.method_name, "the gateway did not confirm the deletes in time"))

    # -- the work -------------------------------------------------------------------------------

    async def _run(self, ports: list[tuple[MapProtocol, int]]) -> None:
        try:
            await self._work(ports)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # whatever went wrong, it is reported; never fatal
            if self.mapped:
                self.report(PortMapFailed(self.method_name, f"UPnP renewal stopped: {exc!r}"))
            else:
                self.report(MethodUnavailable(self.method, f"UPnP failed: {exc!r}"))

    async def _work(self, ports: list[tuple[MapProtocol, int]]) -> None:
        self.service = await self._discover()
        if self.service is None:
            return
        await self._external_address()
        lease = self.config.upnp_lease
        while True:
            for protocol, internal_port in ports:
                lease = await self._add(protocol, internal_port, lease)
            if lease <= 0:
                return  # permanent mappings: nothing to renew
            await asyncio.sleep(lease / 2)

    async def _search(self) -> list[str]:
        """SSDP M-SEARCH for an IGD (sent twice); stops early once the default gateway answers."""
        locations: list[str] = []
        gateway_answered = asyncio.Event()

        def on_response(headers: Mapping[str, Any]) -> None:
            location = headers.get("location")
            if isinstance(location, str) and location not in locations and len(locations) < MAX_LOCATIONS:
                locations.append(location)
                if urlsplit(location).hostname == self.gateway:
                    gateway_answered.set()

        wait = self.config.upnp_search_timeout
        listener = SsdpSearchListener(
            callback=on_response,
            source=(self.local_ip, 0),
            timeout=max(1, round(wait)),
            search_target=IGD_SEARCH_TARGET,
        )
        await listener.async_start()
        try:
            for share in (0.3, 0.7):  # a second M-SEARCH in case the first datagram was lost
                listener.async_search()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(gateway_answered.wait(), wait * share)
                    break
        finally:
            listener.async_stop()
        return locations

    async def _discover(self) -> UpnpService | None:
        locations = await self._search()
        if not locations:
            self.report(MethodUnavailable(self.method, "no UPnP Internet gateway answered the SSDP search"))
            return None
        locations.sort(key=lambda url: urlsplit(url).hostname != self.gateway)
        factory = UpnpFactory(self._requester, non_strict=True)
        last_error = "no WANIPConnection/WANPPPConnection service"
        for location in locations:
            host = urlsplit(location).hostname or ""
            if not _is_lan_address(host):
                last_error = f"ignored a gateway description outside the LAN ({host})"
                continue
            try:
                device = await factory.async_create_device(location)
            except (UpnpError, OSError, TimeoutError) as exc:
                last_error = f"reading {location}: {exc}"
                continue
            service = find_wan_service(device)
            if service is not None:
                return service
        self.report(MethodUnavailable(self.method, last_error))
        return None

    async def _external_address(self) -> None:
        assert self.service is not None
        try:
            result = await self.service.action("GetExternalIPAddress").async_call()
        except (UpnpError, OSError, TimeoutError, KeyError) as exc:
            self.report(PortMapFailed(self.method_name, f"GetExternalIPAddress failed: {exc}"))
            return
        address = result.get("NewExternalIPAddress")
        if isinstance(address, str) and address:
            self.report(ExternalAddressFound(self.method_name, address))

    async def _add(self, protocol: MapProtocol, internal_port: int, lease: int) -> int:
        """AddPortMapping, on the same external port or (if taken) the next few; returns the lease to use.

        A renewal asks for the external port it already holds.  UPnP error 718 (the external
        port is mapped to another host) moves on to the next candidate port, 725 (permanent
        leases only) retries with lease 0.
        """
        assert self.service is not None
        held = self.mapped.get((protocol, internal_port))
        candidates = [held] if held else external_candidates(internal_port, self.config.upnp_port_attempts)
        last: Exception | None = None
        for external_port in candidates:
            try:
                await self._call_add(protocol.value.upper(), external_port, internal_port, lease)
            except UpnpActionResponseError as exc:
                if exc.error_code == ONLY_PERMANENT_LEASES and lease != 0:
                    return await self._add(protocol, internal_port, 0)
                last = exc
                if exc.error_code == CONFLICT_IN_MAPPING_ENTRY:
                    continue
                break
            except (UpnpError, OSError, TimeoutError) as exc:
                last = exc
                break
            self.mapped[(protocol, internal_port)] = external_port
            self.report(PortMapped(self.method_name, protocol.value, internal_port, external_port, lease))
            return lease
        reason = f"AddPortMapping: {last!r}" if last else "AddPortMapping: no port left to try"
        self.report(PortMapFailed(self.method_name, reason, protocol.value, internal_port))
        return lease

    async def _call_add(self, protocol: str, external_port: int, internal_port: int, lease: int) -> None:
        assert self.service is not None
        await self.service.action("AddPortMapping").async_call(
            NewRemoteHost="",
            NewExternalPort=external_port,
            NewProtocol=protocol,
            NewInternalPort=internal_port,
            NewInternalClient=self.local_ip,
            NewEnabled=True,
            NewPortMappingDescription=self.config.description,
            NewLeaseDuration=lease,
        )

    async def _delete_all(self) -> None:
        assert self.service is not None
        for (protocol, internal_port), external_port in list(self.mapped.items()):
            try:
                await self.service.action("DeletePortMapping").async_call(
                    NewRemoteHost="", NewExternalPort=external_port, NewProtocol=protocol.value.upper()
                )
            except (UpnpError, OSError) as exc:
                self.report(
                    PortMapFailed(
                        self.method_name, f"DeletePortMapping: {exc}", protocol.value, internal_port
                    )
                )
                continue
            del self.mapped[(protocol, internal_port)]
            self.report(PortUnmapped(self.method_name, protocol.value, internal_port))


def external_candidates(internal_port: int, attempts: int) -> list[int]:
    """External ports to ask for: the internal port first, then the next ones (wrapping above 1023)."""
    span = 65536 - 1024
    return [1024 + (internal_port - 1024 + k) % span for k in range(attempts)]


def _is_lan_address(host: str) -> bool:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_private or ip.is_link_local
