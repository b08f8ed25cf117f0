"""Choosing the UPnP IGD service to map through: WANIPConnection v2, then v1, then WANPPPConnection."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from p2pshare.io.portmap_upnp import SERVICE_TYPES, external_candidates, find_wan_service

IP1, IP2, PPP = (
    "urn:schemas-upnp-org:service:WANIPConnection:1",
    "urn:schemas-upnp-org:service:WANIPConnection:2",
    "urn:schemas-upnp-org:service:WANPPPConnection:1",
)


@dataclass
class FakeService:
    service_type: str
    actions: tuple[str, ...] = ("AddPortMapping", "DeletePortMapping", "GetExternalIPAddress")

    def has_action(self, name: str) -> bool:
        return name in self.actions


@dataclass
class FakeDevice:
    services: dict[str, FakeService]
    children: list[FakeDevice] = field(default_factory=list)

    @property
    def all_devices(self) -> list[FakeDevice]:
        out = [self]
        for child in self.children:
            out += child.all_devices
        return out


def tree(*service_types: str, actions: tuple[str, ...] | None = None) -> Any:
    """An IGD root -> WANDevice -> WANConnectionDevice holding the given services, as the spec nests them."""
    services = {t: FakeService(t) if actions is None else FakeService(t, actions) for t in service_types}
    return FakeDevice({}, [FakeDevice({}, [FakeDevice(services)])])


def test_preference_is_ip_v2_then_ip_v1_then_ppp() -> None:
    """Where several WAN services exist, the newest WANIPConnection is used, PPP last."""
    assert SERVICE_TYPES == (IP2, IP1, PPP)
    assert find_wan_service(tree(PPP, IP1, IP2)).service_type == IP2
    assert find_wan_service(tree(PPP, IP1)).service_type == IP1
    assert find_wan_service(tree(PPP)).service_type == PPP


def test_service_without_add_port_mapping_is_not_chosen() -> None:
    """A WAN service that lacks AddPortMapping (a read-only router) is no mapping service."""
    assert find_wan_service(tree(IP2, IP1, actions=("GetExternalIPAddress",))) is None
    assert find_wan_service(tree("urn:schemas-upnp-org:service:Layer3Forwarding:1")) is None


def test_external_port_candidates_start_at_ours_and_wrap_above_1023() -> None:
    """The internal port is asked for first, then the following ones, never a port below 1024."""
    assert external_candidates(6881, 4) == [6881, 6882, 6883, 6884]
    assert external_candidates(65535, 3) == [65535, 1024, 1025]
