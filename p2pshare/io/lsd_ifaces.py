"""The IPv4 interfaces LSD announces on: every one that is up, multicast-capable and not loopback.

A laptop's default route may lead to a VPN or a container bridge while its LAN is on
Wi-Fi: announcing only through the default interface would never reach the LAN.  So LSD
joins the group and sends its announce on each interface listed here (Linux: ``SIOCGIFFLAGS``
and ``SIOCGIFADDR``); where they cannot be listed, it falls back to the default one.
"""

from __future__ import annotations

import fcntl
import socket
import struct

__all__ = ["ipv4_multicast_interfaces", "multicast_sender"]

SIOCGIFFLAGS = 0x8913
SIOCGIFADDR = 0x8915
IFF_UP = 0x1
IFF_LOOPBACK = 0x8
IFF_MULTICAST = 0x1000
MAX_INTERFACES = 32  #: interfaces considered (a bound on sockets opened)


def _ioctl(sock: socket.socket, request: int, name: str) -> bytes:
    return fcntl.ioctl(sock.fileno(), request, struct.pack("256s", name.encode()[:15]))


def ipv4_multicast_interfaces() -> list[tuple[str, str]]:
    """(name, IPv4 address) of each interface that is up, multicast-capable and not loopback."""
    found: list[tuple[str, str]] = []
    try:
        names = [name for _, name in socket.if_nameindex()][:MAX_INTERFACES]
    except OSError:
        return found
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for name in names:
            try:
                flags = struct.unpack("H", _ioctl(sock, SIOCGIFFLAGS, name)[16:18])[0]
                if not flags & IFF_UP or flags & IFF_LOOPBACK or not flags & IFF_MULTICAST:
                    continue
                address = socket.inet_ntoa(_ioctl(sock, SIOCGIFADDR, name)[20:24])
            except OSError:
                continue  # no IPv4 address on it
            found.append((name, address))
    return found


def multicast_sender(address: str, ttl: int) -> socket.socket:
    """A non-blocking UDP socket whose multicast leaves through the interface holding ``address``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(address))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
