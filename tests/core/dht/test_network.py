"""Many sans-I/O nodes in an in-memory network on a virtual clock (deterministic)."""

from __future__ import annotations

import random
from dataclasses import replace

from p2pshare.config import DhtConfig
from p2pshare.core.dht.events import LookupDone, PeersFound
from p2pshare.core.dht.krpc import Addr
from p2pshare.core.dht.node import DhtNode
from p2pshare.core.dht.sim import SimNetwork

CFG = DhtConfig(bootstrap=())


def build(n: int, *, seed: int, loss: float = 0.0, config: DhtConfig = CFG) -> tuple[SimNetwork, list[Addr]]:
    """n nodes joining one after another through the first, then settling for a minute."""
    rng = random.Random(seed)
    net = SimNetwork(rng=rng, loss=loss)
    addrs = [(f"10.1.{i >> 8}.{i & 255}", 6881) for i in range(1, n + 1)]
    for i, a in enumerate(addrs):
        net.add(a, DhtNode(config, now=net.now, rng=random.Random(seed * 1000 + i)))
        if i:
            net.call(a, lambda node, now: node.bootstrap([addrs[0]], now))
        net.run_for(0.3)
    net.run_for(60.0)
    return net, addrs


def run_lookup(net: SimNetwork, addr: Addr, start: object) -> tuple[LookupDone, list[PeersFound]]:
    lid = net.call(addr, start)  # type: ignore[arg-type]

    def done() -> bool:
        return any(isinstance(e, LookupDone) and e.lookup_id == lid for e in net.events(addr))

    assert net.run_until(done, max_time=60.0), "lookup did not finish within 60 s of virtual time"
    evs = [e for e in net.events(addr) if getattr(e, "lookup_id", None) == lid]
    last = evs[-1]
    assert isinstance(last, LookupDone)
    return last, [e for e in evs if isinstance(e, PeersFound)]


def announce_and_find(net: SimNetwork, announcer: Addr, searcher: Addr, info_hash: bytes) -> bool:
    done, _ = run_lookup(net, announcer, lambda n, now: n.start_announce(info_hash, 4321, now))
    assert done.announced_to > 0
    _, found = run_lookup(net, searcher, lambda n, now: n.start_get_peers(info_hash, now))
    return any(p.host == announcer[0] and p.port == 4321 for ev in found for p in ev.peers)


def test_bootstrap_fills_tables() -> None:
    """After joining through one node, every node knows a good share of the network."""
    net, addrs = build(80, seed=1)
    sizes = [len(net.node(a).table) for a in addrs]
    assert min(sizes) >= 8 and sum(sizes) / len(sizes) >= 15


def test_announced_peer_is_found_by_another_node() -> None:
    """A peer announced by one node is found by get_peers from other nodes."""
    net, addrs = build(100, seed=2)
    rng = random.Random(3)
    for _ in range(5):
        a, b = rng.sample(addrs, 2)
        assert announce_and_find(net, a, b, rng.randbytes(20))


def test_lookups_survive_loss_latency_and_dead_nodes() -> None:
    """With 10% loss, 20-200 ms latency and a quarter of the nodes dead, lookups still find peers."""
    net, addrs = build(150, seed=4, loss=0.1)
    rng = random.Random(5)
    for a in rng.sample(addrs[1:], 37):
        net.kill(a)
    alive = [a for a in addrs if a not in net.dead]
    found = sum(announce_and_find(net, *rng.sample(alive, 2), rng.randbytes(20)) for _ in range(10))
    assert found >= 9


def test_dead_nodes_turn_bad_and_leave_tables() -> None:
    """Nodes that stop answering become bad through upkeep pings and drop out of closest()."""
    net, addrs = build(40, seed=6)
    victim = addrs[5]
    net.kill(victim)
    net.run_for(20 * 60.0)  # past the 15-minute questionable mark, then repeated failed pings
    holders = [a for a in addrs if a not in net.dead and net.node(a).table.get_by_addr(victim) is not None]
    for a in holders:
        entry = net.node(a).table.get_by_addr(victim)
        assert entry is not None and entry.failures >= CFG.node_max_failures
    assert all(
        victim not in [e.addr for e in net.node(a).table.closest(net.node(a).node_id, 100, net.now)]
        for a in addrs
        if a not in net.dead
    )


def test_idle_buckets_are_refreshed() -> None:
    """A bucket idle for 15 minutes triggers a refresh lookup (find_node queries go out)."""
    net, addrs = build(30, seed=7)
    node = net.node(addrs[3])
    for b in node.table.buckets:
        b.last_changed = net.now - 16 * 60.0
    sent_before = net.stats(addrs[3]).sent
    net.run_for(CFG.maintenance_interval + 1.0)
    assert net.stats(addrs[3]).sent > sent_before
    assert all(net.now - b.last_changed < 60.0 for b in node.table.buckets)


def test_read_only_node_can_search_but_is_never_stored() -> None:
    """BEP 43: a read-only node finds peers yet never appears in anyone's routing table."""
    net, addrs = build(40, seed=8)
    ro_addr = ("10.9.9.9", 6881)
    net.add(ro_addr, DhtNode(replace(CFG, read_only=True), now=net.now, rng=random.Random(99)))
    run_lookup(net, ro_addr, lambda n, now: n.bootstrap([addrs[0]], now))
    info_hash = random.Random(1).randbytes(20)
    run_lookup(net, addrs[10], lambda n, now: n.start_announce(info_hash, 4321, now))
    _, found = run_lookup(net, ro_addr, lambda n, now: n.start_get_peers(info_hash, now))
    assert any(p.host == addrs[10][0] for ev in found for p in ev.peers)
    assert all(net.node(a).table.get_by_addr(ro_addr) is None for a in addrs)
    assert net.node(ro_addr).stats["queries_answered"] == 0
