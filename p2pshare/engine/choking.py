"""The choking room: who may download from us, re-decided every ``rechoke_interval`` or when a slot frees.

The decision itself is the sans-I/O :class:`~p2pshare.core.choker.Choker`; this room
feeds it the peers' rates, sends the resulting choke/unchoke messages, and
trims the upload queue of a peer it chokes.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from p2pshare.config import ChokerConfig
from p2pshare.core.choker import Choker, PeerStats
from p2pshare.core.wire.messages import Choke, Unchoke
from p2pshare.engine.peer import Peer

__all__ = ["UploadSlots"]


class UploadSlots:
    """Rechoking for one torrent."""

    def __init__(self, config: ChokerConfig, rng: random.Random) -> None:
        self.config = config
        self.choker: Choker[Peer] = Choker(config, rng)
        self.next_rechoke = 0.0

    def free(self) -> None:
        """A slot is free (its peer left or lost interest): decide again at the next chance."""
        self.next_rechoke = 0.0

    def has_room(self, peers: Iterable[Peer]) -> bool:
        """Fewer peers unchoked than the regular slots plus one: a new interested peer may get one now."""
        return sum(1 for p in peers if not p.conn.am_choking) < self.config.regular_slots + 1

    def rechoke(self, peers: Iterable[Peer], seeding: bool, now: float) -> None:
        """Choke and unchoke as the choker decides, if a rechoke is due."""
        if now < self.next_rechoke:
            return
        stats = [
            PeerStats(
                key=p,
                interested=p.conn.peer_interested,
                download_rate=p.down.rate,
                upload_rate=p.up.rate,
                snubbed=p.snubbed,
                am_choking=p.conn.am_choking,
            )
            for p in peers
            if p.handshake_done and not p.closed
        ]
        decision = self.choker.rechoke(stats, now, seeding)
        for peer in decision.unchoke:
            if peer.conn.am_choking and not peer.closed:
                peer.send(Unchoke(), now)
        for peer in decision.choke:
            if not peer.conn.am_choking and not peer.closed:
                # The connection discards (BEP 3) or rejects (BEP 6) the queued requests.
                peer.send(Choke(), now)
                conn = peer.conn
                peer.uploads = type(peer.uploads)(
                    r for r in peer.uploads if conn.is_requested(r.index, r.begin, r.length)
                )
        self.next_rechoke = now + self.config.rechoke_interval
