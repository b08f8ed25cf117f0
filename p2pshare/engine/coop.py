"""Small policies of a cooperating swarm: when to look peers up again on the DHT."""

from __future__ import annotations

from p2pshare.config import CoopConfig

__all__ = ["lookup_pause"]


def lookup_pause(connected: int, config: CoopConfig) -> float:
    """Seconds until the next DHT ``get_peers``: short while few peers are connected, else minutes."""
    return config.lookup_pause_few if connected < config.lookup_few_peers else config.lookup_pause_many
