"""What the port-mapping service reports: events as they happen, and a status snapshot."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

__all__ = [
    "ExternalAddressFound",
    "MethodUnavailable",
    "PortMapEvent",
    "PortMapFailed",
    "PortMapStatus",
    "PortMapped",
    "PortUnmapped",
]


@dataclass(frozen=True, slots=True)
class PortMapped:
    """The gateway forwards ``external_port`` to our ``internal_port`` (``protocol`` is "tcp"/"udp")."""

    method: str  #: "upnp/WANIPConnection:1", "natpmp/pcp", "natpmp/natpmp", ...
    protocol: str
    internal_port: int
    external_port: int
    lifetime: int  #: seconds granted (0: permanent)


@dataclass(frozen=True, slots=True)
class PortUnmapped:
    """A mapping of ours was removed from the gateway."""

    method: str
    protocol: str
    port: int


@dataclass(frozen=True, slots=True)
class ExternalAddressFound:
    """The gateway told us our external address."""

    method: str
    address: str


@dataclass(frozen=True, slots=True)
class PortMapFailed:
    """One step failed (never fatal): a mapping refused, a renewal lost, a delete unconfirmed."""

    method: str
    reason: str
    protocol: str | None = None
    port: int | None = None


@dataclass(frozen=True, slots=True)
class MethodUnavailable:
    """A mapping protocol is not offered here (no gateway answered it)."""

    method: str  #: "upnp" or "natpmp"
    reason: str


PortMapEvent = PortMapped | PortUnmapped | ExternalAddressFound | PortMapFailed | MethodUnavailable


@dataclass(frozen=True, slots=True)
class PortMapStatus:
    """A snapshot of the service, for `share`'s live view and `doctor`."""

    gateway: str | None
    local_ip: str | None
    #: (method, state); state is one of: off (not tried), searching, mapped (the active method),
    #: standby (worked or was working, but another method mapped first), refused (the gateway
    #: answered but would not map every port), unavailable (no gateway speaks it here)
    methods: tuple[tuple[str, str], ...]
    active_method: str | None  #: the method whose mappings we keep
    external_address: str | None
    external_source: str | None  #: the method that told us the external address
    mappings: tuple[PortMapped, ...]
    errors: tuple[str, ...]  #: the latest failures, newest last
    closed: bool

    @property
    def mapped(self) -> bool:
        return bool(self.mappings)

    @property
    def behind_another_nat(self) -> bool | None:
        """True when the router's own external address is not a global one (carrier-grade or
        double NAT: a mapping on this router alone does not make us reachable); None if unknown."""
        if self.external_address is None:
            return None
        try:
            return not ipaddress.ip_address(self.external_address).is_global
        except ValueError:
            return None
