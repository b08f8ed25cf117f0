"""Peers announced to us, per info hash (the storage side of announce_peer).

Entries expire ``peer_ttl`` (30 min) after their last announce.  Three caps bound
what remote nodes can make us hold: peers per info hash (the oldest entry yields
to a newcomer), peers in total and distinct info hashes (newcomers are refused
once full).
"""

from __future__ import annotations

import random

from p2pshare.config import DhtConfig
from p2pshare.core.dht.krpc import Addr

__all__ = ["PeerStore"]


class PeerStore:
    """Announced peers with expiry and caps; see the module docstring."""

    def __init__(self, config: DhtConfig) -> None:
        self._config = config
        #: info hash -> {peer: expiry}, in announce order (oldest first)
        self._data: dict[bytes, dict[Addr, float]] = {}
        self._total = 0

    def __len__(self) -> int:
        return self._total

    @property
    def info_hash_count(self) -> int:
        return len(self._data)

    def add(self, info_hash: bytes, peer: Addr, now: float) -> bool:
        """Store (or refresh) ``peer`` for ``info_hash``; False if a cap refused it."""
        cfg = self._config
        peers = self._data.get(info_hash)
        if peers is None:
            if len(self._data) >= cfg.max_info_hashes or self._total >= cfg.max_stored_peers:
                return False
            peers = self._data[info_hash] = {}
        if peer in peers:
            del peers[peer]
            peers[peer] = now + cfg.peer_ttl
            return True
        if len(peers) >= cfg.max_peers_per_hash:
            del peers[next(iter(peers))]
            self._total -= 1
        elif self._total >= cfg.max_stored_peers:
            if not peers:
                del self._data[info_hash]
            return False
        peers[peer] = now + cfg.peer_ttl
        self._total += 1
        return True

    def get(self, info_hash: bytes, now: float, limit: int, rng: random.Random) -> list[Addr]:
        """Up to ``limit`` unexpired peers for ``info_hash`` (a random sample if more)."""
        peers = self._data.get(info_hash)
        if not peers:
            return []
        live = [p for p, expiry in peers.items() if expiry > now]
        if len(live) > limit:
            live = rng.sample(live, limit)
        return live

    def expire(self, now: float) -> int:
        """Drop expired entries; return how many went."""
        dropped = 0
        for info_hash in list(self._data):
            peers = self._data[info_hash]
            dead = [p for p, expiry in peers.items() if expiry <= now]
            for p in dead:
                del peers[p]
            dropped += len(dead)
            if not peers:
                del self._data[info_hash]
        self._total -= dropped
        return dropped
