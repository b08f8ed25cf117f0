"""The port-mapping service against a NAT-PMP gateway simulated on loopback, and its failure paths."""

from __future__ import annotations

import asyncio
import ipaddress
import struct
from typing import Any

import pytest

from p2pshare.config import NatPmpConfig, PortMapConfig
from p2pshare.io.portmap import (
    MethodUnavailable,
    PortMapEvent,
    PortMapped,
    PortMapper,
    PortMapStatus,
    PortUnmapped,
    default_gateway,
)

ROUTE_TABLE = """Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth0	0001A8C0	00000000	0001	0	0	0	00FFFFFF	0	0	0
eth0	00000000	0101A8C0	0003	0	0	0	00000000	0	0	0
"""


def test_default_gateway_is_read_little_endian_from_the_route_table() -> None:
    """The default route's gateway 0101A8C0 is 192.168.1.1."""
    assert default_gateway(ROUTE_TABLE) == "192.168.1.1"


def test_no_default_route_means_no_gateway() -> None:
    """Without a 00000000 destination with the gateway flag, there is no gateway."""
    assert default_gateway(ROUTE_TABLE.splitlines()[0] + "\n" + ROUTE_TABLE.splitlines()[1]) is None
    assert default_gateway("header\neth0 00000000 00000000 0001 0 0 0 0 0 0 0\n") is None
    assert default_gateway("header\ngarbage\n") is None


class FakeNatPmpGateway(asyncio.DatagramProtocol):
    """A NAT-PMP-only gateway: refuses PCP's version, answers address and map requests, records them."""

    def __init__(self, external: str = "11.11.0.1") -> None:
        self.external = external
        self.requests: list[bytes] = []
        self.transport: Any = None
        self.epoch = 1000

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.requests.append(data)
        if data[0] != 0:
            reply = struct.pack("!BBHI", 0, 128 + data[1], 1, self.epoch)
        elif data[1] == 0:
            reply = struct.pack("!BBHI", 0, 128, 0, self.epoch) + ipaddress.IPv4Address(self.external).packed
        else:
            _, op, _, internal, external, lifetime = struct.unpack("!BBHHHI", data)
            reply = struct.pack("!BBHIHHI", 0, 128 + op, 0, self.epoch, internal, external + 1000, lifetime)
        self.transport.sendto(reply, addr)


async def test_maps_tcp_and_udp_through_natpmp_and_deletes_them_on_close() -> None:
    """Against a NAT-PMP-only gateway, both ports are mapped, the address learned, and deleted on close."""
    loop = asyncio.get_running_loop()
    gateway = FakeNatPmpGateway()
    transport, _ = await loop.create_datagram_endpoint(lambda: gateway, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    events: list[PortMapEvent] = []
    mapper = PortMapper(
        PortMapConfig(protocols=("natpmp",)),
        NatPmpConfig(lifetime=600),
        tcp_port=6881,
        udp_port=6882,
        gateway="127.0.0.1",
        natpmp_port=port,
        on_event=events.append,
    )
    try:
        await mapper.start()
        status = await mapper.wait_settled(5.0)
        assert status.active_method == "natpmp" and status.mapped
        assert {(m.protocol, m.internal_port, m.external_port) for m in status.mappings} == {
            ("tcp", 6881, 7881),
            ("udp", 6882, 7882),
        }
        assert status.external_address == "11.11.0.1" and status.external_source == "natpmp/natpmp"
        assert status.local_ip == "127.0.0.1"
        await mapper.close()
        deletes = [r for r in gateway.requests if r[0] == 0 and r[1] in (1, 2) and r[-4:] == bytes(4)]
        assert sorted(struct.unpack("!H", r[4:6])[0] for r in deletes) == [6881, 6882]
        assert {type(e) for e in events} >= {PortMapped, PortUnmapped}
        assert mapper.status().closed and not mapper.status().mapped
    finally:
        transport.close()


async def test_gateway_without_natpmp_is_reported_unavailable_quickly() -> None:
    """A closed port 5351 (ICMP port unreachable) makes NAT-PMP unavailable within a second, no raise."""
    with_socket = await asyncio.get_running_loop().create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    port = with_socket[0].get_extra_info("sockname")[1]
    with_socket[0].close()  # now nothing listens there
    config = PortMapConfig(protocols=("natpmp",))
    mapper = PortMapper(config, tcp_port=1, gateway="127.0.0.1", natpmp_port=port)
    await mapper.start()
    status = await mapper.wait_settled(3.0)
    assert dict(status.methods)["natpmp"] == "unavailable"
    assert any("port unreachable" in e for e in status.errors)
    await mapper.close()


async def test_upnp_failure_during_discovery_is_an_event_not_an_exception() -> None:
    """If the SSDP search cannot be sent (here the test guard refuses multicast), UPnP is unavailable."""
    events: list[PortMapEvent] = []
    mapper = PortMapper(
        PortMapConfig(protocols=("upnp",), upnp_search_timeout=1.0),
        tcp_port=1,
        gateway="127.0.0.1",
        on_event=events.append,
    )
    await mapper.start()
    status = await mapper.wait_settled(5.0)
    assert dict(status.methods)["upnp"] == "unavailable"
    assert any(isinstance(e, MethodUnavailable) and e.method == "upnp" for e in events)
    await mapper.close()


async def test_no_default_gateway_is_reported_without_raising(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no default route, start() reports both methods unavailable and says why."""
    monkeypatch.setattr("p2pshare.io.portmap.default_gateway", lambda: None)
    mapper = PortMapper(tcp_port=6881, udp_port=6881)
    await mapper.start()
    status = await mapper.wait_settled(1.0)
    assert status.gateway is None and not status.mapped
    assert dict(status.methods) == {"natpmp": "unavailable", "upnp": "unavailable"}
    assert status.errors == ("no default gateway (no IPv4 default route)",)
    await mapper.close()


async def test_disabled_service_does_nothing() -> None:
    """With enabled=False no method starts and the status says off."""
    mapper = PortMapper(PortMapConfig(enabled=False), tcp_port=6881)
    await mapper.start()
    status = await mapper.wait_settled(0.1)
    assert dict(status.methods) == {"natpmp": "off", "upnp": "off"} and status.gateway is None
    await mapper.close()


@pytest.mark.parametrize(
    ("address", "expected"),
    [("11.11.0.1", False), ("100.64.3.4", True), ("192.168.0.2", True), (None, None), ("garbage", None)],
)
def test_status_tells_a_router_behind_another_nat(address: str | None, expected: bool | None) -> None:
    """A private or carrier-grade (100.64/10) external address means another NAT sits above the router."""
    status = PortMapStatus(None, None, (), None, address, None, (), (), False)
    assert status.behind_another_nat is expected


class RefusingGateway(FakeNatPmpGateway):
    """A NAT-PMP gateway that answers every map request with result 2 (not authorized)."""

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if data[0] == 0 and data[1] in (1, 2):
            self.requests.append(data)
            internal = struct.unpack("!H", data[4:6])[0]  # RFC 6886 3.3: errors echo the internal port
            refusal = struct.pack("!BBHIHHI", 0, 128 + data[1], 2, self.epoch, internal, 0, 0)
            self.transport.sendto(refusal, addr)
        else:
            super().datagram_received(data, addr)


async def test_gateway_refusing_every_port_settles_as_refused_without_raising() -> None:
    """A gateway that answers but refuses both ports leaves the method refused, settled, with the reason."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(RefusingGateway, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    mapper = PortMapper(
        PortMapConfig(protocols=("natpmp",)),
        tcp_port=6881,
        udp_port=6881,
        gateway="127.0.0.1",
        natpmp_port=port,
    )
    try:
        await mapper.start()
        status = await mapper.wait_settled(3.0)
        assert dict(status.methods)["natpmp"] == "refused"
        assert not status.mapped and status.external_address == "11.11.0.1"
        assert sum("not authorized/refused" in e for e in status.errors) == 2
        await mapper.close()
    finally:
        transport.close()
