"""DHT reflection (issue 12, item 7): a flood from one address gets no amplified, unbounded answer."""

from __future__ import annotations

import pytest

from p2pshare.core.dht import krpc
from p2pshare.core.dht.node import DhtNode
from p2pshare.io.dht_endpoint import RateLimiter
from tests.core.dht.test_node import CFG, make

VICTIM = ("10.9.9.9", 53)
N = 3000
SPAN = 3.0  #: seconds the flood lasts (one datagram per millisecond)
NID = bytes([0x42]) * 20

FLOODS = {
    # Not sound query envelopes: garbage that must get no answer at all.
    "no_args": b"d1:q4:ping1:t2:aa1:y1:qe",
    "short_id": b"d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe",
    "empty_args": b"d1:ade1:q1:x1:t1:a1:y1:qe",
    "tiny": b"d1:t2:aa1:y1:qe",
    # Sound envelopes with bad arguments: a 203/204 each, but within the budget.
    "bad_target": krpc.encode_query(b"aa", b"find_node", {b"id": NID, b"target": b"abc"}),
    "unknown_method": krpc.encode_query(b"aa", b"x", {b"id": NID}),
    "bad_put": krpc.encode_query(b"aa", b"put", {b"id": NID, b"token": b"t"}),
    # Well-formed queries: answered, within the budget.
    "ping": krpc.encode_query(b"aa", b"ping", {b"id": NID}),
}


def flood(data: bytes, node: DhtNode) -> tuple[int, int]:
    """Send N copies of ``data`` from VICTIM over SPAN seconds; replies and bytes sent back."""
    replies = out_bytes = 0
    for i in range(N):
        node.receive_datagram(data, VICTIM, 1.0 + i * SPAN / N)
        for d, addr in node.datagrams_to_send():
            assert addr == VICTIM
            replies += 1
            out_bytes += len(d)
    return replies, out_bytes


def limited_node() -> DhtNode:
    node = make(CFG)
    node.admit_query = RateLimiter(CFG.incoming_rate_per_source, CFG.incoming_burst, 100).allow
    return node


@pytest.mark.parametrize("kind", sorted(FLOODS))
def test_flood_from_one_address_is_bounded(kind: str) -> None:
    """N queries of any kind from one address get at most the rate limit's replies, never amplified."""
    data = FLOODS[kind]
    replies, out_bytes = flood(data, limited_node())
    budget = CFG.incoming_burst + CFG.incoming_rate_per_source * SPAN
    assert replies <= budget, (kind, replies, budget)
    assert out_bytes <= len(data) * N, (kind, out_bytes)


@pytest.mark.parametrize("kind", ["no_args", "short_id", "empty_args", "tiny"])
def test_garbage_gets_no_answer_even_without_a_limiter(kind: str) -> None:
    """A datagram that is not a sound query envelope is never answered."""
    node = make(CFG)
    assert flood(FLOODS[kind], node) == (0, 0)
    assert node.stats["malformed"] == N


def test_error_replies_never_exceed_the_query() -> None:
    """Each error reply is no larger than the query that provoked it (a smaller one is left unanswered)."""
    node = make(CFG)
    for data in (FLOODS["bad_target"], FLOODS["unknown_method"], FLOODS["bad_put"]):
        node.receive_datagram(data, VICTIM, 1.0)
        errors = [d for d, _ in node.datagrams_to_send() if b"1:y1:e" in d]
        assert len(errors) == 1 and len(errors[0]) <= len(data)
    # With a long version string, a 204 would be larger than the query: it is not sent.
    wordy = DhtNode(CFG, now=0.0, node_id=bytes(20), version=b"V" * 40)
    wordy.receive_datagram(FLOODS["unknown_method"], VICTIM, 1.0)
    out = [d for d, _ in wordy.datagrams_to_send() if b"1:y1:e" in d]
    assert out == [] and wordy.stats["errors_suppressed"] == 1


def test_verification_ping_takes_a_token_too() -> None:
    """The ping that verifies a new querier counts against that querier's budget."""
    node = make(CFG)
    calls: list[str] = []

    def admit(ip: str, now: float) -> bool:
        calls.append(ip)
        return len(calls) <= 1  # one token: the reply, none left for the ping

    node.admit_query = admit
    node.receive_datagram(FLOODS["ping"], VICTIM, 1.0)
    sent = node.datagrams_to_send()
    assert len(sent) == 1 and b"1:y1:r" in sent[0][0] and calls == [VICTIM[0], VICTIM[0]]
