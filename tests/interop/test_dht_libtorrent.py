"""Interop of p2pshare's DHT with libtorrent's (the reference implementation), on loopback.

libtorrent settings that make a loopback DHT work (the defaults protect a real node
from abuse and refuse most of what a one-machine test needs):

* ``enable_dht=True``, ``dht_bootstrap_nodes="127.0.0.x:port"``: bootstrap from our
  loopback node only (never the public routers, which are the default);
* ``listen_interfaces="127.0.0.x:0"``: each session on its own loopback IP;
* ``enable_lsd/enable_upnp/enable_natpmp=False``: nothing leaves the machine;
* ``dht_restrict_routing_ips=False``: allow several nodes from the same /24 in the table;
* ``dht_restrict_search_ips=False``: allow several search results from the same /24;
* ``dht_prefer_verified_node_ids=False`` and ``dht_enforce_node_id=False``: do not
  prefer/require BEP 42 ids (loopback ids are exempt anyway, but keep it explicit);
* ``dht_ignore_dark_internet=False``: do not drop packets from reserved ranges.

Every wait is an explicit polling loop with a deadline.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

from p2pshare.config import DhtConfig
from p2pshare.core.types import InfoHash, PeerAddress
from p2pshare.engine.dht_node import DhtService

lt = pytest.importorskip("libtorrent")

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

CFG = DhtConfig(bootstrap=())


class LtNode:
    """A libtorrent session with only its DHT on, bound to one loopback IP."""

    def __init__(self, host: str, bootstrap: str) -> None:
        self.host = host
        self.ses = lt.session(
            {
                "listen_interfaces": f"{host}:0",
                "outgoing_interfaces": host,
                "enable_dht": True,
                "dht_bootstrap_nodes": bootstrap,
                "enable_lsd": False,
                "enable_upnp": False,
                "enable_natpmp": False,
                "dht_restrict_routing_ips": False,
                "dht_restrict_search_ips": False,
                "dht_prefer_verified_node_ids": False,
                "dht_enforce_node_id": False,
                "dht_ignore_dark_internet": False,
                "alert_mask": lt.alert_category.dht
                | lt.alert_category.dht_operation
                | lt.alert_category.stats,
            }
        )
        self.dht_nodes = 0
        self.peers: set[tuple[str, int]] = set()

    def poll(self) -> None:
        """Drain alerts: DHT node count and get_peers replies."""
        self.ses.post_session_stats()
        for a in self.ses.pop_alerts():
            if isinstance(a, lt.session_stats_alert):
                self.dht_nodes = int(a.values.get("dht.dht_nodes", 0))
            elif isinstance(a, lt.dht_get_peers_reply_alert):
                self.peers.update((str(h), int(p)) for h, p in a.peers())

    @property
    def port(self) -> int:
        return int(self.ses.listen_port())


async def poll_until(nodes: list[LtNode], predicate: Any, timeout: float) -> bool:
    """Poll the sessions every 0.1 s until ``predicate()`` holds or ``timeout`` s pass."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        for n in nodes:
            n.poll()
        if predicate():
            return True
        await asyncio.sleep(0.1)
    return False


@pytest.fixture
async def our_dht() -> AsyncIterator[list[DhtService]]:
    """Twelve p2pshare nodes on 127.0.0.2-13."""
    boot = await DhtService.start(host="127.0.0.2", bootstrap=[], state_dir=None, config=CFG)
    rest = await asyncio.gather(
        *(
            DhtService.start(host=f"127.0.0.{i}", bootstrap=[boot.address], state_dir=None, config=CFG)
            for i in range(3, 14)
        )
    )
    services = [boot, *rest]
    try:
        assert all(await asyncio.gather(*(s.wait_ready(10) for s in services)))
        yield services
    finally:
        await asyncio.gather(*(s.close() for s in services))


async def test_libtorrent_finds_peer_announced_by_p2pshare(our_dht: list[DhtService]) -> None:
    """libtorrent's dht_get_peers, bootstrapped from our node, finds a peer p2pshare announced."""
    info_hash = InfoHash(os.urandom(20))
    assert await our_dht[4].announce(info_hash, 6881, timeout=10) >= 3
    node = LtNode("127.0.0.40", f"{our_dht[0].address[0]}:{our_dht[0].port}")
    try:
        assert await poll_until([node], lambda: node.dht_nodes >= 3, 15), "libtorrent did not join our DHT"
        node.ses.dht_get_peers(lt.sha1_hash(info_hash.value))
        assert await poll_until([node], lambda: ("127.0.0.6", 6881) in node.peers, 15), node.peers
    finally:
        del node.ses


async def test_p2pshare_finds_peer_announced_by_libtorrent() -> None:
    """Through a DHT that holds libtorrent nodes, p2pshare's get_peers finds a libtorrent announce."""
    # libtorrent does not put its bootstrap routers in its table, so a lone router would leave
    # it empty: a handful of p2pshare nodes seed the DHT, then six libtorrent nodes join it.
    seed = await DhtService.start(host="127.0.0.45", bootstrap=[], state_dir=None, config=CFG)
    services = [seed]
    for i in range(46, 49):
        services.append(
            await DhtService.start(host=f"127.0.0.{i}", bootstrap=[seed.address], state_dir=None, config=CFG)
        )
    assert all(await asyncio.gather(*(s.wait_ready(5) for s in services)))
    nodes = [LtNode(f"127.0.0.{50 + i}", f"127.0.0.45:{seed.port}") for i in range(6)]
    try:
        assert await poll_until(nodes, lambda: all(n.dht_nodes >= 3 for n in nodes), 20), [
            n.dht_nodes for n in nodes
        ]
        info_hash = InfoHash(os.urandom(20))
        nodes[3].ses.dht_announce(lt.sha1_hash(info_hash.value), 7777, 0)
        await poll_until(nodes, lambda: False, 1.0)  # give libtorrent's announce a moment to land
        # Our searcher enters through a libtorrent node, so its routes start in libtorrent's tables.
        ours = await DhtService.start(
            host="127.0.0.60", bootstrap=[("127.0.0.50", nodes[0].port)], state_dir=None, config=CFG
        )
        services.append(ours)
        assert await ours.wait_ready(10)
        found: list[PeerAddress] = []
        for _ in range(5):  # libtorrent may still be spreading the announce: retry a few lookups
            found = await ours.find_peers(info_hash, timeout=5)
            if PeerAddress("127.0.0.53", 7777) in found:
                break
        assert PeerAddress("127.0.0.53", 7777) in found, found
        lt_ips = {n.host for n in nodes}
        assert sum(1 for e in ours.endpoint.node.table if e.addr[0] in lt_ips) >= 3  # routed via libtorrent
    finally:
        for svc in services:
            await svc.close()
        for n in nodes:
            del n.ses
