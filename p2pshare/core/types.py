"""Small validated types that make bad values hard to build."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["Addr", "InfoHash", "InfoHashV2", "PeerAddress", "parse_host_port"]

#: An address as sockets and datagram APIs report it: ``(host, port)``.  :class:`PeerAddress`
#: is its named, validated form (and is one), so everything typed ``Addr`` takes a PeerAddress.
Addr = tuple[str, int]

_HEX40 = re.compile(r"[0-9a-fA-F]{40}")
_B32 = re.compile(r"[A-Za-z2-7]{32}")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True, slots=True)
class InfoHash:
    """A 20-byte BitTorrent v1 info hash (SHA-1 of the bencoded info dict)."""

    value: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.value, bytes) or len(self.value) != 20:
            raise ValueError("an info hash is exactly 20 bytes")

    @classmethod
    def from_hex(cls, text: str) -> InfoHash:
        if not _HEX40.fullmatch(text):
            raise ValueError(f"not a 40-character hex info hash: {text!r}")
        return cls(binascii.unhexlify(text))

    @classmethod
    def from_base32(cls, text: str) -> InfoHash:
        if not _B32.fullmatch(text):
            raise ValueError(f"not a 32-character base32 info hash: {text!r}")
        return cls(base64.b32decode(text.upper()))

    @classmethod
    def parse(cls, text: str) -> InfoHash:
        """Hex (40) or base32 (32) text, as magnet links carry it."""
        text = text.strip()
        if len(text) == 40:
            return cls.from_hex(text)
        if len(text) == 32:
            return cls.from_base32(text)
        raise ValueError(f"an info hash is 40 hex or 32 base32 characters, got {len(text)}: {text!r}")

    @property
    def hex(self) -> str:
        return self.value.hex()

    def __str__(self) -> str:
        return self.hex

    def __repr__(self) -> str:
        return f"InfoHash({self.hex})"


@dataclass(frozen=True, slots=True)
class InfoHashV2:
    """A 32-byte BitTorrent v2 info hash (SHA-256 of the bencoded info dict, BEP 52).

    The DHT, trackers and the peer handshake carry it truncated to 20 bytes
    (:attr:`truncated`), which fits everywhere an :class:`InfoHash` goes.
    """

    value: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.value, bytes) or len(self.value) != 32:
            raise ValueError("a v2 info hash is exactly 32 bytes")

    @classmethod
    def from_hex(cls, text: str) -> InfoHashV2:
        text = text.strip()
        if not _HEX64.fullmatch(text):
            raise ValueError(f"not a 64-character hex v2 info hash: {text!r}")
        return cls(binascii.unhexlify(text))

    @property
    def hex(self) -> str:
        return self.value.hex()

    @property
    def truncated(self) -> InfoHash:
        """The first 20 bytes: the swarm's id in the DHT, tracker requests and handshakes."""
        return InfoHash(self.value[:20])

    def __str__(self) -> str:
        return self.hex

    def __repr__(self) -> str:
        return f"InfoHashV2({self.hex})"


class _HostPort(NamedTuple):
    host: str
    port: int


class PeerAddress(_HostPort):
    """A peer's IP address (or host name) and TCP/UDP port.

    It *is* a ``tuple[str, int]``: it goes straight to sockets, compares and hashes
    like the tuple a transport reports, and costs nothing to key a dict with.  The
    constructor checks the port (use it for input from outside); addresses a
    transport reports are trusted through :meth:`unchecked`.
    """

    __slots__ = ()

    def __new__(cls, host: str, port: int) -> PeerAddress:
        if not 0 < port < 65536:
            raise ValueError(f"port out of range: {port}")
        return tuple.__new__(cls, (host, port))

    @classmethod
    def unchecked(cls, host: str, port: int) -> PeerAddress:
        """An address reported by our own transport (port 0 means "not connected yet")."""
        return tuple.__new__(cls, (host, port))

    def __str__(self) -> str:
        host, port = self
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def __repr__(self) -> str:
        return f"PeerAddress({self[0]!r}, {self[1]})"

    def as_tuple(self) -> tuple[str, int]:
        return (self[0], self[1])


def parse_host_port(text: str) -> PeerAddress:
    """``HOST:PORT`` or ``[V6]:PORT`` to a :class:`PeerAddress`; ValueError if malformed."""
    text = text.strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
    else:
        host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return PeerAddress(host, int(port))


def random_bytes(n: int) -> bytes:
    """Random bytes (kept here so core code has one place that draws entropy)."""
    return secrets.token_bytes(n)
