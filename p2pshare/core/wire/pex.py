"""BEP 11 peer exchange (``ut_pex``): the codec of one message, and the diff we send.

A ``ut_pex`` message is a bencoded dict sent as a BEP 10 extended message::

    added     compact IPv4 peers (4-byte address, 2-byte port), 6 bytes each
    added.f   one flag byte per entry of ``added``
    added6    compact IPv6 peers, 18 bytes each
    added6.f  one flag byte per entry of ``added6``
    dropped   compact IPv4 peers no longer connected
    dropped6  compact IPv6 peers no longer connected

Decoding is bounded (:class:`~p2pshare.config.CoopConfig` ``pex_max_*``): the payload, the number of added and
dropped entries.  A list whose length is not a multiple of its entry size is
malformed.  Every address is validated; entries that no client could dial (port
0, unspecified, multicast, broadcast) are skipped, not errors, because an honest
peer may relay what it was told.  A flags list shorter than its address list (some
clients send none) gives the missing entries no flags.

:class:`PexDiff` is the sans-I/O sender side for one peer: given the peers we are
connected to now, it says what to add and drop since the last message, at most one
message per interval and at most ``max_added`` added entries in each.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from enum import IntFlag

from p2pshare.config import CoopConfig
from p2pshare.core import bencode
from p2pshare.core.types import Addr, PeerAddress
from p2pshare.errors import BencodeError, RemoteProtocolError, Violation

__all__ = [
    "UT_PEX",
    "UT_PEX_ID",
    "PexDiff",
    "PexFlags",
    "PexMessage",
    "PexPeer",
    "decode_pex",
    "encode_pex",
    "valid_peer_address",
]

#: The BEP 11 extension name.
UT_PEX = "ut_pex"
#: The extended message id we ask peers to use for ut_pex sent to us.
UT_PEX_ID = 2

_PORT = struct.Struct(">H")


class PexFlags(IntFlag):
    """BEP 11 flags of an added peer."""

    NONE = 0
    PREFERS_ENCRYPTION = 0x01
    SEED = 0x02  #: seed or upload-only
    UTP = 0x04
    HOLEPUNCH = 0x08
    REACHABLE = 0x10  #: the sender connected out to it: it accepts connections


@dataclass(frozen=True, slots=True)
class PexPeer:
    """One added peer and its flags."""

    address: PeerAddress
    flags: PexFlags = PexFlags.NONE


@dataclass(frozen=True, slots=True)
class PexMessage:
    """A decoded (or to-be-encoded) ``ut_pex`` message."""

    added: tuple[PexPeer, ...] = ()
    dropped: tuple[PeerAddress, ...] = ()


def valid_peer_address(host: str, port: int) -> bool:
    """True when ``host:port`` is an address a peer could listen on (not 0, multicast, broadcast...)."""
    if not 0 < port < 65536:
        return False
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if ip.is_unspecified or ip.is_multicast or (ip.is_reserved and ip.version == 4):
        return False
    return not (ip.version == 4 and ip == ipaddress.IPv4Address("255.255.255.255"))


def _bad(message: str, kind: Violation = Violation.MALFORMED) -> RemoteProtocolError:
    return RemoteProtocolError(f"ut_pex: {message}", kind=kind)


def _compact(d: dict[bytes, object], key: bytes, size: int) -> list[Addr]:
    raw = d.get(key, b"")
    if not isinstance(raw, bytes):
        raise _bad(f"{key.decode()!r} must be a string")
    if len(raw) % size:
        raise _bad(f"{key.decode()!r} is {len(raw)} bytes, not a multiple of {size}")
    out: list[Addr] = []
    ip_len = size - 2
    for i in range(0, len(raw), size):
        packed = raw[i : i + ip_len]
        host = str(ipaddress.IPv4Address(packed) if ip_len == 4 else ipaddress.IPv6Address(packed))
        out.append((host, _PORT.unpack_from(raw, i + ip_len)[0]))
    return out


def _flags(d: dict[bytes, object], key: bytes) -> bytes:
    raw = d.get(key, b"")
    if not isinstance(raw, bytes):
        raise _bad(f"{key.decode()!r} must be a string")
    return raw


_DEFAULT = CoopConfig()


def decode_pex(payload: bytes, limits: CoopConfig = _DEFAULT) -> PexMessage:
    """Parse one ``ut_pex`` payload; :class:`RemoteProtocolError` when malformed or past a limit."""
    if len(payload) > limits.pex_max_payload:
        raise _bad(f"message of {len(payload)} bytes exceeds {limits.pex_max_payload}", Violation.TOO_LARGE)
    try:
        d = bencode.decode(payload)
    except BencodeError as exc:
        raise _bad(f"not valid bencode: {exc}") from None
    if not isinstance(d, dict):
        raise _bad("message must be a bencoded dict")
    added4 = _compact(d, b"added", 6)
    added6 = _compact(d, b"added6", 18)
    dropped = _compact(d, b"dropped", 6) + _compact(d, b"dropped6", 18)
    cap = limits.pex_max_received
    if len(added4) + len(added6) > cap:
        raise _bad(f"{len(added4) + len(added6)} added peers (limit {cap})", Violation.TOO_LARGE)
    if len(dropped) > limits.pex_max_received_dropped:
        raise _bad(
            f"{len(dropped)} dropped peers (limit {limits.pex_max_received_dropped})", Violation.TOO_LARGE
        )
    added: list[PexPeer] = []
    for entries, fkey in ((added4, b"added.f"), (added6, b"added6.f")):
        flags = _flags(d, fkey)
        for i, (host, port) in enumerate(entries):
            if valid_peer_address(host, port):
                f = PexFlags(flags[i] & 0x1F) if i < len(flags) else PexFlags.NONE
                added.append(PexPeer(PeerAddress(host, port), f))
    gone = tuple(PeerAddress(h, p) for h, p in dropped if valid_peer_address(h, p))
    return PexMessage(tuple(added), gone)


def _pack(address: PeerAddress) -> tuple[bool, bytes] | None:
    try:
        ip = ipaddress.ip_address(address[0])
    except ValueError:
        return None
    return ip.version == 6, ip.packed + _PORT.pack(address[1])


def encode_pex(msg: PexMessage) -> bytes:
    """The bencoded payload of ``msg`` (host names that are not IP literals are left out)."""
    a4: list[bytes] = []
    f4: list[int] = []
    a6: list[bytes] = []
    f6: list[int] = []
    for peer in msg.added:
        packed = _pack(peer.address)
        if packed is None:
            continue
        v6, raw = packed
        (a6 if v6 else a4).append(raw)
        (f6 if v6 else f4).append(int(peer.flags))
    d4: list[bytes] = []
    d6: list[bytes] = []
    for address in msg.dropped:
        packed = _pack(address)
        if packed is not None:
            (d6 if packed[0] else d4).append(packed[1])
    return bencode.encode(
        {
            b"added": b"".join(a4),
            b"added.f": bytes(f4),
            b"added6": b"".join(a6),
            b"added6.f": bytes(f6),
            b"dropped": b"".join(d4),
            b"dropped6": b"".join(d6),
        }
    )


class PexDiff:
    """What we told one peer, and what to tell it next (BEP 11 sender rules, sans-I/O).

    ``next_message(now, current)`` returns a message at most once per ``interval``
    (the first one ``first_delay`` after creation), with at most ``max_added`` added
    and ``max_dropped`` dropped entries; what does not fit waits for the next one.
    """

    def __init__(
        self, now: float, *, interval: float, first_delay: float, max_added: int, max_dropped: int
    ) -> None:
        self.interval = interval
        self.max_added = max_added
        self.max_dropped = max_dropped
        self._next = now + first_delay
        self._told: dict[PeerAddress, PexFlags] = {}

    def get_timer(self) -> float:
        """When a message may next be sent."""
        return self._next

    def next_message(self, now: float, current: dict[PeerAddress, PexFlags]) -> PexMessage | None:
        """The message due now (None: not due yet, or nothing changed)."""
        if now < self._next:
            return None
        added = [PexPeer(a, f) for a, f in current.items() if self._told.get(a) != f][: self.max_added]
        dropped = [a for a in self._told if a not in current][: self.max_dropped]
        if not added and not dropped:
            return None
        for peer in added:
            self._told[peer.address] = peer.flags
        for address in dropped:
            del self._told[address]
        self._next = now + self.interval
        return PexMessage(tuple(added), tuple(dropped))
