"""A sans-I/O NAT-PMP (RFC 6886) / PCP (RFC 6887) client for one gateway.

Theory of operation
-------------------
The client keeps a small set of *mappings* (protocol + internal port) and, per mapping,
at most one outstanding request.  Each request is retransmitted on RFC 6886's schedule:
sent at once, then again after ``initial_timeout``, twice that, and so on, ``max_tries``
times in all.  All state transitions happen in the ``_on_*`` methods below.

* Dialect: with ``try_pcp`` the client speaks PCP (version 2) first.  An "unsupported
  version" answer (from a NAT-PMP-only gateway, or a PCP gateway that wants version 0)
  switches it to NAT-PMP and every outstanding request is sent again at once.  NAT-PMP
  additionally asks for the external address (opcode 0); PCP learns it from each MAP answer.
* Gateway silence: when a request has used all its tries and the gateway never answered
  anything, the gateway does not speak either protocol: :class:`GatewayUnsupported`, and the
  client stops.  ``gateway_unreachable()`` (an ICMP port unreachable seen by the adapter)
  ends it the same way, at once.  Silence after earlier answers fails only that mapping.
* Leases: a granted mapping is renewed (the same request again) when ``renew_fraction`` of
  its lifetime has run.
* Announcements: a gateway that restarts (or changes its address) multicasts an unrequested
  NAT-PMP address response or a PCP ANNOUNCE; the adapter feeds those from the gateway to
  ``receive_data`` too, so the epoch check below notices the restart at once.
* Epoch: every answer carries the gateway's epoch (seconds since its mapping table was
  born).  If it went backwards, or advanced by clearly less than our own clock did (RFC
  6886 3.6: less than 7/8 of our elapsed time, minus 2 s), the gateway lost its mappings:
  :class:`GatewayRestarted`, and every mapping is requested again.
* Close: ``close(now)`` sends a delete (lifetime 0) for each mapping that may exist, and
  :class:`Closed` follows when all are answered or out of tries.

Verbs: ``add_mapping``, ``receive_data(data, now)``, ``datagrams_to_send()``,
``next_event()``, ``get_timer()``, ``handle_timer(now)``, ``gateway_unreachable(now)``,
``close(now)``.  The adapter sends every datagram to the gateway's port 5351 and feeds back
only datagrams whose source is that gateway.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum

from p2pshare.config import NatPmpConfig
from p2pshare.core.natpmp_wire import (
    NATPMP_RESULTS,
    NONCE_SIZE,
    PCP_RESULTS,
    AddressResponse,
    MapProtocol,
    MapResponse,
    PcpAnnounce,
    PcpMapResponse,
    UnsupportedVersion,
    decode_response,
    encode_natpmp_address_request,
    encode_natpmp_map_request,
    encode_pcp_map_request,
)
from p2pshare.errors import LocalProtocolError

__all__ = [
    "AddressFailed",
    "Closed",
    "Dialect",
    "ExternalAddress",
    "GatewayRestarted",
    "GatewayUnsupported",
    "MapProtocol",
    "MappingFailed",
    "MappingReady",
    "MappingRemoved",
    "NatPmpClient",
    "NatPmpEvent",
]


class Dialect(Enum):
    PCP = "pcp"
    NATPMP = "natpmp"


@dataclass(frozen=True, slots=True)
class ExternalAddress:
    """The gateway told us its external address."""

    address: str
    dialect: Dialect


@dataclass(frozen=True, slots=True)
class AddressFailed:
    """The gateway answered the external address request with an error."""

    reason: str


@dataclass(frozen=True, slots=True)
class MappingReady:
    """A mapping was granted (or renewed): ``external_port`` on the gateway reaches ``internal_port``."""

    protocol: MapProtocol
    internal_port: int
    external_port: int
    lifetime: int
    dialect: Dialect


@dataclass(frozen=True, slots=True)
class MappingFailed:
    """The gateway refused a mapping, or stopped answering for it."""

    protocol: MapProtocol
    internal_port: int
    reason: str


@dataclass(frozen=True, slots=True)
class MappingRemoved:
    """The gateway confirmed the deletion of a mapping."""

    protocol: MapProtocol
    internal_port: int


@dataclass(frozen=True, slots=True)
class GatewayUnsupported:
    """The gateway speaks neither PCP nor NAT-PMP (no answer, port unreachable, or refused version)."""

    reason: str


@dataclass(frozen=True, slots=True)
class GatewayRestarted:
    """The gateway's epoch shows it lost its mappings; they are being requested again."""

    epoch: int


@dataclass(frozen=True, slots=True)
class Closed:
    """Every delete was answered or gave up; the client is done."""


NatPmpEvent = (
    ExternalAddress
    | AddressFailed
    | MappingReady
    | MappingFailed
    | MappingRemoved
    | GatewayUnsupported
    | GatewayRestarted
    | Closed
)

_ADDRESS = "address"


@dataclass(slots=True)
class _Mapping:
    protocol: MapProtocol
    internal_port: int
    external_port: int = 0  #: granted external port (0 until granted)
    lifetime: int = 0
    renew_at: float | None = None
    granted: bool = False
    deleting: bool = False


@dataclass(slots=True)
class _Request:
    key: tuple[MapProtocol, int] | str  #: a mapping's key, or _ADDRESS
    tries: int = 0
    deadline: float = 0.0  #: when to send again (or give up)


class NatPmpClient:
    """NAT-PMP/PCP client for one gateway; see the module docstring."""

    def __init__(self, config: NatPmpConfig, *, client_ip: str, nonce: bytes) -> None:
        if len(nonce) != NONCE_SIZE:
            raise LocalProtocolError(f"a PCP nonce is {NONCE_SIZE} bytes")
        self.config = config
        self.client_ip = client_ip
        self.nonce = nonce
        self.dialect = Dialect.PCP if config.try_pcp else Dialect.NATPMP
        self.external_address: str | None = None
        self.answered = False  #: the gateway has answered at least once
        self.finished = False  #: unsupported, or closed
        self.closing = False
        self.unsolicited = 0  #: answers that matched nothing we asked
        self._mappings: dict[tuple[MapProtocol, int], _Mapping] = {}
        self._requests: dict[tuple[MapProtocol, int] | str, _Request] = {}
        self._outgoing: list[bytes] = []
        self._events: deque[NatPmpEvent] = deque()
        self._epoch: tuple[int, float] | None = None  #: (gateway epoch, our time) of the last answer

    # -- the caller's verbs -----------------------------------------------------------------

    def start(self, now: float) -> None:
        """Ask for the external address (NAT-PMP) or rely on the first MAP answer (PCP)."""
        if self.dialect is Dialect.NATPMP:
            self._ask(_ADDRESS, now)

    def add_mapping(self, protocol: MapProtocol, internal_port: int, now: float) -> None:
        """Ask the gateway to map ``internal_port`` (the same external port is suggested)."""
        if self.finished or self.closing:
            raise LocalProtocolError("add_mapping on a NAT-PMP client that is closing or finished")
        key = (protocol, internal_port)
        if key in self._mappings:
            return
        if len(self._mappings) >= self.config.max_mappings:
            raise LocalProtocolError(f"more than {self.config.max_mappings} NAT-PMP mappings")
        self._mappings[key] = _Mapping(protocol, internal_port)
        self._ask(key, now)

    def close(self, now: float) -> None:
        """Delete every mapping that may exist on the gateway; :class:`Closed` follows."""
        if self.finished or self.closing:
            return
        self.closing = True
        self._requests.pop(_ADDRESS, None)
        for key, mapping in self._mappings.items():
            mapping.deleting = True
            mapping.renew_at = None
            self._ask(key, now)  # replaces any map request still in flight
        self._maybe_closed()

    def gateway_unreachable(self, now: float) -> None:
        """The gateway's port 5351 is closed (ICMP port unreachable): it speaks neither protocol."""
        if not self.finished and not self.answered:
            self._fail_gateway("the gateway refused NAT-PMP/PCP (port unreachable)")

    def receive_data(self, data: bytes, now: float) -> None:
        """One datagram from the gateway; raises RemoteProtocolError (state untouched) if malformed."""
        message = decode_response(data, max_size=self.config.max_datagram)
        if self.finished:
            return
        if isinstance(message, UnsupportedVersion):
            self._on_unsupported_version(message, now)
            return
        self._check_epoch(message.epoch, now)
        self.answered = True
        if isinstance(message, AddressResponse):
            self._on_address(message)
        elif isinstance(message, PcpAnnounce):
            pass  # its epoch was all it had to say
        elif isinstance(message, MapResponse):
            self._on_map(message.protocol, message.internal_port, message.result, now, message)
        else:
            self._on_pcp_map(message, now)
        self._maybe_closed()

    def datagrams_to_send(self) -> list[bytes]:
        out, self._outgoing = self._outgoing, []
        return out

    def next_event(self) -> NatPmpEvent | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        times = [r.deadline for r in self._requests.values()]
        times += [m.renew_at for m in self._mappings.values() if m.renew_at is not None]
        return min(times) if times and not self.finished else None

    def handle_timer(self, now: float) -> None:
        if self.finished:
            return
        for key, request in list(self._requests.items()):
            if request.deadline <= now and self._requests.get(key) is request:
                if request.tries >= self.config.max_tries:
                    self._on_gave_up(key)
                    if self.finished:
                        return
                else:
                    self._send(request, now)
        for key, mapping in self._mappings.items():
            if mapping.renew_at is not None and mapping.renew_at <= now and key not in self._requests:
                mapping.renew_at = None
                self._ask(key, now)
        self._maybe_closed()

    @property
    def mappings(self) -> list[tuple[MapProtocol, int, int, int]]:
        """Granted mappings: (protocol, internal port, external port, lifetime)."""
        return [
            (m.protocol, m.internal_port, m.external_port, m.lifetime)
            for m in self._mappings.values()
            if m.granted
        ]

    # -- requests ---------------------------------------------------------------------------

    def _ask(self, key: tuple[MapProtocol, int] | str, now: float) -> None:
        request = _Request(key)
        self._requests[key] = request
        self._send(request, now)

    def _send(self, request: _Request, now: float) -> None:
        request.tries += 1
        request.deadline = now + self.config.initial_timeout * 2 ** (request.tries - 1)
        self._outgoing.append(self._encode(request.key))

    def _encode(self, key: tuple[MapProtocol, int] | str) -> bytes:
        if isinstance(key, str):
            return encode_natpmp_address_request()
        mapping = self._mappings[key]
        lifetime = 0 if mapping.deleting else self.config.lifetime
        if self.dialect is Dialect.PCP:
            return encode_pcp_map_request(
                client_ip=self.client_ip,
                nonce=self.nonce,
                protocol=mapping.protocol,
                internal_port=mapping.internal_port,
                external_port=mapping.external_port or mapping.internal_port,
                lifetime=lifetime,
            )
        external = 0 if mapping.deleting else (mapping.external_port or mapping.internal_port)
        return encode_natpmp_map_request(mapping.protocol, mapping.internal_port, external, lifetime)

    # -- transitions ------------------------------------------------------------------------

    def _on_unsupported_version(self, message: UnsupportedVersion, now: float) -> None:
        if self.dialect is Dialect.PCP and message.version == 0:
            self.dialect = Dialect.NATPMP
            self.answered = True
            pending = list(self._requests)
            self._requests.clear()
            if not self.closing:
                self._ask(_ADDRESS, now)
            for key in pending:
                if key != _ADDRESS:
                    self._ask(key, now)
            return
        if self.dialect is Dialect.NATPMP and message.version == 0:
            # the answer to another PCP request sent before we fell back: already handled
            self.unsolicited += 1
            return
        self._fail_gateway(f"the gateway speaks an unsupported NAT-PMP/PCP version ({message.version})")

    def _check_epoch(self, epoch: int, now: float) -> None:
        """Record the gateway's epoch; on a restart, request every mapping again."""
        previous = self._epoch
        self._epoch = (epoch, now)
        if previous is None:
            return
        old_epoch, old_now = previous
        elapsed = now - old_now
        if epoch >= old_epoch and epoch - old_epoch >= elapsed * 7 / 8 - 2:
            return
        self._events.append(GatewayRestarted(epoch))
        if self.closing:
            return
        for key, mapping in self._mappings.items():
            mapping.granted = False
            mapping.renew_at = None
            if key not in self._requests:
                self._ask(key, now)
        if self.dialect is Dialect.NATPMP and _ADDRESS not in self._requests:
            self._ask(_ADDRESS, now)

    def _on_address(self, message: AddressResponse) -> None:
        if self._requests.pop(_ADDRESS, None) is None:
            if message.result == 0 and self.dialect is Dialect.NATPMP:
                self._set_address(message.address)  # an announcement (224.0.0.1:5350)
            else:
                self.unsolicited += 1
            return
        if message.result != 0:
            reason = NATPMP_RESULTS.get(message.result, f"result {message.result}")
            self._events.append(AddressFailed(reason))
            return
        self._set_address(message.address)

    def _set_address(self, address: str) -> None:
        if address != self.external_address and address not in ("0.0.0.0", "::"):
            self.external_address = address
            self._events.append(ExternalAddress(address, self.dialect))

    def _on_pcp_map(self, message: PcpMapResponse, now: float) -> None:
        if message.nonce != self.nonce:
            self.unsolicited += 1
            return
        accepted = self._on_map(message.protocol, message.internal_port, message.result, now, message)
        if accepted and message.result == 0 and message.lifetime > 0:
            self._set_address(message.external_address)

    def _on_map(
        self,
        protocol: MapProtocol,
        internal_port: int,
        result: int,
        now: float,
        message: MapResponse | PcpMapResponse,
    ) -> bool:
        """Apply a map answer; False if it answered nothing we asked."""
        key = (protocol, internal_port)
        mapping = self._mappings.get(key)
        if mapping is None or self._requests.pop(key, None) is None:
            self.unsolicited += 1
            return False
        if mapping.deleting:
            del self._mappings[key]
            self._events.append(MappingRemoved(protocol, internal_port))
            return True
        if result != 0:
            table = PCP_RESULTS if isinstance(message, PcpMapResponse) else NATPMP_RESULTS
            self._events.append(MappingFailed(protocol, internal_port, table.get(result, f"result {result}")))
            mapping.granted = False
            mapping.renew_at = now + self.config.lifetime * self.config.renew_fraction
            return True
        mapping.external_port = message.external_port
        mapping.lifetime = message.lifetime
        mapping.granted = message.lifetime > 0
        lease = max(message.lifetime, self.config.min_lifetime)
        mapping.renew_at = now + lease * self.config.renew_fraction
        self._events.append(
            MappingReady(protocol, internal_port, message.external_port, message.lifetime, self.dialect)
        )
        return True

    def _on_gave_up(self, key: tuple[MapProtocol, int] | str) -> None:
        del self._requests[key]
        if not self.answered and not self.closing:
            self._fail_gateway(f"no NAT-PMP/PCP answer from the gateway after {self.config.max_tries} tries")
            return
        if isinstance(key, str):
            self._events.append(AddressFailed("the gateway stopped answering"))
            return
        mapping = self._mappings[key]
        if mapping.deleting:
            del self._mappings[key]
            return
        mapping.granted = False
        self._events.append(MappingFailed(key[0], key[1], "the gateway stopped answering"))
        mapping.renew_at = None

    def _fail_gateway(self, reason: str) -> None:
        self._requests.clear()
        for mapping in self._mappings.values():
            mapping.renew_at = None
            mapping.granted = False
        self.finished = True
        self._events.append(GatewayUnsupported(reason))
        if self.closing:
            self._events.append(Closed())

    def _maybe_closed(self) -> None:
        if self.closing and not self.finished and not self._requests:
            self.finished = True
            self._events.append(Closed())
