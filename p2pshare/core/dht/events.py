"""Events a :class:`~p2pshare.core.dht.node.DhtNode` reports through ``next_event()``."""

from __future__ import annotations

from dataclasses import dataclass

from p2pshare.core.dht.items import Item
from p2pshare.core.types import Addr, PeerAddress

__all__ = ["DhtEvent", "ExternalAddressChanged", "ItemFound", "LookupDone", "NodeIdChanged", "PeersFound"]


@dataclass(frozen=True, slots=True)
class PeersFound:
    """A get_peers/announce lookup learned peers it had not reported yet."""

    lookup_id: int
    info_hash: bytes
    peers: tuple[PeerAddress, ...]


@dataclass(frozen=True, slots=True)
class LookupDone:
    """A lookup finished (converged, ran out of nodes, or was announced)."""

    lookup_id: int
    kind: str  #: "find_node", "get_peers", "announce", "bootstrap", "get_item" or "put_item"
    target: bytes
    peers_found: int  #: distinct peers reported for this lookup
    nodes_responded: int
    queries_sent: int
    rounds: int  #: hops from our table to the deepest node queried
    announced_to: int  #: nodes that acknowledged our announce_peer or BEP 44 put
    closest: tuple[tuple[bytes, Addr], ...]  #: the k nearest nodes that answered


@dataclass(frozen=True, slots=True)
class ExternalAddressChanged:
    """Enough nodes agreed on our external IP (BEP 42 ``ip`` field) to adopt it."""

    ip: str


@dataclass(frozen=True, slots=True)
class NodeIdChanged:
    """Our node id changed to a BEP 42 secure id for our external IP."""

    old_id: bytes
    new_id: bytes


@dataclass(frozen=True, slots=True)
class ItemFound:
    """A get/put lookup found a verified BEP 44 item newer than any it had reported."""

    lookup_id: int
    target: bytes
    item: Item


DhtEvent = PeersFound | LookupDone | ExternalAddressChanged | NodeIdChanged | ItemFound
