"""LSD's IPv4 announces go out on every LAN interface, not only the default route's."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from p2pshare.config import LsdConfig
from p2pshare.io import lsd as lsd_mod
from p2pshare.io.lsd import LsdService
from p2pshare.io.lsd_ifaces import ipv4_multicast_interfaces

GROUP = LsdConfig().group_v4


class FakeSender:
    def __init__(self, address: str, fail: bool = False) -> None:
        self.address, self.fail = address, fail
        self.sent: list[tuple[bytes, Any]] = []

    def sendto(self, data: bytes, addr: Any) -> int:
        if self.fail:
            raise BlockingIOError
        self.sent.append((data, addr))
        return len(data)

    def close(self) -> None:
        return None


def test_loopback_is_never_an_lsd_interface() -> None:
    """Every interface listed has an IPv4 address and none is loopback (lo is always there)."""
    listed = ipv4_multicast_interfaces()
    assert all(name != "lo" and not address.startswith("127.") for name, address in listed)
    assert all(socket.inet_aton(address) for _, address in listed)


def test_an_announce_goes_through_each_interface_and_one_failure_spares_the_others() -> None:
    """With two LAN senders, each sends the datagram; a full buffer on one loses only that copy."""
    service = LsdService(listen_port=6881, on_peer=lambda _: None)
    wifi, wired = FakeSender("192.168.1.5", fail=True), FakeSender("10.0.0.5")
    service._senders = {"192.168.1.5": wifi, "10.0.0.5": wired}  # type: ignore[dict-item]
    assert service._send_v4(b"BT-SEARCH", GROUP) is True
    assert wired.sent == [(b"BT-SEARCH", GROUP)] and wifi.sent == []
    service._senders = {}
    assert service._send_v4(b"BT-SEARCH", GROUP) is False  # none: the default interface's socket sends


def test_every_interface_is_joined_and_given_a_sender(monkeypatch: pytest.MonkeyPatch) -> None:
    """_join_every_interface joins the group on each listed interface and opens one sender each."""
    joins: list[bytes] = []

    class Sock:
        def setsockopt(self, level: int, opt: int, value: bytes) -> None:
            joins.append(value)

    monkeypatch.setattr(
        lsd_mod, "ipv4_multicast_interfaces", lambda: [("wlan0", "192.168.1.5"), ("eth0", "10.0.0.5")]
    )
    monkeypatch.setattr(lsd_mod, "multicast_sender", lambda address, ttl: FakeSender(address))
    service = LsdService(listen_port=6881, on_peer=lambda _: None)
    assert service._join_every_interface(Sock(), GROUP) is True  # type: ignore[arg-type]
    assert joins == [socket.inet_aton(GROUP[0]) + socket.inet_aton(a) for a in ("192.168.1.5", "10.0.0.5")]
    assert service.interfaces == ["wlan0", "eth0"] and set(service._senders) == {"192.168.1.5", "10.0.0.5"}
