"""BEP 44 items and DHT reflection: figures for issue 15 (part 2) and issue 12 (item 7).

Usage: ``python benchmarks/dht_items_bench.py [--nodes 1000] [--items 100] [--seed 1]``

* lookups: on the virtual-clock network of ``dht_sim.py`` (converged tables, 20-200 ms
  one-way latency, 10% loss), random nodes put salted mutable items and other
  random nodes get them; then 30% of the nodes die and it is done again.
  Reported: get success (the exact item came back), nodes that stored each put,
  messages and simulated time per get;
* ed25519: signatures verified per second on one core (each put costs one);
* store memory: tracemalloc bytes of a full :class:`ItemStore` of 1000-byte items;
* reflection: 3,000 malformed queries from one address, against a node with the
  I/O layer's rate limiter: replies and bytes sent back, against bytes received.

Targets: get success >= 97% (both scenarios), store <= 2 MiB, amplification <= 1,
replies within the rate limit.  Exits 1 when one is missed.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dht_sim import build  # type: ignore[import-not-found]

from p2pshare.config import DhtConfig
from p2pshare.core.dht import krpc
from p2pshare.core.dht.events import ItemFound, LookupDone
from p2pshare.core.dht.items import ItemStore, sign_mutable, signature_buffer, verify_signature
from p2pshare.core.dht.krpc import Addr
from p2pshare.core.dht.node import DhtNode
from p2pshare.core.dht.sim import SimNetwork
from p2pshare.io.dht_endpoint import RateLimiter

RESULTS = Path(__file__).resolve().parent / "results" / "dht_items.txt"
TARGETS = "targets: get success >= 97% (also with 30% dead), store <= 2 MiB, amplification <= 1"


def _run(net: SimNetwork, who: Addr, start: object) -> tuple[LookupDone, list[ItemFound], float]:
    mark = len(net.timed_events(who))
    t0 = net.now
    lid = net.call(who, start)  # type: ignore[arg-type]

    def done() -> bool:
        return any(isinstance(e, LookupDone) and e.lookup_id == lid for _, e in net.timed_events(who)[mark:])

    if not net.run_until(done, max_time=120.0):
        raise SystemExit(f"lookup {lid} at {who} did not finish")
    evs = [(w, e) for w, e in net.timed_events(who)[mark:] if getattr(e, "lookup_id", None) == lid]
    last_at, last = evs[-1]
    assert isinstance(last, LookupDone)
    return last, [e for _, e in evs if isinstance(e, ItemFound)], last_at - t0


def lookups(net: SimNetwork, alive: list[Addr], count: int, rng: random.Random) -> dict[str, float]:
    ok = 0
    stored: list[int] = []
    messages: list[int] = []
    latency: list[float] = []
    for i in range(count):
        seed = rng.randbytes(32)
        item = sign_mutable(seed, {b"ih": rng.randbytes(20)}, rng.randrange(1, 1 << 40), b"v%d" % i)
        putter, getter = rng.sample(alive, 2)
        done, _, _ = _run(net, putter, lambda n, now, it=item: n.start_put_item(it, now))
        stored.append(done.announced_to)
        done, found, took = _run(
            net, getter, lambda n, now, it=item: n.start_get_item(it.target, now, salt=it.salt)
        )
        ok += bool(found) and found[-1].item == item
        messages.append(done.queries_sent + done.nodes_responded)
        latency.append(took)
    latency.sort()
    return {
        "success": ok / count,
        "stored_median": statistics.median(stored),
        "stored_min": min(stored),
        "messages_median": statistics.median(messages),
        "latency_median": statistics.median(latency),
        "latency_p95": latency[int(0.95 * (len(latency) - 1))],
    }


def verify_rate(seconds: float = 1.0) -> float:
    item = sign_mutable(bytes(32), b"x" * 900, 1, b"salt")
    assert item.key is not None and item.sig is not None
    buf = signature_buffer(item.salt, item.seq, item.value)
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(100):
            verify_signature(item.key, item.sig, buf)
        n += 100
    return n / (time.perf_counter() - t0)


def store_memory(config: DhtConfig) -> tuple[int, int]:
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    store = ItemStore(config)
    for i in range(config.max_items * 2):
        item = sign_mutable(i.to_bytes(32, "big"), b"x" * 990, 1)
        args = krpc.PutArgs(b"t", item.value, item.key, b"", 1, item.sig, None)
        store.put(args, f"10.{i >> 8 & 255}.{i & 255}.1", 0.0)
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return len(store), used


def reflection(config: DhtConfig) -> list[tuple[str, int, int, int, float]]:
    nid = b"\x42" * 20
    floods = {
        "not a query (15 B)": b"d1:t2:aa1:y1:qe",
        "bad find_node target": krpc.encode_query(b"aa", b"find_node", {b"id": nid, b"target": b"abc"}),
        "unknown method": krpc.encode_query(b"aa", b"x", {b"id": nid}),
        "valid ping": krpc.encode_query(b"aa", b"ping", {b"id": nid}),
    }
    rows = []
    span = 3.0
    for name, data in floods.items():
        node = DhtNode(config, now=0.0, rng=random.Random(1))
        node.admit_query = RateLimiter(config.incoming_rate_per_source, config.incoming_burst, 100).allow
        replies = out = 0
        for i in range(3000):
            node.receive_datagram(data, ("10.9.9.9", 53), 1.0 + i * span / 3000)
            for d, _ in node.datagrams_to_send():
                replies += 1
                out += len(d)
        budget = config.incoming_burst + config.incoming_rate_per_source * span
        rows.append((name, len(data), replies, out, budget))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--items", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    config = DhtConfig(bootstrap=())
    lines = [f"p2pshare BEP 44 items and DHT reflection ({time.strftime('%Y-%m-%d %H:%M')})", TARGETS]
    failed = False

    rng = random.Random(args.seed)
    net, addrs = build(args.nodes, rng, replace(config))
    net.run_for(1.0)
    for label, dead in (("all alive", 0.0), ("30% dead", 0.3)):
        for a in rng.sample(addrs, int(dead * len(addrs))):
            net.kill(a)
        alive = [a for a in addrs if a not in net.dead]
        r = lookups(net, alive, args.items, rng)
        failed |= r["success"] < 0.97
        lines.append(
            f"nodes={args.nodes} {label:9s} items={args.items} get success={r['success']:.1%}  "
            f"stored on median={r['stored_median']:.0f} min={r['stored_min']} nodes  "
            f"get messages median={r['messages_median']:.0f}  "
            f"get time median={r['latency_median']:.3f}s p95={r['latency_p95']:.3f}s"
        )
    rate = verify_rate()
    lines.append(f"ed25519 verify: {rate:,.0f} signatures/s on one core (one per put received)")
    count, used = store_memory(config)
    failed |= used > 2 * 1024 * 1024
    lines.append(
        f"store: {count} items of 1000 bytes (max_items={config.max_items}) hold {used / 1024:.0f} KiB "
        f"({used / max(count, 1):.0f} B per item)"
    )
    lines.append("reflection: 3,000 queries from one address in 3 s (rate limit 20/s, burst 40)")
    for name, size, replies, out, budget in reflection(config):
        amp = out / (size * 3000)
        failed |= amp > 1 or replies > budget
        lines.append(
            f"  {name:22s} {size:3d} B each: {replies:4d} replies (budget {budget:.0f}), "
            f"{out:6d} B back for {size * 3000:6d} B in, amplification {amp:.3f}"
        )
    text = "\n".join(lines)
    print(text)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(text + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
