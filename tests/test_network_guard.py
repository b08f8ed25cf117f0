"""The autouse guard in conftest.py stops traffic to anything but loopback, and lets loopback through."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import NonLoopbackTraffic

TEST_NET = "192.0.2.1"  # RFC 5737 TEST-NET-1: never routed; the guard raises before any packet leaves


def test_tcp_connect_outside_is_refused() -> None:
    """connect() to a non-loopback address raises NonLoopbackTraffic."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setblocking(False)
        with pytest.raises(NonLoopbackTraffic):
            s.connect((TEST_NET, 80))


def test_tcp_connect_ex_outside_is_refused() -> None:
    """connect_ex() to a non-loopback address raises NonLoopbackTraffic instead of returning a code."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setblocking(False)
        with pytest.raises(NonLoopbackTraffic):
            s.connect_ex((TEST_NET, 6881))


def test_udp_sendto_outside_is_refused() -> None:
    """sendto() a DHT-style datagram to a non-loopback address raises NonLoopbackTraffic."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        with pytest.raises(NonLoopbackTraffic):
            s.sendto(b"d1:y1:qe", (TEST_NET, 6881))
        with pytest.raises(NonLoopbackTraffic):
            s.sendto(b"x", 0, ("8.8.8.8", 53))


def test_udp_connect_outside_is_refused() -> None:
    """A UDP connect() (which sends nothing yet) to the outside is refused as well."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s, pytest.raises(NonLoopbackTraffic):
        s.connect((TEST_NET, 6881))


def test_name_resolution_is_refused() -> None:
    """Resolving any host name raises NonLoopbackTraffic (tests never look names up)."""
    with pytest.raises(NonLoopbackTraffic):
        socket.getaddrinfo("dht-router.invalid", 6881)  # RFC 6761: never resolves, even if the guard broke


def test_tcp_loopback_allowed() -> None:
    """A TCP connection to 127.0.0.1 goes through and carries data."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=5) as client:
            conn, _ = server.accept()
            with conn:
                client.sendall(b"ping")
                assert conn.recv(4) == b"ping"


def test_udp_loopback_range_allowed() -> None:
    """Datagrams to 127.0.0.1 and elsewhere in 127.0.0.0/8 are delivered."""
    for host in ("127.0.0.1", "127.0.0.2"):
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx,
        ):
            rx.bind((host, 0))
            rx.settimeout(5)
            tx.sendto(b"hello", rx.getsockname())
            data, _ = rx.recvfrom(16)
            assert data == b"hello"


def test_ipv6_loopback_allowed() -> None:
    """::1 counts as loopback for connect and sendto."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6 support")
    try:
        rx = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        rx.bind(("::1", 0))
    except OSError:
        pytest.skip("::1 not configured on this machine")
    with rx, socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as tx:
        rx.settimeout(5)
        tx.sendto(b"six", rx.getsockname()[:2])
        assert rx.recvfrom(8)[0] == b"six"
        with pytest.raises(NonLoopbackTraffic):
            tx.sendto(b"x", ("2001:db8::1", 6881))


def test_localhost_resolution_allowed() -> None:
    """Resolving localhost or a loopback literal is fine."""
    assert socket.getaddrinfo("127.0.0.1", 80)
    assert socket.getaddrinfo("localhost", 80)
