"""The metadata room of a torrent (BEP 9): serve our manifest, fetch it while we lack it.

A sans-I/O :class:`~p2pshare.core.wire.metadata.MetadataFetcher`, keyed by peer
address, schedules the 16 KiB pieces; this room asks peers for them, remembers who
contributed (to ban them if the whole turns out to be a lie) and answers the
requests of others.  The torrent decides what a finished or failed manifest means.
"""

from __future__ import annotations

from collections.abc import Iterable

from p2pshare.config import Config
from p2pshare.core.types import InfoHash, InfoHashV2, PeerAddress
from p2pshare.core.wire.extension import ExtensionHandshake
from p2pshare.core.wire.messages import Message
from p2pshare.core.wire.metadata import (
    MetadataComplete,
    MetadataData,
    MetadataFetcher,
    MetadataHashMismatch,
    MetadataRequest,
    metadata_response,
)
from p2pshare.engine.peer import Peer

__all__ = ["MetadataExchange"]

#: What a piece of metadata completed: the manifest, a lie to punish, or nothing yet.
Outcome = MetadataComplete | MetadataHashMismatch[PeerAddress] | None


class MetadataExchange:
    """Fetching (while ``info`` is unknown) and serving one torrent's manifest."""

    def __init__(self, info_hash: InfoHash, config: Config, info_hash_v2: InfoHashV2 | None = None) -> None:
        self.info_hash = info_hash
        self.info_hash_v2 = info_hash_v2
        self.config = config
        self.fetcher: MetadataFetcher[PeerAddress] | None = None
        #: peers that sent us pieces of the manifest being assembled
        self.contributors: set[PeerAddress] = set()

    @property
    def fetching(self) -> bool:
        return self.fetcher is not None

    def peer_offers(self, hs: ExtensionHandshake) -> None:
        """A peer announced the manifest's size: start fetching (RemoteProtocolError if absurd)."""
        if self.fetcher is None and hs.metadata_size:
            self.fetcher = MetadataFetcher(
                self.info_hash_v2.value if self.info_hash_v2 is not None else self.info_hash.value,
                hs.metadata_size,
                self.config.metainfo.max_metadata_size,
                request_timeout=self.config.swarm.metadata_request_timeout,
                max_in_flight_per_peer=self.config.engine.metadata_requests_per_peer,
            )

    def request(self, peer: Peer, now: float) -> None:
        """Ask ``peer`` for the pieces the fetcher assigns it."""
        fetcher = self.fetcher
        if fetcher is None or not peer.metadata_ext_id or peer.closed:
            return
        msgs: list[Message | MetadataRequest] = []
        while True:
            piece = fetcher.next_request(peer.address, now)
            if piece is None:
                break
            msgs.append(MetadataRequest(piece))
        if msgs:
            peer.write(peer.conn.send_all(msgs))
            peer.last_send = now

    def request_all(self, peers: Iterable[Peer], now: float) -> None:
        for p in list(peers):
            if p.handshake_done:
                self.request(p, now)

    def on_reject(self, peer: Peer, piece: int) -> None:
        if self.fetcher is not None:
            self.fetcher.on_reject(peer.address, piece)

    def on_data(
        self, peer: Peer, event: MetadataData
    ) -> MetadataComplete | MetadataHashMismatch[PeerAddress] | None:
        """Store a piece; the outcome once the last one arrived (RemoteProtocolError if malformed)."""
        if self.fetcher is None:
            return None
        self.contributors.add(peer.address)
        return self.fetcher.on_data(peer.address, event.piece, event.data, event.total_size)

    def tick(self, now: float) -> None:
        if self.fetcher is not None:
            self.fetcher.handle_timer(now)

    def forget(self, address: PeerAddress) -> None:
        if self.fetcher is not None:
            self.fetcher.forget_peer(address)

    def stop(self) -> None:
        """The manifest is known (or the attempt failed): no more fetching."""
        self.fetcher = None

    @staticmethod
    def serve(peer: Peer, event: MetadataRequest, raw: bytes | None, now: float) -> None:
        """Answer a request with our manifest's piece, or reject it while we lack the manifest."""
        if peer.metadata_ext_id:
            peer.send(metadata_response(raw, event.piece), now)
