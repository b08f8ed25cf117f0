"""The metadata room of a torrent (BEP 9): serve our manifest, fetch it while we lack it.

Each peer's ``metadata_size`` is its own claim: a
:class:`~p2pshare.engine.metadata_claims.MetadataClaims`, keyed by peer address, fetches
every claimed size from the peers that claimed it, side by side, so a peer that claims a
size it never sends (or serves a copy that fails the hash) costs only itself.  This room
asks peers for pieces, names the liars it finds and answers the requests of others.  The
torrent decides what a finished manifest means.
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
    MetadataRequest,
    metadata_response,
)
from p2pshare.engine.metadata_claims import MetadataClaims, MetadataLiars
from p2pshare.engine.peer import Peer

__all__ = ["MetadataExchange"]

#: What a piece of metadata completed: the manifest, a lie to punish, or nothing yet.
Outcome = MetadataComplete | MetadataLiars[PeerAddress] | None


class MetadataExchange:
    """Fetching (while ``info`` is unknown) and serving one torrent's manifest."""

    def __init__(self, info_hash: InfoHash, config: Config, info_hash_v2: InfoHashV2 | None = None) -> None:
        self.info_hash = info_hash
        self.info_hash_v2 = info_hash_v2
        self.config = config
        self.claims: MetadataClaims[PeerAddress] | None = MetadataClaims(
            # a btmh magnet: the manifest is checked by SHA-256 of the v2 hash, else SHA-1
            info_hash_v2.value if info_hash_v2 is not None else info_hash.value,
            max_size=config.metainfo.max_metadata_size,
            max_sizes=config.defence.max_metadata_sizes,
            request_timeout=config.swarm.metadata_request_timeout,
            max_in_flight_per_peer=config.engine.metadata_requests_per_peer,
        )

    @property
    def fetching(self) -> bool:
        return self.claims is not None

    def peer_offers(self, peer: Peer, hs: ExtensionHandshake) -> None:
        """``peer`` claims the manifest's size (RemoteProtocolError if absurd)."""
        if self.claims is not None and hs.metadata_size:
            self.claims.claim(peer.address, hs.metadata_size)

    def request(self, peer: Peer, now: float) -> None:
        """Ask ``peer`` for the pieces of its claimed size that are assigned to it."""
        claims = self.claims
        if claims is None or not peer.metadata_ext_id or peer.closed:
            return
        msgs: list[Message | MetadataRequest] = [
            MetadataRequest(p) for p in claims.next_requests(peer.address, now)
        ]
        if msgs:
            peer.write(peer.conn.send_all(msgs))
            peer.last_send = now

    def request_all(self, peers: Iterable[Peer], now: float) -> None:
        for p in list(peers):
            if p.handshake_done:
                self.request(p, now)

    def on_reject(self, peer: Peer, piece: int) -> None:
        if self.claims is not None:
            self.claims.on_reject(peer.address, piece)

    def on_data(self, peer: Peer, event: MetadataData) -> Outcome:
        """Store a piece; the outcome once a copy is whole (RemoteProtocolError if malformed)."""
        if self.claims is None:
            return None
        return self.claims.on_data(peer.address, event.piece, event.data, event.total_size)

    def liars(self, true_size: int) -> list[PeerAddress]:
        """Once the manifest is known: the peers that claimed another size."""
        return self.claims.liars(true_size) if self.claims is not None else []

    def tick(self, now: float) -> None:
        if self.claims is not None:
            self.claims.tick(now)

    def forget(self, address: PeerAddress) -> None:
        if self.claims is not None:
            self.claims.forget_peer(address)

    def stop(self) -> None:
        """The manifest is known (or the attempt failed): no more fetching, claims and bytes freed."""
        self.claims = None

    @staticmethod
    def serve(peer: Peer, event: MetadataRequest, raw: bytes | None, now: float) -> None:
        """Answer a request with our manifest's piece, or reject it while we lack the manifest."""
        if peer.metadata_ext_id:
            peer.send(metadata_response(raw, event.piece), now)
