"""Routing table: buckets, splits, node states, replacements and refresh."""

from __future__ import annotations

import random
from dataclasses import replace

from p2pshare.config import DhtConfig
from p2pshare.core.dht.ids import id_to_int, int_to_id
from p2pshare.core.dht.routing import NodeState, RoutingTable

CFG = replace(DhtConfig(), k=8, node_max_failures=3, replacement_cache=4)
OWN = bytes(20)  # our id is 0: every split happens at the low end


def nid(value: int) -> bytes:
    return int_to_id(value)


def addr(i: int) -> tuple[str, int]:
    return (f"10.0.{i >> 8}.{i & 255}", 6881)


def test_first_k_nodes_fit_in_one_bucket() -> None:
    """Up to k nodes live in the single initial bucket."""
    table = RoutingTable(OWN, CFG, 0.0)
    for i in range(8):
        table.heard_from(nid((1 << 159) + i), addr(i), 0.0, responded=True)
    assert len(table) == 8 and len(table.buckets) == 1


def test_only_the_bucket_holding_our_id_splits() -> None:
    """A full far bucket does not split; newcomers there wait in the replacement cache."""
    table = RoutingTable(OWN, CFG, 0.0)
    for i in range(20):  # all in the upper half: far from id 0
        table.heard_from(nid((1 << 159) + i), addr(i), 0.0, responded=True)
    far = table.bucket_for(1 << 159)
    assert len(far.nodes) == 8 and len(far.replacements) == 4
    assert not far.covers(0) and len(table) == 8
    # Near nodes still get in: the bucket holding our id splits for them.
    for i in range(9):
        table.heard_from(nid(1 << (158 - i)), addr(100 + i), 0.0, responded=True)
    assert len(table) == 17 and len(table.buckets) > 2


def test_nodes_that_never_answered_are_not_inserted() -> None:
    """A node that only queried us is not added (it must answer a query first)."""
    table = RoutingTable(OWN, CFG, 0.0)
    table.heard_from(nid(5), addr(5), 0.0, responded=False)
    assert len(table) == 0


def test_states_follow_activity_and_failures() -> None:
    """Good within 15 min of an answer, questionable after, bad after repeated failures."""
    table = RoutingTable(OWN, CFG, 0.0)
    table.heard_from(nid(7), addr(7), 0.0, responded=True)
    entry = table.get(nid(7))
    assert entry is not None
    assert entry.state(899.0, CFG) is NodeState.GOOD
    assert entry.state(901.0, CFG) is NodeState.QUESTIONABLE
    table.heard_from(nid(7), addr(7), 950.0, responded=False)  # it queried us: good again
    assert entry.state(960.0, CFG) is NodeState.GOOD
    for _ in range(3):
        table.failed(addr(7), 970.0)
    assert entry.state(970.0, CFG) is NodeState.BAD
    assert table.closest(nid(7), 8, 970.0) == []


def test_bad_node_is_replaced_from_cache() -> None:
    """When a node goes bad, the freshest replacement takes its place."""
    table = RoutingTable(OWN, CFG, 0.0)
    for i in range(9):
        table.heard_from(nid((1 << 159) + i), addr(i), float(i), responded=True)
    assert table.get(nid((1 << 159) + 8)) is None
    for _ in range(3):
        table.failed(addr(0), 20.0)
    assert table.get(nid(1 << 159)) is None
    assert table.get(nid((1 << 159) + 8)) is not None and len(table) == 8


def test_full_bucket_asks_to_ping_a_questionable_node() -> None:
    """A newcomer to a full bucket of questionable nodes gets one of them pinged."""
    table = RoutingTable(OWN, CFG, 0.0)
    for i in range(8):
        table.heard_from(nid((1 << 159) + i), addr(i), 0.0, responded=True)
    to_ping = table.heard_from(nid((1 << 159) + 99), addr(99), 2000.0, responded=True)
    assert to_ping is not None and to_ping.addr in {addr(i) for i in range(8)}
    # Not the same node again right away.
    again = table.heard_from(nid((1 << 159) + 98), addr(98), 2000.0, responded=True)
    assert again is None or again is not to_ping


def test_closest_is_sorted_by_xor_distance() -> None:
    """closest() returns nodes nearest the target first."""
    rng = random.Random(4)
    table = RoutingTable(OWN, CFG, 0.0)
    ids = [rng.randbytes(20) for _ in range(200)]
    for i, n in enumerate(ids):
        table.heard_from(n, addr(i), 0.0, responded=True)
    target = rng.randbytes(20)
    got = table.closest(target, 8, 0.0)
    t = id_to_int(target)
    dists = [e.id_int ^ t for e in got]
    assert dists == sorted(dists)
    in_table = sorted(e.id_int ^ t for e in table)
    assert dists == in_table[:8]


def test_same_id_from_new_address_is_ignored_and_moved_address_replaces() -> None:
    """An id seen from another address keeps the old entry; an address with a new id replaces it."""
    table = RoutingTable(OWN, CFG, 0.0)
    table.heard_from(nid(9), addr(9), 0.0, responded=True)
    table.heard_from(nid(9), addr(10), 1.0, responded=True)
    entry = table.get(nid(9))
    assert entry is not None and entry.addr == addr(9)
    table.heard_from(nid(11), addr(9), 2.0, responded=True)
    assert table.get(nid(9)) is None and table.get(nid(11)) is not None


def test_idle_buckets_are_due_for_refresh_once() -> None:
    """A bucket unchanged for 15 minutes yields a random target inside it, then counts as fresh."""
    table = RoutingTable(OWN, CFG, 0.0)
    table.heard_from(nid(1 << 158), addr(1), 0.0, responded=True)
    rng = random.Random(1)
    assert table.buckets_to_refresh(100.0, rng) == []
    targets = table.buckets_to_refresh(901.0, rng)
    assert len(targets) == len(table.buckets)
    b = table.buckets[0]
    assert all(b.lo <= id_to_int(t) < b.hi for t in targets[:1])
    assert table.buckets_to_refresh(902.0, rng) == []


def test_questionable_nodes_are_offered_for_ping_least_recent_first() -> None:
    """Upkeep pings the questionable nodes seen longest ago, each once per query timeout."""
    table = RoutingTable(OWN, CFG, 0.0)
    for i in range(5):
        table.heard_from(nid(100 + i), addr(i), float(i), responded=True)
    got = table.questionable_nodes(1000.0, 2)
    assert [e.addr for e in got] == [addr(0), addr(1)]
    assert [e.addr for e in table.questionable_nodes(1000.0, 2)] == [addr(2), addr(3)]
