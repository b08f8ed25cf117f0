"""Peer book-keeping for one torrent: addresses we know, back-off, bans, totals per host.

Pure book-keeping with ``now`` passed in: the torrent asks whom to dial and tells
the book what happened (connected, failed, dropped, banned).  One back-off rule
for every kind of failure: ``retry_base * 2 ** (attempts - 1)`` seconds, capped at
``retry_max``; a peer that worked once starts again from the bottom.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from p2pshare.config import SwarmConfig
from p2pshare.core.types import PeerAddress

__all__ = ["KnownPeer", "PeerBook"]

#: The row of the per-host totals that collects hosts past the cap.
OTHER_HOSTS = "other"


@dataclass(slots=True)
class KnownPeer:
    """An address we may connect to, with its back-off."""

    attempts: int = 0
    next_try: float = 0.0
    connected: bool = False
    source: str = ""


class PeerBook:
    """Known addresses, back-off, bans, half-open dials, peer ids and per-host transfer totals."""

    def __init__(self, config: SwarmConfig) -> None:
        self.config = config
        self.known: dict[PeerAddress, KnownPeer] = {}
        self._banned: dict[str, None] = {}  # an ordered set: the oldest ban is forgotten first
        self.peer_ids: set[bytes] = set()
        self.half_open = 0
        #: bytes [down, up] of closed connections per IP (at most max_known_peers rows, then "other")
        self._host_totals: dict[str, list[int]] = {}

    # -- learning addresses -------------------------------------------------------------

    def add(self, addresses: Iterable[PeerAddress], source: str) -> int:
        """Remember addresses to connect to; return how many were new."""
        new = 0
        for addr in addresses:
            if addr in self.known or addr[0] in self._banned:
                continue
            if len(self.known) >= self.config.max_known_peers:
                break
            self.known[addr] = KnownPeer(source=source)
            new += 1
        return new

    def forget(self, addr: PeerAddress) -> None:
        self.known.pop(addr, None)

    # -- dialling -----------------------------------------------------------------------

    def retry_delay(self, attempts: int) -> float:
        """The one back-off: seconds to wait after the ``attempts``-th try failed."""
        cfg = self.config
        return float(min(cfg.retry_max, cfg.retry_base * 2 ** max(0, attempts - 1)))

    def to_dial(self, now: float, connected: int) -> list[tuple[PeerAddress, KnownPeer]]:
        """Addresses to dial now, within the connection and half-open caps; each counts as half-open."""
        cfg = self.config
        out: list[tuple[PeerAddress, KnownPeer]] = []
        for addr, known in self.known.items():
            if connected + self.half_open >= cfg.max_peers or self.half_open >= cfg.max_half_open:
                break
            if known.connected or known.next_try > now or addr[0] in self._banned:
                continue
            if known.attempts > cfg.max_retries:
                continue
            known.connected = True
            known.attempts += 1
            self.half_open += 1
            out.append((addr, known))
        return out

    def dial_failed(self, known: KnownPeer, now: float) -> float:
        """A dial failed: back off; returns the delay."""
        self.half_open -= 1
        known.connected = False
        delay = self.retry_delay(known.attempts)
        known.next_try = now + delay
        return delay

    def dial_done(self) -> None:
        """A dial succeeded (the link is attached or closed next)."""
        self.half_open -= 1

    def attached(self, addr: PeerAddress) -> None:
        """A link to ``addr`` is open (outgoing, or an incoming one we now know)."""
        self.known.setdefault(addr, KnownPeer(source="incoming")).connected = True

    def defer(self, addr: PeerAddress, until: float) -> None:
        """Do not dial ``addr`` before ``until`` (we are connected to that peer anyway)."""
        known = self.known.get(addr)
        if known is not None:
            known.next_try = until

    def detached(
        self, addr: PeerAddress, *, outgoing: bool, worked: bool, down: int, up: int, now: float
    ) -> None:
        """A connection ended: schedule the retry, fold its totals into its host's row."""
        known = self.known.get(addr)
        if known is not None:
            known.connected = False
            if outgoing and worked:
                known.attempts = 0  # it worked once: retry from the start of the back-off
            known.next_try = now + self.retry_delay(known.attempts)
        if not outgoing:
            self.known.pop(addr, None)  # an ephemeral port: not worth redialling
        host = addr[0]
        if host not in self._host_totals and len(self._host_totals) >= self.config.max_known_peers:
            host = OTHER_HOSTS  # a flood of addresses must not grow this without bound
        totals = self._host_totals.setdefault(host, [0, 0])
        totals[0] += down
        totals[1] += up

    # -- bans ---------------------------------------------------------------------------

    def ban(self, host: str) -> None:
        self._banned[host] = None
        if len(self._banned) > self.config.max_banned_ips:
            del self._banned[next(iter(self._banned))]

    def is_banned(self, host: str) -> bool:
        return host in self._banned

    @property
    def banned(self) -> tuple[str, ...]:
        """Banned hosts, oldest first."""
        return tuple(self._banned)

    # -- totals -------------------------------------------------------------------------

    def transfer_by_host(self, live: Iterable[tuple[str, int, int]]) -> dict[str, tuple[int, int]]:
        """``(downloaded, uploaded)`` per host: closed connections plus ``live`` (host, down, up) rows."""
        out = {host: (d, u) for host, (d, u) in self._host_totals.items()}
        for host, down, up in live:
            d, u = out.get(host, (0, 0))
            out[host] = (d + down, u + up)
        return out
