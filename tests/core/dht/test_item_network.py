"""BEP 44 get and put lookups across many sans-I/O nodes on the virtual-clock network."""

from __future__ import annotations

import random
from collections.abc import Callable

from p2pshare.core.dht.events import ItemFound, LookupDone
from p2pshare.core.dht.items import Item, _Stored, immutable_item, sign_mutable
from p2pshare.core.dht.krpc import Addr
from p2pshare.core.dht.node import DhtNode
from p2pshare.core.dht.sim import SimNetwork
from tests.core.dht.test_network import build

SEED = bytes(range(32))


def run(net: SimNetwork, addr: Addr, start: Callable[[DhtNode, float], int]) -> tuple[LookupDone, list[Item]]:
    """Run one lookup to its end; its LookupDone and the items it reported, in order."""
    lid = net.call(addr, start)

    def done() -> bool:
        return any(isinstance(e, LookupDone) and e.lookup_id == lid for e in net.events(addr))

    assert net.run_until(done, max_time=60.0), "lookup did not finish within 60 s of virtual time"
    evs = [e for e in net.events(addr) if getattr(e, "lookup_id", None) == lid]
    last = evs[-1]
    assert isinstance(last, LookupDone)
    return last, [e.item for e in evs if isinstance(e, ItemFound)]


def put(net: SimNetwork, addr: Addr, item: Item, cas: int | None = None) -> LookupDone:
    done, _ = run(net, addr, lambda n, now: n.start_put_item(item, now, cas=cas))
    return done


def get(net: SimNetwork, addr: Addr, target: bytes, salt: bytes = b"") -> Item | None:
    _, found = run(net, addr, lambda n, now: n.start_get_item(target, now, salt=salt))
    return found[-1] if found else None


def holders(net: SimNetwork, addrs: list[Addr], target: bytes) -> int:
    return sum(net.node(a).items.get(target, net.now) is not None for a in addrs)


def test_immutable_item_put_by_one_node_is_got_by_another() -> None:
    """An immutable put lands on k nodes and another node's get returns the same value."""
    net, addrs = build(60, seed=11)
    item = immutable_item({b"name": b"photo.jpg", b"size": 12345})
    done = put(net, addrs[5], item)
    assert done.kind == "put_item" and done.announced_to >= 6
    assert holders(net, addrs, item.target) == done.announced_to
    assert get(net, addrs[40], item.target) == item


def test_immutable_get_stops_at_the_first_verified_item() -> None:
    """A get for an immutable item ends as soon as one verified copy arrives."""
    net, addrs = build(60, seed=12)
    item = immutable_item(b"stop early")
    put(net, addrs[3], item)
    done, found = run(net, addrs[50], lambda n, now: n.start_get_item(item.target, now))
    assert found == [item] and done.nodes_responded < 16


def test_newest_mutable_version_wins() -> None:
    """After puts of seq 1 then 2, a get returns seq 2; nodes holding seq 1 refuse to go back."""
    net, addrs = build(60, seed=13)
    v1, v2 = sign_mutable(SEED, b"v1", 1, b"share"), sign_mutable(SEED, b"v2", 2, b"share")
    assert put(net, addrs[1], v1).announced_to >= 6
    assert put(net, addrs[2], v2).announced_to >= 6
    got = get(net, addrs[30], v2.target, b"share")
    assert got == v2
    assert put(net, addrs[3], v1).announced_to == 0  # every holder answers 302


def test_get_without_the_right_salt_finds_nothing() -> None:
    """A salted item is not returned to a lookup that gives the wrong salt (it cannot verify)."""
    net, addrs = build(40, seed=14)
    item = sign_mutable(SEED, b"v", 1, b"right")
    put(net, addrs[1], item)
    assert get(net, addrs[20], item.target, b"wrong") is None
    assert get(net, addrs[20], item.target, b"right") == item


def test_forged_newer_item_is_ignored() -> None:
    """A node serving a higher seq with a bad signature is ignored; the valid item is returned."""
    net, addrs = build(60, seed=15)
    good = sign_mutable(SEED, b"good", 3)
    put(net, addrs[1], good)
    forged = Item(b"6:forged", good.key, b"", 99, bytes(64))
    liars = [a for a in addrs if net.node(a).items.get(good.target, net.now) is not None][:3]
    for a in liars:
        store = net.node(a).items
        store._items[good.target] = _Stored(forged, "x", net.now + 7200)
    assert get(net, addrs[45], good.target) == good


def test_cas_put_goes_through_only_when_it_matches() -> None:
    """A put with the stored seq as cas replaces the item; every holder refuses a stale cas (301)."""
    net, addrs = build(50, seed=16)
    put(net, addrs[1], sign_mutable(SEED, b"a", 1))
    b = sign_mutable(SEED, b"b", 2)
    assert put(net, addrs[2], b, cas=1).announced_to >= 6
    with_b = [a for a in addrs if net.node(a).items.get(b.target, net.now) == b]
    done = put(net, addrs[3], sign_mutable(SEED, b"c", 3), cas=1)
    # cas goes only to nodes that said they hold the item: those refuse, newcomers may take it.
    assert all(net.node(a).items.get(b.target, net.now) == b for a in with_b)
    assert done.announced_to < len(with_b)
    got = get(net, addrs[40], b.target)
    assert got is not None and got.seq in (2, 3)


def test_item_lookups_survive_loss() -> None:
    """With 10% loss and a fifth of the nodes dead, puts and gets of mutable items still work."""
    net, addrs = build(100, seed=17, loss=0.1)
    rng = random.Random(18)
    for a in rng.sample(addrs[1:], 20):
        net.kill(a)
    alive = [a for a in addrs if a not in net.dead]
    ok = 0
    for i in range(6):
        item = sign_mutable(SEED, i, i + 1, b"%d" % i)
        a, b = rng.sample(alive, 2)
        put(net, a, item)
        ok += get(net, b, item.target, item.salt) == item
    assert ok >= 5
