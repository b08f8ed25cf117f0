"""Test-wide fixtures: the loopback-only network guard.

These machines have no internet, and traffic to any address outside the machine
is flagged.  Every test runs with a guard that fails any connect/sendto whose
destination is not loopback (127.0.0.0/8 or ::1), in Python code we run.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import settings

# Deadlines are timing assertions: on a loaded 2-core CI machine they fail healthy code.
# Speed belongs in benchmarks/, so property tests run without one.
settings.register_profile("p2pshare", deadline=None)
settings.load_profile("p2pshare")


def _is_loopback(address: Any) -> bool:
    if not isinstance(address, tuple) or not address:
        return True  # AF_UNIX paths and the like never leave the machine
    host = address[0]
    if isinstance(host, bytes):
        host = host.decode()
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name: we never resolve names in tests


class NonLoopbackTraffic(AssertionError):
    """A test tried to reach an address outside the machine."""


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail any connect/sendto to a non-loopback address during the test."""

    def check(address: Any) -> None:
        if not _is_loopback(address):
            raise NonLoopbackTraffic(f"test tried to reach {address!r}; tests talk to loopback only")

    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_sendto = socket.socket.sendto

    def connect(self: socket.socket, address: Any) -> None:
        check(address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(address)
        return real_connect_ex(self, address)

    def sendto(self: socket.socket, data: Any, *args: Any) -> int:
        check(args[-1])
        return real_sendto(self, data, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket.socket, "sendto", sendto)
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in (None, "localhost") and not _is_loopback((host,)):
            raise NonLoopbackTraffic(f"test tried to resolve {host!r}; tests talk to loopback only")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield


@pytest.fixture(autouse=True)
def no_user_config(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """A developer's own ~/.config/p2pshare/config.toml never changes what a test sees."""
    monkeypatch.setenv("P2PSHARE_CONFIG", str(tmp_path_factory.getbasetemp() / "no-such-config.toml"))
