"""BEP 55 ``ut_holepunch``: the message codec and the relay's rate limit (sans-I/O).

A message is the payload of one BEP 10 extended message::

    msg_type (1) | addr_type (1) | addr (4 or 16) | port (2) | err_code (4)

``rendezvous`` asks a relay to introduce us to the endpoint; ``connect`` tells
each side to send uTP SYNs to the other at once; ``error`` says why a rendezvous
cannot be done.  All integers are big-endian; ``err_code`` is 0 except in errors.
A message is exactly 12 (IPv4) or 24 (IPv6) bytes: anything else is malformed.
"""

from __future__ import annotations

import ipaddress
import struct
from collections import deque
from dataclasses import dataclass
from enum import IntEnum

from p2pshare.core.types import Addr
from p2pshare.errors import RemoteProtocolError, Violation

__all__ = [
    "UT_HOLEPUNCH",
    "UT_HOLEPUNCH_ID",
    "HolepunchError",
    "HolepunchMessage",
    "HolepunchType",
    "RelayBudget",
    "decode_holepunch",
    "encode_holepunch",
]

#: The BEP 10 extension name.
UT_HOLEPUNCH = "ut_holepunch"
#: The extended message id we ask peers to use for ut_holepunch sent to us.
UT_HOLEPUNCH_ID = 4

_HEAD = struct.Struct(">BB")
_TAIL = struct.Struct(">HI")
_V4_SIZE = _HEAD.size + 4 + _TAIL.size  # 12
_V6_SIZE = _HEAD.size + 16 + _TAIL.size  # 24


class HolepunchType(IntEnum):
    """``msg_type``: what the message asks."""

    RENDEZVOUS = 0
    CONNECT = 1
    ERROR = 2


class HolepunchError(IntEnum):
    """``err_code`` of an ``error`` message (0 in the others)."""

    NONE = 0
    NO_SUCH_PEER = 1  #: the target endpoint is invalid
    NOT_CONNECTED = 2  #: the relay is not connected to the target
    NO_SUPPORT = 3  #: the target does not support ut_holepunch
    NO_SELF = 4  #: the target endpoint is the relay itself


@dataclass(frozen=True, slots=True)
class HolepunchMessage:
    """One ut_holepunch message: a type, an endpoint, and (for errors) a code."""

    msg_type: HolepunchType
    host: str  #: an IPv4 or IPv6 literal
    port: int
    error: HolepunchError = HolepunchError.NONE

    @property
    def endpoint(self) -> Addr:
        return (self.host, self.port)


def encode_holepunch(msg: HolepunchMessage) -> bytes:
    """The payload of ``msg`` (raises ValueError for a host that is not an IP literal or a bad port)."""
    addr = ipaddress.ip_address(msg.host)
    if not 0 <= msg.port < 65536:
        raise ValueError(f"port out of range: {msg.port}")
    addr_type = 0 if addr.version == 4 else 1
    return _HEAD.pack(msg.msg_type, addr_type) + addr.packed + _TAIL.pack(msg.port, msg.error)


def decode_holepunch(payload: bytes | bytearray | memoryview) -> HolepunchMessage:
    """Parse one message; :class:`RemoteProtocolError` (MALFORMED) when it is not one.

    An error message with an unknown (or zero) ``err_code`` is malformed too: there
    is nothing safe to do with it.  Codes in other messages are ignored (they must
    be 0, and nothing depends on them).
    """
    data = bytes(payload)
    if len(data) < _HEAD.size:
        raise RemoteProtocolError(f"ut_holepunch message of {len(data)} bytes", kind=Violation.MALFORMED)
    msg_type, addr_type = _HEAD.unpack_from(data)
    if addr_type == 0:
        size, alen = _V4_SIZE, 4
    elif addr_type == 1:
        size, alen = _V6_SIZE, 16
    else:
        raise RemoteProtocolError(f"ut_holepunch addr_type {addr_type}", kind=Violation.MALFORMED)
    if len(data) != size:
        raise RemoteProtocolError(
            f"ut_holepunch message of {len(data)} bytes; addr_type {addr_type} needs {size}",
            kind=Violation.MALFORMED,
        )
    try:
        kind = HolepunchType(msg_type)
    except ValueError:
        raise RemoteProtocolError(f"ut_holepunch msg_type {msg_type}", kind=Violation.MALFORMED) from None
    raw = data[_HEAD.size : _HEAD.size + alen]
    host = str(ipaddress.IPv4Address(raw) if alen == 4 else ipaddress.IPv6Address(raw))
    port, code = _TAIL.unpack_from(data, _HEAD.size + alen)
    if kind is HolepunchType.ERROR:
        try:
            error = HolepunchError(code)
        except ValueError:
            raise RemoteProtocolError(f"ut_holepunch err_code {code}", kind=Violation.MALFORMED) from None
        if error is HolepunchError.NONE:
            raise RemoteProtocolError("ut_holepunch error message with err_code 0", kind=Violation.MALFORMED)
    else:
        error = HolepunchError.NONE
    return HolepunchMessage(kind, host, port, error)


class RelayBudget:
    """A sliding-window count: at most ``limit`` relayed rendezvous per ``window`` seconds.

    The relay keeps one per initiating peer (so one peer cannot use us as a free
    amplifier) and one for the whole torrent.
    """

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._times: deque[float] = deque()

    def take(self, now: float) -> bool:
        """Count one use at ``now``; False (and nothing counted) when the budget is spent."""
        times = self._times
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) >= self.limit:
            return False
        times.append(now)
        return True

    @property
    def used(self) -> int:
        return len(self._times)
