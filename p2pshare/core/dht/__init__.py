"""Mainline DHT (BEP 5, with BEP 32/42/43 parts), sans-I/O.

* :mod:`~p2pshare.core.dht.krpc`: the KRPC codec and compact encodings;
* :mod:`~p2pshare.core.dht.ids`: XOR distance and BEP 42 secure ids;
* :mod:`~p2pshare.core.dht.routing`: the k-bucket routing table;
* :mod:`~p2pshare.core.dht.lookup`: the iterative lookup state machine;
* :mod:`~p2pshare.core.dht.tokens` and :mod:`~p2pshare.core.dht.peer_store`;
* :mod:`~p2pshare.core.dht.node`: :class:`DhtNode`, which ties them together;
* :mod:`~p2pshare.core.dht.sim`: an in-memory network on a virtual clock.
"""

from p2pshare.core.dht.events import DhtEvent, ExternalAddressChanged, LookupDone, NodeIdChanged, PeersFound
from p2pshare.core.dht.krpc import Addr, KrpcError, NodeInfo
from p2pshare.core.dht.node import VERSION, DhtNode

__all__ = [
    "Addr",
    "DhtEvent",
    "DhtNode",
    "ExternalAddressChanged",
    "KrpcError",
    "LookupDone",
    "NodeIdChanged",
    "NodeInfo",
    "PeersFound",
    "VERSION",
]
