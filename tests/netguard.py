"""The socket guard shared by the test process and the processes started inside the NAT lab.

Every connect/connect_ex/sendto and every name lookup is checked against a list of
allowed networks before it happens.  The pytest process allows loopback only
(tests/conftest.py); a process started inside a lab namespace (tests/lab) may also
reach the lab's own networks, named in the environment variable ``P2PSHARE_LAB_NETS``,
and only while it really runs in one of the lab's network namespaces.
Stdlib only: this module is imported by a ``sitecustomize`` at interpreter start.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    "LAB_MARKER",
    "LAB_NETS_ENV",
    "NonLoopbackTraffic",
    "allowed_from_env",
    "in_lab_netns",
    "install",
    "is_allowed",
    "make_check",
]

LAB_NETS_ENV = "P2PSHARE_LAB_NETS"
LAB_MARKER = "/run/netns/.p2pshare-lab"  #: left by tests/lab/netlab.py on its private /run/netns

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class NonLoopbackTraffic(AssertionError):
    """A test tried to reach an address outside the machine (or outside its lab)."""


def is_allowed(address: Any, networks: Iterable[Network] = ()) -> bool:
    """Whether a socket address is loopback, a local path, or inside one of ``networks``."""
    if not isinstance(address, tuple) or not address:
        return True  # AF_UNIX paths and the like never leave the machine
    host = address[0]
    if isinstance(host, bytes):
        host = host.decode()
    if host in ("localhost", ""):
        return True
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False  # a host name: we never resolve names in tests
    if ip.is_loopback:
        return True
    return any(ip.version == net.version and ip in net for net in networks)


def in_lab_netns() -> bool:
    """Whether this process runs in one of the lab's named network namespaces.

    The lab mounts its own tmpfs on /run/netns (in a private mount namespace) and leaves
    :data:`LAB_MARKER` there; our network namespace must be one of the namespaces named
    beside it, and never the one of PID 1 where that can be checked.
    """
    try:
        mine = os.stat("/proc/self/ns/net").st_ino
        if not os.path.exists(LAB_MARKER):
            return False
        names = [n for n in os.listdir("/run/netns") if not n.startswith(".")]
        if not any(os.stat(os.path.join("/run/netns", n)).st_ino == mine for n in names):
            return False
    except OSError:
        return False
    try:
        return os.stat("/proc/1/ns/net").st_ino != mine
    except OSError:
        return True  # PID 1 belongs to another user namespace: the named-namespace check stands


def allowed_from_env() -> list[Network]:
    """The lab networks named in ``P2PSHARE_LAB_NETS``, or none outside a private network namespace."""
    raw = os.environ.get(LAB_NETS_ENV, "")
    if not raw or not in_lab_netns():
        return []
    return [ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip()]


def make_check(networks: Iterable[Network] = ()) -> Callable[[Any], None]:
    """A function that raises :class:`NonLoopbackTraffic` for an address outside ``networks``."""
    nets = list(networks)

    def check(address: Any) -> None:
        if not is_allowed(address, nets):
            where = "loopback" if not nets else "loopback and " + ", ".join(map(str, nets))
            raise NonLoopbackTraffic(f"tried to reach {address!r}; only {where} may be reached here")

    return check


def install(setattr_: Callable[[Any, str, Any], None], networks: Iterable[Network] = ()) -> None:
    """Patch socket.connect/connect_ex/sendto and getaddrinfo through ``setattr_`` to enforce the check."""
    check = make_check(networks)
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_sendto = socket.socket.sendto
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        check(address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(address)
        return real_connect_ex(self, address)

    def sendto(self: socket.socket, data: Any, *args: Any) -> int:
        check(args[-1])
        return real_sendto(self, data, *args)  # type: ignore[arg-type]

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in (None, "localhost"):
            check((host,))
        return real_getaddrinfo(host, *args, **kwargs)

    setattr_(socket.socket, "connect", connect)
    setattr_(socket.socket, "connect_ex", connect_ex)
    setattr_(socket.socket, "sendto", sendto)
    setattr_(socket, "getaddrinfo", getaddrinfo)
