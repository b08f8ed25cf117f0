"""BEP 44 get and put as one sans-I/O node answers them, datagram by datagram."""

from __future__ import annotations

import random
from typing import Any

import pytest

from p2pshare.core import bencode
from p2pshare.core.dht import krpc
from p2pshare.core.dht.events import ItemFound
from p2pshare.core.dht.items import Item, immutable_item, mutable_target, sign_mutable
from p2pshare.core.dht.node import DhtNode
from p2pshare.errors import LocalProtocolError
from tests.core.dht.test_node import PEER, make, only_reply, query

SEED = bytes(range(32))


def token_for(node: DhtNode, target: bytes, addr: tuple[str, int] = PEER, now: float = 1.0) -> bytes:
    node.receive_datagram(query(b"get", {b"target": target}, tid=b"g0"), addr, now)
    tok = only_reply(node, addr)[b"r"][b"token"]
    assert isinstance(tok, bytes)
    return tok


def do_put(
    node: DhtNode, item: Item, *, cas: int | None = None, token: bytes | None = None, now: float = 2.0
) -> dict[bytes, Any]:
    args: dict[bytes, Any] = {b"token": token or token_for(node, item.target), **item.put_args()}
    if cas is not None:
        args[b"cas"] = cas
    node.receive_datagram(query(b"put", args, tid=b"p1"), PEER, now)
    return only_reply(node)


def do_get(node: DhtNode, target: bytes, *, seq: int | None = None, now: float = 3.0) -> dict[bytes, Any]:
    args: dict[bytes, Any] = {b"target": target}
    if seq is not None:
        args[b"seq"] = seq
    node.receive_datagram(query(b"get", args, tid=b"g1"), ("10.0.0.7", 9), now)
    r = only_reply(node, ("10.0.0.7", 9))[b"r"]
    assert isinstance(r, dict)
    return r


def test_get_of_unknown_target_gives_token_and_nodes_only() -> None:
    """get for a target we do not hold answers with a token (and nodes), no value."""
    r = do_get(make(), bytes(20))
    assert b"token" in r and b"v" not in r and b"k" not in r


def test_immutable_put_then_get() -> None:
    """An immutable item put with a valid token is returned by get, with no key or signature."""
    node = make()
    item = immutable_item({b"a": [1, 2]})
    assert do_put(node, item)[b"y"] == b"r"
    r = do_get(node, item.target)
    assert r[b"v"] == {b"a": [1, 2]} and b"sig" not in r and node.stats["items_stored"] == 1


def test_mutable_put_then_get_returns_key_seq_sig_not_salt() -> None:
    """A mutable item comes back with k, seq, sig and v; the salt is never sent back."""
    node = make()
    item = sign_mutable(SEED, b"hello", 7, b"salt")
    assert do_put(node, item)[b"y"] == b"r"
    r = do_get(node, mutable_target(item.key or b"", b"salt"))
    assert (r[b"k"], r[b"seq"], r[b"sig"], r[b"v"]) == (item.key, 7, item.sig, b"hello")
    assert b"salt" not in r


def test_get_with_seq_omits_value_when_not_newer() -> None:
    """get with seq >= the stored seq returns only seq; with a lower seq, the whole item."""
    node = make()
    item = sign_mutable(SEED, b"hello", 7)
    do_put(node, item)
    r = do_get(node, item.target, seq=7)
    assert r[b"seq"] == 7 and b"v" not in r and b"sig" not in r
    assert do_get(node, item.target, seq=6)[b"v"] == b"hello"


def test_put_with_bad_token_is_203() -> None:
    """put with a token we never issued is refused with 203 and stores nothing."""
    node = make()
    msg = do_put(node, immutable_item(b"x"), token=b"forged")
    assert msg[b"e"][0] == 203 and len(node.items) == 0


@pytest.mark.parametrize(
    ("second", "cas", "code"),
    [
        (sign_mutable(SEED, b"old", 1), None, 302),
        (sign_mutable(SEED, b"other", 5), None, 302),
        (sign_mutable(SEED, b"new", 6), 4, 301),
    ],
)
def test_store_errors_reach_the_putter(second: Item, cas: int | None, code: int) -> None:
    """A put refused by the store rules gets the BEP 44 error code back (302 lower seq, 301 cas)."""
    node = make()
    assert do_put(node, sign_mutable(SEED, b"first", 5))[b"y"] == b"r"
    msg = do_put(node, second, cas=cas, now=4.0)
    assert msg[b"y"] == b"e" and msg[b"e"][0] == code


def test_invalid_signature_gets_206_and_big_value_205() -> None:
    """A forged signature gets 206; a value of more than 1000 bytes gets 205."""
    node = make()
    forged = Item(b"5:hello", sign_mutable(SEED, b"x", 1).key, b"", 1, bytes(64))
    assert do_put(node, forged)[b"e"][0] == 206
    big = immutable_item(b"x" * 1100)
    args = {b"token": token_for(node, big.target), b"v": b"x" * 1100}
    node.receive_datagram(query(b"put", args, tid=b"p9"), PEER, 2.0)
    assert only_reply(node)[b"e"][0] == 205


def test_long_salt_gets_207() -> None:
    """A salt over 64 bytes gets 207."""
    assert do_put(make(), sign_mutable(SEED, b"x", 1, b"s" * 65))[b"e"][0] == 207


def test_items_expire_in_maintenance() -> None:
    """Two hours after the last put, upkeep removes the item and get no longer returns it."""
    node = make()
    item = immutable_item(b"x")
    do_put(node, item)
    node.handle_timer(2.0 + 7200.0 + 10.0)
    assert len(node.items) == 0 and b"v" not in do_get(node, item.target, now=7300.0)


def test_start_put_refuses_unsigned_or_big_items() -> None:
    """Putting an item with a bad signature or an oversized value is our own bug."""
    node = make()
    with pytest.raises(LocalProtocolError):
        node.start_put_item(Item(b"5:hello", bytes(32), b"", 1, bytes(64)), 0.0)
    with pytest.raises(LocalProtocolError):
        node.start_put_item(immutable_item(b"x" * 1000), 0.0)


def test_get_answer_fits_max_packet() -> None:
    """The largest item with a full node list still fits in one max_packet datagram."""
    node = make()
    for i in range(8):
        node.table.heard_from(bytes([i + 1]) * 20, (f"10.0.1.{i}", 6881), 0.0, responded=True)
    item = sign_mutable(SEED, b"x" * 996, 1, b"s" * 64)
    assert len(item.value) == 1000 and do_put(node, item)[b"y"] == b"r"
    node.receive_datagram(query(b"get", {b"target": item.target}, tid=b"g1"), PEER, 3.0)
    (data, _), *_ = [(d, a) for d, a in node.datagrams_to_send() if bencode.decode(d)[b"y"] == b"r"]
    assert len(data) <= node.config.max_packet
    assert isinstance(krpc.decode_message(data, max_packet=node.config.max_packet), krpc.Response)


def test_get_lookup_survives_mutated_answers() -> None:
    """A get lookup fed thousands of mutated answers never raises and reports only verified items."""
    rng = random.Random(5)
    good = sign_mutable(SEED, {b"ih": bytes(20)}, 4)
    bodies = [
        {b"id": bytes([1]) * 20, b"token": b"t", **good.put_args()},
        {b"id": bytes([1]) * 20, b"token": b"t", b"v": b"immutable?", b"nodes": bytes(26)},
        {b"id": bytes([1]) * 20, b"seq": 9, b"nodes": b""},
    ]
    reported: list[Item] = []
    for i in range(3000):
        node = make()
        boot = ("10.0.5.1", 6881)
        node.bootstrap([boot], 0.0)
        node.datagrams_to_send()
        node.next_event()
        lid = node.start_get_item(good.target, 1.0)
        sent = [bencode.decode(d) for d, a in node.datagrams_to_send() if a == boot]
        tid = sent[-1][b"t"]
        raw = bytearray(krpc.encode_response(tid, bodies[i % 3]))
        for _ in range(rng.randrange(0, 4)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        node.receive_datagram(bytes(raw), boot, 1.1)
        while (ev := node.next_event()) is not None:
            if isinstance(ev, ItemFound) and ev.lookup_id == lid:
                reported.append(ev.item)
    assert reported and all(it == good for it in reported)
