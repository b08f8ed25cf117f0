"""NAT-PMP (RFC 6886) and PCP (RFC 6887, MAP opcode) messages: encoders and one strict decoder.

Both protocols share UDP port 5351 and the first byte (the version: 0 is NAT-PMP, 2 is
PCP), so :func:`decode_response` reads the version and dispatches.  Only responses are
decoded (we are the client); a request, a truncated or oversized datagram, or a field out
of range is a :class:`~p2pshare.errors.RemoteProtocolError`.

Layouts (all integers big-endian):

* NAT-PMP external address request: ``vers=0 op=0`` (2 bytes); response ``vers op=128
  result(2) epoch(4) address(4)`` (12 bytes).
* NAT-PMP map request: ``vers op(1=UDP, 2=TCP) reserved(2) internal(2) external(2)
  lifetime(4)`` (12 bytes); response ``vers op=128+op result(2) epoch(4) internal(2)
  external(2) lifetime(4)`` (16 bytes).  Any error response may be cut to 8 bytes
  (``vers op result epoch``), as an "unsupported version" answer to PCP is.
* PCP MAP request: header ``vers=2 op=1 reserved(2) lifetime(4) client-ip(16)`` then
  ``nonce(12) protocol(1) reserved(3) internal(2) external(2) external-ip(16)`` (60 bytes);
  the response header is ``vers R|op reserved result lifetime(4) epoch(4) reserved(12)``
  followed by the same MAP payload; options may follow and are skipped.  An ANNOUNCE
  (opcode 0) is the header alone, multicast by a gateway that (re)started.
* A NAT-PMP gateway announces a restart or a new external address with an unrequested
  address response, multicast to 224.0.0.1:5350.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from enum import Enum

from p2pshare.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "NATPMP_PORT",
    "NATPMP_RESULTS",
    "NONCE_SIZE",
    "PCP_MAX_MESSAGE",
    "PCP_RESULTS",
    "AddressResponse",
    "MapProtocol",
    "MapResponse",
    "ANNOUNCE_PORT",
    "PcpAnnounce",
    "PcpMapResponse",
    "Response",
    "UnsupportedVersion",
    "decode_response",
    "encode_natpmp_address_request",
    "encode_natpmp_map_request",
    "encode_pcp_map_request",
]

NATPMP_PORT = 5351
NATPMP_VERSION = 0
PCP_VERSION = 2
PCP_MAX_MESSAGE = 1100  #: RFC 6887 section 7
NONCE_SIZE = 12
PCP_OP_ANNOUNCE = 0
PCP_OP_MAP = 1
ANNOUNCE_PORT = 5350  #: gateways multicast announcements to 224.0.0.1 on this port
UNSUPPORTED_VERSION = 1  #: the same result code in both protocols

NATPMP_RESULTS = {
    0: "success",
    1: "unsupported version",
    2: "not authorized/refused",
    3: "network failure",
    4: "out of resources",
    5: "unsupported opcode",
}
PCP_RESULTS = {
    0: "success",
    1: "unsupported version",
    2: "not authorized",
    3: "malformed request",
    4: "unsupported opcode",
    5: "unsupported option",
    6: "malformed option",
    7: "network failure",
    8: "no resources",
    9: "unsupported protocol",
    10: "user exceeded quota",
    11: "cannot provide external",
    12: "address mismatch",
    13: "excessive remote peers",
}


class MapProtocol(Enum):
    """The transport protocol of a mapping, with its NAT-PMP opcode and IANA protocol number."""

    UDP = "udp"
    TCP = "tcp"

    @property
    def natpmp_opcode(self) -> int:
        return 1 if self is MapProtocol.UDP else 2

    @property
    def iana(self) -> int:
        return 17 if self is MapProtocol.UDP else 6


_BY_OPCODE = {p.natpmp_opcode: p for p in MapProtocol}
_BY_IANA = {p.iana: p for p in MapProtocol}


@dataclass(frozen=True, slots=True)
class AddressResponse:
    """NAT-PMP's answer to "what is your external address?"."""

    result: int
    epoch: int
    address: str


@dataclass(frozen=True, slots=True)
class MapResponse:
    """NAT-PMP's answer to a map (or delete) request."""

    protocol: MapProtocol
    result: int
    epoch: int
    internal_port: int
    external_port: int
    lifetime: int


@dataclass(frozen=True, slots=True)
class PcpMapResponse:
    """PCP's answer to a MAP request."""

    result: int
    lifetime: int
    epoch: int
    nonce: bytes
    protocol: MapProtocol
    internal_port: int
    external_port: int
    external_address: str


@dataclass(frozen=True, slots=True)
class PcpAnnounce:
    """PCP ANNOUNCE: the gateway (re)started or changed; its epoch tells which."""

    result: int
    epoch: int


@dataclass(frozen=True, slots=True)
class UnsupportedVersion:
    """The gateway does not speak the version we used; ``version`` is the one it answered in."""

    version: int
    epoch: int


Response = AddressResponse | MapResponse | PcpMapResponse | PcpAnnounce | UnsupportedVersion


def _port(value: int, what: str) -> int:
    if not 0 <= value <= 0xFFFF:
        raise LocalProtocolError(f"{what} {value} is not a port number")
    return value


def _lifetime(value: int) -> int:
    if not 0 <= value <= 0xFFFFFFFF:
        raise LocalProtocolError(f"lifetime {value} does not fit 32 bits")
    return value


def encode_natpmp_address_request() -> bytes:
    """NAT-PMP opcode 0: ask for the gateway's external address."""
    return bytes([NATPMP_VERSION, 0])


def encode_natpmp_map_request(
    protocol: MapProtocol, internal_port: int, external_port: int, lifetime: int
) -> bytes:
    """NAT-PMP opcode 1/2: map (or, with lifetime 0 and external port 0, delete) a port."""
    return struct.pack(
        "!BBHHHI",
        NATPMP_VERSION,
        protocol.natpmp_opcode,
        0,
        _port(internal_port, "internal port"),
        _port(external_port, "external port"),
        _lifetime(lifetime),
    )


def _ip16(address: str) -> bytes:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv4Address):
        ip = ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + ip.packed)
    return ip.packed


def _from_ip16(raw: bytes) -> str:
    ip = ipaddress.IPv6Address(raw)
    return str(ip.ipv4_mapped) if ip.ipv4_mapped is not None else str(ip)


def encode_pcp_map_request(
    *,
    client_ip: str,
    nonce: bytes,
    protocol: MapProtocol,
    internal_port: int,
    external_port: int,
    lifetime: int,
    external_ip: str = "0.0.0.0",
) -> bytes:
    """PCP MAP request (RFC 6887 section 11.1); lifetime 0 deletes the mapping."""
    if len(nonce) != NONCE_SIZE:
        raise LocalProtocolError(f"a PCP nonce is {NONCE_SIZE} bytes, not {len(nonce)}")
    header = struct.pack("!BBHI", PCP_VERSION, PCP_OP_MAP, 0, _lifetime(lifetime)) + _ip16(client_ip)
    payload = (
        nonce
        + struct.pack(
            "!B3xHH",
            protocol.iana,
            _port(internal_port, "internal port"),
            _port(external_port, "external port"),
        )
        + _ip16(external_ip)
    )
    return header + payload


def decode_response(data: bytes, *, max_size: int = PCP_MAX_MESSAGE) -> Response:
    """Decode one datagram from the gateway; raises RemoteProtocolError if it is not a valid response."""
    if len(data) > max_size:
        raise RemoteProtocolError(
            f"NAT-PMP/PCP datagram of {len(data)} bytes exceeds the {max_size}-byte limit"
        )
    if len(data) < 2:
        raise RemoteProtocolError("NAT-PMP/PCP datagram shorter than its header")
    version = data[0]
    if version == NATPMP_VERSION:
        return _decode_natpmp(data)
    if version == PCP_VERSION:
        return _decode_pcp(data)
    if len(data) >= 8 and data[1] & 0x80 and struct.unpack_from("!H", data, 2)[0] == UNSUPPORTED_VERSION:
        return UnsupportedVersion(version=version, epoch=struct.unpack_from("!I", data, 4)[0])
    raise RemoteProtocolError(f"NAT-PMP/PCP datagram of unknown version {version}")


def _decode_natpmp(data: bytes) -> Response:
    op = data[1]
    if op < 128:
        raise RemoteProtocolError(f"NAT-PMP request (opcode {op}) where a response was expected")
    if len(data) < 8:
        raise RemoteProtocolError("NAT-PMP response shorter than 8 bytes")
    result, epoch = struct.unpack_from("!HI", data, 2)
    if result == UNSUPPORTED_VERSION:
        return UnsupportedVersion(version=NATPMP_VERSION, epoch=epoch)
    request_op = op - 128
    if request_op == 0:
        if result != 0 and len(data) == 8:
            return AddressResponse(result=result, epoch=epoch, address="0.0.0.0")
        if len(data) != 12:
            raise RemoteProtocolError(f"NAT-PMP address response of {len(data)} bytes, not 12")
        return AddressResponse(result=result, epoch=epoch, address=str(ipaddress.IPv4Address(data[8:12])))
    protocol = _BY_OPCODE.get(request_op)
    if protocol is None:
        raise RemoteProtocolError(f"NAT-PMP response to unknown opcode {request_op}")
    if result != 0 and len(data) == 8:
        return MapResponse(protocol, result, epoch, 0, 0, 0)
    if len(data) != 16:
        raise RemoteProtocolError(f"NAT-PMP map response of {len(data)} bytes, not 16")
    internal, external, lifetime = struct.unpack_from("!HHI", data, 8)
    return MapResponse(protocol, result, epoch, internal, external, lifetime)


def _decode_pcp(data: bytes) -> Response:
    if len(data) < 24:
        raise RemoteProtocolError("PCP response shorter than its 24-byte header")
    if len(data) % 4:
        raise RemoteProtocolError(f"PCP message of {len(data)} bytes is not a multiple of 4")
    r_op, result, lifetime, epoch = struct.unpack_from("!BxBII", data, 1)
    if not r_op & 0x80:
        raise RemoteProtocolError("PCP request where a response was expected")
    if result == UNSUPPORTED_VERSION:
        return UnsupportedVersion(version=PCP_VERSION, epoch=epoch)
    opcode = r_op & 0x7F
    if opcode == PCP_OP_ANNOUNCE:
        return PcpAnnounce(result=result, epoch=epoch)
    if opcode != PCP_OP_MAP:
        raise RemoteProtocolError(f"PCP response to opcode {opcode}, which we never send")
    if len(data) < 60:
        raise RemoteProtocolError(f"PCP MAP response of {len(data)} bytes, shorter than 60")
    nonce = data[24:36]
    proto_number, internal, external = struct.unpack_from("!B3xHH", data, 36)
    protocol = _BY_IANA.get(proto_number)
    if protocol is None:
        raise RemoteProtocolError(f"PCP MAP response for protocol {proto_number}, which we never map")
    return PcpMapResponse(
        result=result,
        lifetime=lifetime,
        epoch=epoch,
        nonce=nonce,
        protocol=protocol,
        internal_port=internal,
        external_port=external,
        external_address=_from_ip16(data[44:60]),
    )
