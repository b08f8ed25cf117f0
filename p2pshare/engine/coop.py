"""Small policies of a cooperating swarm: when to look peers up again; when a peer is complete."""

from __future__ import annotations

from p2pshare.config import CoopConfig
from p2pshare.engine.peer import Peer

__all__ = ["lookup_pause", "newly_complete"]


def newly_complete(peer: Peer) -> bool:
    """True exactly once per connection: the first time the peer is seen with every piece."""
    has = peer.conn.peer_has
    if not peer.remote_complete and has is not None and has.length and has.complete:
        peer.remote_complete = True
        return True
    return False


def lookup_pause(connected: int, config: CoopConfig) -> float:
    """Seconds until the next DHT ``get_peers``: short while few peers are connected, else minutes."""
    return config.lookup_pause_few if connected < config.lookup_few_peers else config.lookup_pause_many
