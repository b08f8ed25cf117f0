"""A single sans-I/O DHT node, driven datagram by datagram on a virtual clock."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest

from p2pshare.config import DhtConfig
from p2pshare.core import bencode
from p2pshare.core.dht import krpc
from p2pshare.core.dht.events import ExternalAddressChanged, LookupDone, NodeIdChanged, PeersFound
from p2pshare.core.dht.ids import is_secure_id
from p2pshare.core.dht.node import VERSION, DhtNode
from p2pshare.errors import LocalProtocolError

CFG = DhtConfig(bootstrap=())
ME = ("10.0.0.1", 6881)
PEER = ("10.0.0.2", 7000)
OTHER_ID = bytes([0x80]) + bytes(19)
IH = bytes(range(20))


def make(config: DhtConfig = CFG, node_id: bytes | None = None) -> DhtNode:
    return DhtNode(config, now=0.0, node_id=node_id or bytes(20), rng=random.Random(7))


def query(
    method: bytes, args: dict[bytes, Any], *, tid: bytes = b"q1", sender: bytes = OTHER_ID, ro: bool = False
) -> bytes:
    return krpc.encode_query(tid, method, {b"id": sender, **args}, read_only=ro)


def replies(node: DhtNode) -> list[tuple[dict[bytes, Any], tuple[str, int]]]:
    return [(bencode.decode(d), a) for d, a in node.datagrams_to_send()]


def only_reply(node: DhtNode, addr: tuple[str, int] = PEER) -> dict[bytes, Any]:
    out = [m for m, a in replies(node) if a == addr and m[b"y"] != b"q"]
    assert len(out) == 1, out
    return out[0]


def test_ping_answer_has_ip_and_version() -> None:
    """A ping is answered with our id, the requester's compact address (BEP 42) and our version."""
    node = make()
    node.receive_datagram(query(b"ping", {}), PEER, 1.0)
    msg = only_reply(node)
    assert msg[b"y"] == b"r" and msg[b"t"] == b"q1" and msg[b"r"][b"id"] == bytes(20)
    assert msg[b"ip"] == krpc.pack_addr(PEER) and msg[b"v"] == VERSION


def test_unknown_method_gets_error_204() -> None:
    """A query for an unknown method gets KRPC error 204."""
    node = make()
    node.receive_datagram(query(b"frobnicate", {}), PEER, 1.0)
    msg = only_reply(node)
    assert msg[b"y"] == b"e" and msg[b"e"][0] == 204


def test_malformed_query_gets_error_203() -> None:
    """A query with malformed arguments gets error 203 echoing its transaction id."""
    node = make()
    node.receive_datagram(query(b"find_node", {b"target": b"short"}, tid=b"zz"), PEER, 1.0)
    msg = only_reply(node)
    assert msg[b"e"][0] == 203 and msg[b"t"] == b"zz"


@pytest.mark.parametrize("data", [b"", b"garbage", b"d1:t2:aa1:y1:r1:rdee", b"x" * 5000, b"d1:ad2:id"])
def test_garbage_is_dropped_silently(data: bytes) -> None:
    """Undecodable or oversized datagrams are counted and dropped with no reply."""
    node = make()
    node.receive_datagram(data, PEER, 1.0)
    assert node.datagrams_to_send() == [] and node.stats["malformed"] == 1


def test_find_node_returns_compact_nodes() -> None:
    """find_node answers with up to k compact nodes from the table."""
    node = make()
    for i in range(3):
        node.table.heard_from(bytes([i + 1]) * 20, (f"10.0.1.{i}", 6881), 0.0, responded=True)
    node.receive_datagram(query(b"find_node", {b"target": bytes([2]) * 20}), PEER, 1.0)
    nodes = krpc.unpack_nodes(only_reply(node)[b"r"][b"nodes"])
    assert nodes[0] == (bytes([2]) * 20, ("10.0.1.1", 6881)) and len(nodes) == 3


def test_find_node_want_n6_only_omits_nodes() -> None:
    """BEP 32: an IPv4 node asked only for n6 omits the nodes key."""
    node = make()
    node.receive_datagram(query(b"find_node", {b"target": IH, b"want": [b"n6"]}), PEER, 1.0)
    assert b"nodes" not in only_reply(node)[b"r"]


def announce_with_token(
    node: DhtNode, *, port: int = 5555, implied: bool = False, now: float = 2.0
) -> dict[bytes, Any]:
    node.receive_datagram(query(b"get_peers", {b"info_hash": IH}, tid=b"g1"), PEER, 1.0)
    token = only_reply(node)[b"r"][b"token"]
    args: dict[bytes, Any] = {b"info_hash": IH, b"port": port, b"token": token}
    if implied:
        args[b"implied_port"] = 1
    node.receive_datagram(query(b"announce_peer", args, tid=b"a1"), PEER, now)
    return only_reply(node)


def test_announce_then_get_peers_returns_the_peer() -> None:
    """A peer announced with a valid token is returned to later get_peers queries."""
    node = make()
    assert announce_with_token(node)[b"y"] == b"r"
    node.receive_datagram(query(b"get_peers", {b"info_hash": IH}, tid=b"g2"), ("10.0.0.3", 1), 3.0)
    msg = only_reply(node, ("10.0.0.3", 1))
    assert msg[b"r"][b"values"] == [krpc.pack_addr(("10.0.0.2", 5555))]


def test_implied_port_uses_source_port() -> None:
    """With implied_port the stored port is the datagram's source port."""
    node = make()
    announce_with_token(node, port=1, implied=True)
    assert node.peers.get(IH, 3.0, 10, random.Random(0)) == [PEER]


def test_bad_token_is_refused_with_203() -> None:
    """announce_peer with a token we never issued gets error 203 and stores nothing."""
    node = make()
    node.receive_datagram(
        query(b"announce_peer", {b"info_hash": IH, b"port": 1, b"token": b"forged"}), PEER, 1.0
    )
    assert only_reply(node)[b"e"][0] == 203 and len(node.peers) == 0


def test_token_from_another_ip_is_refused() -> None:
    """A token issued to one IP does not let another IP announce."""
    node = make()
    node.receive_datagram(query(b"get_peers", {b"info_hash": IH}), PEER, 1.0)
    token = only_reply(node)[b"r"][b"token"]
    node.receive_datagram(
        query(b"announce_peer", {b"info_hash": IH, b"port": 1, b"token": token}), ("10.0.0.9", 1), 2.0
    )
    assert only_reply(node, ("10.0.0.9", 1))[b"e"][0] == 203


def test_stored_peers_expire_after_30_minutes() -> None:
    """Announced peers are no longer returned 30 minutes after the announce."""
    node = make()
    announce_with_token(node)
    node.handle_timer(31 * 60.0)
    assert len(node.peers) == 0


def test_querier_is_pinged_before_joining_the_table() -> None:
    """A node that queries us is pinged, and enters the table only once it answers."""
    node = make()
    node.receive_datagram(query(b"ping", {}), PEER, 1.0)
    out = replies(node)
    pings = [m for m, a in out if m[b"y"] == b"q" and m[b"q"] == b"ping" and a == PEER]
    assert len(pings) == 1 and len(node.table) == 0
    resp = krpc.encode_response(pings[0][b"t"], {b"id": OTHER_ID}, ip=ME)
    node.receive_datagram(resp, PEER, 1.1)
    assert node.table.get(OTHER_ID) is not None


def test_read_only_querier_is_not_added() -> None:
    """BEP 43: a query marked ro=1 is answered but its sender is neither pinged nor added."""
    node = make()
    node.receive_datagram(query(b"ping", {}, ro=True), PEER, 1.0)
    out = replies(node)
    assert [m[b"y"] for m, _ in out] == [b"r"] and len(node.table) == 0


def test_read_only_node_answers_nothing_and_marks_queries() -> None:
    """BEP 43: a read-only node ignores queries and sends ro=1 in its own."""
    node = make(replace(CFG, read_only=True))
    node.receive_datagram(query(b"ping", {}), PEER, 1.0)
    assert node.datagrams_to_send() == []
    node.bootstrap([PEER], 1.0)
    ((data, addr),) = node.datagrams_to_send()
    msg = bencode.decode(data)
    assert msg[b"ro"] == 1 and addr == PEER
    with pytest.raises(LocalProtocolError):
        node.start_announce(IH, 1, 1.0)


def test_response_from_wrong_address_is_ignored() -> None:
    """A response whose transaction id matches but comes from another address is dropped."""
    node = make()
    node.add_node(PEER, 0.0)
    ((data, _),) = node.datagrams_to_send()
    tid = bencode.decode(data)[b"t"]
    node.receive_datagram(krpc.encode_response(tid, {b"id": OTHER_ID}), ("10.0.0.66", 7000), 0.1)
    assert len(node.table) == 0 and node.stats["unexpected_responses"] == 1


def test_timeouts_fire_and_count_failures() -> None:
    """An unanswered query times out at query_timeout and the lookup ends."""
    node = make()
    lid = node.bootstrap([PEER], 0.0)
    assert len(node.datagrams_to_send()) == 1
    timer = node.get_timer()
    assert timer is not None and timer <= CFG.query_timeout
    t = 0.0
    for _ in range(10):
        t = node.get_timer() or t
        if t > CFG.query_timeout:
            break
        node.handle_timer(t)
    done = node.next_event()
    assert isinstance(done, LookupDone) and done.lookup_id == lid and done.nodes_responded == 0
    assert node.stats["timeouts"] == 1


def _answer_all(node: DhtNode, now: float, body_for: Any, ip: tuple[str, int] = ME) -> None:
    for data, addr in node.datagrams_to_send():
        msg = bencode.decode(data)
        if msg[b"y"] != b"q":
            continue
        body = body_for(msg, addr)
        if body is not None:
            node.receive_datagram(krpc.encode_response(msg[b"t"], body, ip=ip), addr, now)


def test_get_peers_lookup_reports_peers_and_done() -> None:
    """A get_peers lookup emits PeersFound for values it receives, then LookupDone."""
    node = make()
    others = {(f"10.0.2.{i}", 6881): bytes([i + 1]) * 20 for i in range(4)}
    for addr, nid in others.items():
        node.table.heard_from(nid, addr, 0.0, responded=True)
    lid = node.start_get_peers(IH, 0.0)

    def body(msg: dict[bytes, Any], addr: tuple[str, int]) -> dict[bytes, Any]:
        return {b"id": others[addr], b"token": b"t", b"values": [krpc.pack_addr(("10.9.9.9", 4000))]}

    for step in range(5):
        _answer_all(node, 0.1 * (step + 1), body)
    events = []
    while (ev := node.next_event()) is not None:
        events.append(ev)
    found = [e for e in events if isinstance(e, PeersFound)]
    assert len(found) == 1 and found[0].lookup_id == lid and found[0].peers[0].port == 4000
    assert isinstance(events[-1], LookupDone) and events[-1].peers_found == 1


def test_announce_sends_announce_peer_with_tokens() -> None:
    """An announce lookup ends by sending announce_peer with each node's token."""
    node = make()
    others = {(f"10.0.2.{i}", 6881): bytes([i + 1]) * 20 for i in range(3)}
    for addr, nid in others.items():
        node.table.heard_from(nid, addr, 0.0, responded=True)
    node.start_announce(IH, 6000, 0.0)
    seen: list[dict[bytes, Any]] = []

    def body(msg: dict[bytes, Any], addr: tuple[str, int]) -> dict[bytes, Any]:
        seen.append(msg)
        return {b"id": others[addr], b"token": b"tok-" + addr[0].encode()}

    for step in range(5):
        _answer_all(node, 0.1 * (step + 1), body)
    ann = [m for m in seen if m[b"q"] == b"announce_peer"]
    assert len(ann) == 3 and all(m[b"a"][b"token"].startswith(b"tok-") for m in ann)
    done = [e for e in iter(node.next_event, None) if isinstance(e, LookupDone)]
    assert done and done[0].announced_to == 3


def test_external_ip_vote_gives_secure_id() -> None:
    """Three nodes reporting the same public IP make us adopt it and take a BEP 42 id."""
    node = make(node_id=bytes(20))
    for i in range(3):
        node.add_node((f"10.0.3.{i}", 6881), 0.0)

    def body(msg: dict[bytes, Any], addr: tuple[str, int]) -> dict[bytes, Any]:
        return {b"id": bytes([0x40 + int(addr[0].rsplit(".", 1)[1])]) * 20}

    _answer_all(node, 0.1, body, ip=("124.31.75.21", 6881))
    events = list(iter(node.next_event, None))
    assert ExternalAddressChanged("124.31.75.21") in events
    changed = [e for e in events if isinstance(e, NodeIdChanged)]
    assert changed and is_secure_id(node.node_id, "124.31.75.21") and node.node_id != bytes(20)
    assert len(node.table) == 3  # the table was rebuilt around the new id


def test_loopback_external_ip_keeps_the_id() -> None:
    """An external IP that BEP 42 exempts (loopback) is adopted without changing our id."""
    node = make(node_id=bytes(20))
    for i in range(3):
        node.add_node((f"127.0.0.{i + 2}", 6881), 0.0)
    _answer_all(
        node, 0.1, lambda m, a: {b"id": bytes([int(a[0].rsplit(".", 1)[1])]) * 20}, ip=("127.0.0.1", 1)
    )
    assert node.external_ip == "127.0.0.1" and node.node_id == bytes(20)
