"""The connection policy: which transports a session uses, and which it dials first.

``--transport tcp|utp|both`` (:class:`Transport`) says what we listen on and dial.
With ``both``, each outgoing dial tries one transport and falls back to the other:

* uTP first to peers that said they speak it (the PEX ``utp`` flag, a BEP 10
  hint, an incoming uTP connection from that host), TCP first to the rest, unless
  :attr:`~p2pshare.config.TransportConfig.prefer_utp` puts uTP first everywhere;
* a transport that worked for an address is tried first next time; one that
  failed (refused, or the link closed before the BitTorrent handshake) goes last.

It does no I/O: the session dials, and tells it what happened.  (An address that
failed on every transport is the torrent's business: its hole-punch room.)
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum

from p2pshare.config import TransportConfig
from p2pshare.core.types import Addr

__all__ = ["Transport", "TransportPolicy", "TransportStats"]


class Transport(StrEnum):
    """``--transport``: what a session listens on and dials."""

    TCP = "tcp"
    UTP = "utp"
    BOTH = "both"

    @property
    def kinds(self) -> tuple[Transport, ...]:
        """The single transports this setting allows (TCP and/or UTP)."""
        if self is Transport.BOTH:
            return (Transport.TCP, Transport.UTP)
        return (self,)


@dataclass(slots=True)
class _Seen:
    utp_hint: bool = False  #: the peer said it speaks uTP
    worked: Transport | None = None  #: the last transport a dial succeeded on
    failed: Transport | None = None  #: the last transport that failed (refused, or closed at once)


@dataclass(slots=True)
class TransportStats:
    """Counts for status and tests."""

    dials: dict[str, int]
    fallbacks: int = 0  #: dials where the first transport failed and the second worked


class TransportPolicy:
    """Orders transports per address and remembers what worked (bounded to ``max_entries``)."""

    def __init__(self, config: TransportConfig, mode: Transport, *, max_entries: int = 4096) -> None:
        self.config = config
        self.mode = mode
        self._max = max_entries
        self._seen: OrderedDict[Addr, _Seen] = OrderedDict()
        self._utp_hosts: OrderedDict[str, None] = OrderedDict()
        self.stats = TransportStats(dials={Transport.TCP.value: 0, Transport.UTP.value: 0})

    @property
    def listens_tcp(self) -> bool:
        return Transport.TCP in self.mode.kinds

    @property
    def uses_utp(self) -> bool:
        return Transport.UTP in self.mode.kinds

    def _entry(self, address: Addr) -> _Seen:
        entry = self._seen.get(address)
        if entry is None:
            entry = self._seen[address] = _Seen()
            if len(self._seen) > self._max:
                self._seen.popitem(last=False)
        else:
            self._seen.move_to_end(address)
        return entry

    # -- what we learn ------------------------------------------------------------------

    def note_utp(self, address: Addr, supported: bool = True) -> None:
        """A hint about ``address``: the PEX ``utp`` flag (hook for the PEX room), a BEP 10 hint."""
        self._entry(address).utp_hint = supported

    def note_incoming_utp(self, host: str) -> None:
        """A peer on ``host`` reached us over uTP: that host speaks it."""
        self._utp_hosts[host] = None
        self._utp_hosts.move_to_end(host)
        if len(self._utp_hosts) > self._max:
            self._utp_hosts.popitem(last=False)

    # -- dialling -----------------------------------------------------------------------

    def order(self, address: Addr) -> list[Transport]:
        """The transports to try for ``address``, first choice first."""
        kinds = self.mode.kinds
        if len(kinds) == 1:
            return [kinds[0]]
        entry = self._seen.get(address)
        utp_first = self.config.prefer_utp or (
            self.config.prefer_utp_when_announced
            and ((entry is not None and entry.utp_hint) or address[0] in self._utp_hosts)
        )
        if entry is not None and entry.worked is not None:
            utp_first = entry.worked is Transport.UTP
        elif entry is not None and entry.failed is not None:
            utp_first = entry.failed is Transport.TCP
        return [Transport.UTP, Transport.TCP] if utp_first else [Transport.TCP, Transport.UTP]

    def dialled(self, address: Addr, transport: Transport, ok: bool, *, attempt: int) -> None:
        """One dial on ``transport`` (the ``attempt``-th of this round, from 0) succeeded or failed."""
        self.stats.dials[transport.value] += 1
        entry = self._entry(address)
        if ok:
            entry.worked = transport
            if entry.failed is transport:
                entry.failed = None
            if attempt > 0:
                self.stats.fallbacks += 1
        else:
            self.failed(address, transport)

    def failed(self, address: Addr, transport: Transport) -> None:
        """``transport`` did not work for ``address``: refused, or the link closed before the handshake.

        (A peer with incoming TCP switched off may still accept TCP and close at once, as
        libtorrent does: that counts as a failure, so the next dial starts with the other.)
        """
        entry = self._entry(address)
        entry.failed = transport
        if entry.worked is transport:
            entry.worked = None
