"""The manifest's size as each peer claims it: one fetch per claimed size, a lie costs only the liar.

Theory of operation
-------------------
BEP 9's ``metadata_size`` is a claim by one peer, not a fact about the torrent.  Taking
the first claim as the truth lets one peer (claiming 8 MiB and sending nothing, or
serving a copy of another size that fails the hash) get every honest peer dropped for
"a different size".  So :class:`MetadataClaims` keeps:

* each peer's own claim (:meth:`claim`); a piece whose ``total_size`` differs from its
  sender's *own* claim is that sender's protocol error, and nobody else's;
* one :class:`~p2pshare.core.wire.metadata.MetadataFetcher` per claimed size, asking for
  its pieces only the peers that claimed that size, so sizes are tried side by side and
  the one whose data matches the info hash wins (a claim that is never served costs a
  request timeout, not the download);
* a copy that fails the hash: when one peer sent all of it, that peer is the liar (the
  engine bans it and its claim goes); when several did, the size is fetched again from
  one claimant at a time, so the next failure names its sender;
* a size nobody claims any more is dropped with its fetcher and its bytes.

Bounds: at most ``max_sizes`` distinct sizes at once (a further size is ignored until
one goes), each at most ``max_size`` bytes; claims are dropped with their peers.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from p2pshare.core.wire.metadata import MetadataComplete, MetadataFetcher, MetadataHashMismatch
from p2pshare.errors import RemoteProtocolError, Violation

__all__ = ["MetadataClaims", "MetadataLiars"]

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class MetadataLiars(Generic[K]):
    """A copy of ``size`` bytes failed the hash; ``peers`` (possibly none yet) are to blame."""

    size: int
    peers: frozenset[K]


class MetadataClaims(Generic[K]):
    """Per-peer ``metadata_size`` claims and one fetcher per claimed size."""

    def __init__(
        self,
        info_hash: bytes,
        *,
        max_size: int,
        max_sizes: int,
        request_timeout: float,
        max_in_flight_per_peer: int,
    ) -> None:
        self.info_hash = bytes(info_hash)
        self.max_size = max_size
        self.max_sizes = max_sizes
        self.request_timeout = request_timeout
        self.max_in_flight_per_peer = max_in_flight_per_peer
        self.claims: dict[K, int] = {}
        self.fetchers: dict[int, MetadataFetcher[K]] = {}
        #: sizes whose last copy failed with several senders: one claimant at a time
        self._one_at_a_time: dict[int, K | None] = {}

    # -- claims ---------------------------------------------------------------------------

    def claim(self, peer: K, size: int) -> bool:
        """Record ``peer``'s claim; False when ignored (too many sizes at once).

        Raises :class:`RemoteProtocolError` for a size outside 1..``max_size``.
        """
        if type(size) is not int or not 0 < size <= self.max_size:
            raise RemoteProtocolError(
                f"metadata_size {size!r} is outside 1..{self.max_size} bytes", kind=Violation.TOO_LARGE
            )
        self.forget_peer(peer)
        if size not in self.fetchers:
            if len(self.fetchers) >= self.max_sizes:
                return False
            self.fetchers[size] = MetadataFetcher(
                self.info_hash,
                size,
                self.max_size,
                request_timeout=self.request_timeout,
                max_in_flight_per_peer=self.max_in_flight_per_peer,
            )
        self.claims[peer] = size
        return True

    def forget_peer(self, peer: K) -> None:
        """``peer`` left (or lied): its claim, its requests, and a size nobody else claims go."""
        size = self.claims.pop(peer, None)
        if size is None:
            return
        fetcher = self.fetchers.get(size)
        if fetcher is not None:
            fetcher.forget_peer(peer)
        if self._one_at_a_time.get(size) == peer:
            self._one_at_a_time[size] = None
        if size not in self.claims.values():
            self.fetchers.pop(size, None)
            self._one_at_a_time.pop(size, None)

    def liars(self, true_size: int) -> list[K]:
        """Once the manifest is known: the peers whose claim was not its size."""
        return [p for p, size in self.claims.items() if size != true_size]

    # -- fetching -------------------------------------------------------------------------

    def next_requests(self, peer: K, now: float) -> list[int]:
        """The pieces to ask ``peer`` for now (recorded as requested)."""
        size = self.claims.get(peer)
        fetcher = self.fetchers.get(size) if size is not None else None
        if fetcher is None or size is None:
            return []
        if size in self._one_at_a_time:
            holder = self._one_at_a_time[size]
            if holder is None:
                self._one_at_a_time[size] = peer
            elif holder != peer:
                return []
        pieces: list[int] = []
        while True:
            piece = fetcher.next_request(peer, now)
            if piece is None:
                return pieces
            pieces.append(piece)

    def on_reject(self, peer: K, piece: int) -> None:
        size = self.claims.get(peer)
        fetcher = self.fetchers.get(size) if size is not None else None
        if fetcher is not None:
            fetcher.on_reject(peer, piece)
            if self._one_at_a_time.get(size) == peer:  # type: ignore[arg-type]
                self._one_at_a_time[size] = None  # type: ignore[index]

    def on_data(
        self, peer: K, piece: int, data: bytes, total_size: int
    ) -> MetadataComplete | MetadataLiars[K] | None:
        """Store a piece from ``peer``; the outcome once a copy is whole.

        Raises :class:`RemoteProtocolError` when ``total_size`` is not ``peer``'s own claim
        or the piece is malformed.  Data from a peer that claimed nothing is ignored.
        """
        size = self.claims.get(peer)
        if size is None:
            return None
        if total_size != size:
            raise RemoteProtocolError(
                f"ut_metadata total_size {total_size} differs from the metadata_size {size} it claimed",
                kind=Violation.BAD_METADATA,
            )
        fetcher = self.fetchers[size]
        outcome = fetcher.on_data(peer, piece, data, total_size)
        if outcome is None or isinstance(outcome, MetadataComplete):
            return outcome
        assert isinstance(outcome, MetadataHashMismatch)
        senders = frozenset(outcome.peers)
        if len(senders) == 1:
            for liar in senders:
                self.forget_peer(liar)
            return MetadataLiars(size, senders)
        self._one_at_a_time[size] = None
        return MetadataLiars(size, frozenset())

    def tick(self, now: float) -> None:
        for fetcher in self.fetchers.values():
            fetcher.handle_timer(now)
