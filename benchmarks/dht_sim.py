"""Simulate a Mainline DHT of N real sans-I/O nodes on a virtual clock.

Usage: ``python benchmarks/dht_sim.py [--nodes 1000 10000] [--lookups 200] [--seed 1]``

Each node is an unmodified :class:`p2pshare.core.dht.node.DhtNode`; only the
transport is simulated (:class:`p2pshare.core.dht.sim.SimNetwork`): every datagram
takes a random one-way latency of 20-200 ms and is lost with probability 10%.

Routing tables start converged: every node gets, for each bucket depth, up to k
random nodes from the sibling subtree at that depth (what a long-running node's
table looks like).  Then, per scenario, ``--lookups`` random nodes each announce a
fresh info hash, and as many other random nodes look each hash up with get_peers.
The second scenario kills 30% of the nodes *after* the tables were built, so dead
entries stay in every table (the worst case of churn).

Reported per get_peers lookup: hops (rounds), messages (queries sent + responses
received), simulated latency until the first peer and until the lookup finished
(median, p95), and the success rate (the announced peer was found).  Memory is
the tracemalloc peak while building and running the simulation.
"""

from __future__ import annotations

import argparse
import bisect
import random
import statistics
import sys
import time
import tracemalloc
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from p2pshare.config import DhtConfig
from p2pshare.core.dht.events import LookupDone, PeersFound
from p2pshare.core.dht.ids import ID_BITS, id_to_int
from p2pshare.core.dht.krpc import Addr
from p2pshare.core.dht.node import DhtNode
from p2pshare.core.dht.sim import SimNetwork

RESULTS = Path(__file__).resolve().parent / "results" / "dht_sim.txt"
TARGETS = "targets at 10k: success >= 99%, median latency <= 1 s, <= 100 messages; 30% dead: success >= 97%"


@dataclass
class LookupResult:
    found: bool
    rounds: int
    messages: int
    first_peer: float | None
    done: float


def build(n: int, rng: random.Random, config: DhtConfig) -> tuple[SimNetwork, list[Addr]]:
    """N nodes with converged routing tables."""
    net = SimNetwork(rng=rng, latency=(0.02, 0.2), loss=0.1)
    addrs = [(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", 6881) for i in range(1, n + 1)]
    nodes = [DhtNode(config, now=0.0, rng=random.Random(rng.getrandbits(64))) for _ in addrs]
    order = sorted(range(n), key=lambda i: nodes[i].node_id)
    ints = [id_to_int(nodes[i].node_id) for i in order]
    k = config.k
    for i, node in enumerate(nodes):
        own = id_to_int(node.node_id)
        for depth in range(ID_BITS):
            shift = ID_BITS - 1 - depth
            sibling = ((own >> shift) ^ 1) << shift
            lo = bisect.bisect_left(ints, sibling)
            hi = bisect.bisect_left(ints, sibling + (1 << shift))
            if hi > lo:
                picks = range(lo, hi) if hi - lo <= k else rng.sample(range(lo, hi), k)
                for j in picks:
                    other = order[j]
                    if other != i:
                        node.table.heard_from(nodes[other].node_id, addrs[other], 0.0, responded=True)
            # Nothing can share a longer prefix with us once our own subtree holds just us.
            if bisect.bisect_left(ints, own >> shift << shift) + 1 >= bisect.bisect_left(
                ints, (own >> shift << shift) + (1 << shift)
            ):
                break
    for addr, node in zip(addrs, nodes, strict=True):
        net.add(addr, node)
    return net, addrs


def run_lookups(
    net: SimNetwork, addrs: list[Addr], alive: list[Addr], count: int, rng: random.Random, batch: int
) -> list[LookupResult]:
    results: list[LookupResult] = []
    for start in range(0, count, batch):
        size = min(batch, count - start)
        hashes = [rng.randbytes(20) for _ in range(size)]
        announcers = rng.sample(alive, size)
        searchers = [rng.choice([a for a in rng.sample(alive, 2) if a != ann]) for ann in announcers]
        pending = {}
        for ih, ann in zip(hashes, announcers, strict=True):
            lid = net.call(ann, lambda node, now, ih=ih: node.start_announce(ih, 6881, now))
            pending[(ann, lid)] = True
        _wait(net, pending)
        t0 = net.now
        started = []
        for ih, who in zip(hashes, searchers, strict=True):
            mark = len(net.timed_events(who))
            lid = net.call(who, lambda node, now, ih=ih: node.start_get_peers(ih, now))
            started.append((who, lid, mark))
        _wait(net, {(who, lid): True for who, lid, _ in started})
        for (who, lid, mark), ann in zip(started, announcers, strict=True):
            first = None
            found = False
            done: LookupDone | None = None
            done_at = t0
            for when, ev in net.timed_events(who)[mark:]:
                if isinstance(ev, PeersFound) and ev.lookup_id == lid:
                    if any(p.host == ann[0] for p in ev.peers):
                        found = True
                        if first is None:
                            first = when - t0
                elif isinstance(ev, LookupDone) and ev.lookup_id == lid:
                    done, done_at = ev, when
            assert done is not None
            results.append(
                LookupResult(
                    found, done.rounds, done.queries_sent + done.nodes_responded, first, done_at - t0
                )
            )
    return results


def _wait(net: SimNetwork, pending: dict[tuple[Addr, int], bool]) -> None:
    def all_done() -> bool:
        for (who, lid), waiting in list(pending.items()):
            if waiting:
                evs = net.timed_events(who)
                if any(isinstance(ev, LookupDone) and ev.lookup_id == lid for _, ev in evs[-50:]):
                    pending[(who, lid)] = False
                else:
                    return False
        return True

    if not net.run_until(all_done, max_time=120.0):
        raise SystemExit("lookups did not finish within 120 s of simulated time")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def summarize(label: str, res: list[LookupResult]) -> str:
    firsts = [r.first_peer for r in res if r.first_peer is not None]
    dones = [r.done for r in res]
    msgs = [r.messages for r in res]
    rounds = [r.rounds for r in res]
    ok = sum(r.found for r in res) / len(res)
    return (
        f"  {label:<14} lookups={len(res):4d}  success={ok * 100:6.2f}%  "
        f"rounds median={statistics.median(rounds):.0f} max={max(rounds)}  "
        f"messages median={statistics.median(msgs):.0f} p95={pct(msgs, 0.95):.0f} max={max(msgs)}\n"
        f"  {'':<14} latency to first peer median={pct(firsts, 0.5):.3f}s "
        f"p95={pct(firsts, 0.95):.3f}s   to lookup done median={statistics.median(dones):.3f}s "
        f"p95={pct(dones, 0.95):.3f}s"
    )


def simulate(n: int, lookups: int, seed: int, config: DhtConfig) -> str:
    rng = random.Random(seed)
    tracemalloc.start()
    t0 = time.perf_counter()
    net, addrs = build(n, rng, config)
    built = time.perf_counter() - t0
    table_sizes = [len(net.node(a).table) for a in addrs]
    healthy = run_lookups(net, addrs, addrs, lookups, rng, batch=25)
    dead = set(rng.sample(addrs, int(0.3 * n)))
    for a in dead:
        net.kill(a)
    alive = [a for a in addrs if a not in dead]
    churned = run_lookups(net, addrs, alive, lookups, rng, batch=25)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    elapsed = time.perf_counter() - t0
    return "\n".join(
        [
            f"nodes={n}  seed={seed}  latency 20-200 ms one way, 10% loss  "
            f"table size median={statistics.median(table_sizes):.0f}  "
            f"build {built:.1f}s  total {elapsed:.1f}s",
            summarize("all alive", healthy),
            summarize("30% dead", churned),
            f"  memory (tracemalloc peak): {peak / 2**20:.1f} MiB "
            f"({peak / n / 1024:.1f} KiB per node)  delivered={net.delivered} lost={net.lost}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--lookups", type=int, default=200, help="get_peers lookups per scenario")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-write", action="store_true", help=f"do not write {RESULTS.name}")
    args = parser.parse_args(argv)
    # Upkeep every minute instead of 5 s: same protocol, fewer idle wake-ups to simulate.
    config = replace(DhtConfig(bootstrap=()), maintenance_interval=60.0)
    blocks = [f"p2pshare DHT simulation ({time.strftime('%Y-%m-%d %H:%M')})", TARGETS]
    for n in args.nodes:
        block = simulate(n, args.lookups, args.seed, config)
        print(block, flush=True)
        blocks.append(block)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text("\n".join(blocks) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
