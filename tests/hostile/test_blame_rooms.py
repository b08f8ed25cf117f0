"""The two blame rooms on their own: SmartBan (who sent a bad block) and MetadataClaims (whose size lied)."""

from __future__ import annotations

import hashlib
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pshare.core.wire.metadata import METADATA_PIECE_SIZE, MetadataComplete
from p2pshare.engine.metadata_claims import MetadataClaims, MetadataLiars
from p2pshare.engine.smart_ban import SmartBan
from p2pshare.errors import RemoteProtocolError, Violation

B = 16384


def _digests(blocks: list[bytes]) -> list[bytes]:
    return [hashlib.sha1(b).digest() for b in blocks]


def test_a_failed_piece_blames_only_the_peer_whose_block_differs_once_the_piece_verifies() -> None:
    """After a mixed piece fails and later verifies, only the sender of the differing block is named."""
    ban: SmartBan[str] = SmartBan(B, max_pieces=4)
    good = [os.urandom(B) for _ in range(4)]
    bad = list(good)
    bad[2] = os.urandom(B)
    for n, peer in enumerate(["honest", "honest", "liar", "honest"]):
        ban.block_received(7, n * B, peer)
    assert ban.piece_failed(7, _digests(bad)) == {"honest", "liar"}
    assert ban.watching(7)
    for n in range(4):
        ban.block_received(7, n * B, "honest")
    assert ban.piece_passed(7, _digests(good)) == {"liar"}
    assert not ban.watching(7) and ban.failed_pieces == 0 and ban.tracked_pieces == 0


def test_a_piece_that_verifies_without_a_failure_blames_nobody() -> None:
    """A piece with no failed copy on record names no liar and leaves nothing behind."""
    ban: SmartBan[str] = SmartBan(B, max_pieces=4)
    ban.block_received(1, 0, "a")
    assert ban.piece_passed(1, _digests([b"x" * B])) == set()
    assert ban.tracked_pieces == 0


def test_failed_piece_records_are_bounded_and_the_oldest_goes_first() -> None:
    """No more than max_pieces failed pieces are remembered; the oldest record is forgotten."""
    ban: SmartBan[str] = SmartBan(B, max_pieces=3)
    for piece in range(10):
        ban.block_received(piece, 0, "p")
        ban.piece_failed(piece, _digests([b"x" * B]))
    assert ban.failed_pieces == 3
    assert [p for p in range(10) if ban.watching(p)] == [7, 8, 9]


@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from("abc"), st.booleans()), max_size=40))
def test_smart_ban_names_exactly_the_senders_of_wrong_blocks(sends: list[tuple[int, str, bool]]) -> None:
    """Whatever the order of sends, the liars named are exactly the peers whose last block sent
    in the failed copy differed from the good data."""
    ban: SmartBan[str] = SmartBan(B, max_pieces=2)
    good = [bytes([n]) * 8 for n in range(4)]
    received = list(good)
    last: dict[int, tuple[str, bool]] = {}
    for block, peer, lie in sends:
        ban.block_received(0, block * B, peer)
        received[block] = b"lie" if lie else good[block]
        last[block] = (peer, lie)
    ban.piece_failed(0, _digests(received))
    assert ban.piece_passed(0, _digests(good)) == {peer for peer, lie in last.values() if lie}


def _claims() -> MetadataClaims[str]:
    return MetadataClaims(
        b"\x01" * 20, max_size=8 << 20, max_sizes=4, request_timeout=15.0, max_in_flight_per_peer=4
    )


def test_each_size_is_fetched_only_from_the_peers_that_claimed_it() -> None:
    """A peer claiming 8 MiB is asked only for its own size; the honest size completes beside it."""
    raw = os.urandom(40_000)
    claims: MetadataClaims[str] = MetadataClaims(
        hashlib.sha1(raw).digest(),
        max_size=8 << 20,
        max_sizes=4,
        request_timeout=15.0,
        max_in_flight_per_peer=4,
    )
    assert claims.claim("liar", 8 << 20) and claims.claim("honest", len(raw))
    assert claims.next_requests("liar", 0.0) == [0, 1, 2, 3]
    pieces = claims.next_requests("honest", 0.0)
    assert pieces == [0, 1, 2]
    outcome = None
    for p in pieces:
        chunk = raw[p * METADATA_PIECE_SIZE : (p + 1) * METADATA_PIECE_SIZE]
        outcome = claims.on_data("honest", p, chunk, len(raw))
    assert outcome == MetadataComplete(raw)
    assert claims.liars(len(raw)) == ["liar"]


def test_a_total_size_other_than_the_senders_own_claim_is_its_error_alone() -> None:
    """A piece whose total_size differs from its sender's claim raises for that sender only."""
    claims = _claims()
    claims.claim("a", 1000)
    claims.claim("b", 2000)
    with pytest.raises(RemoteProtocolError) as err:
        claims.on_data("a", 0, b"x" * 2000, 2000)
    assert err.value.kind is Violation.BAD_METADATA
    assert claims.claims == {"a": 1000, "b": 2000}


def test_a_copy_from_one_peer_that_fails_the_hash_names_it_and_drops_its_size() -> None:
    """A wrong copy sent by one peer alone names that peer, and its size goes when nobody else claims it."""
    claims = _claims()
    claims.claim("liar", 20_000)
    claims.claim("honest", 417)
    claims.next_requests("liar", 0.0)
    claims.on_data("liar", 0, os.urandom(METADATA_PIECE_SIZE), 20_000)
    outcome = claims.on_data("liar", 1, os.urandom(20_000 - METADATA_PIECE_SIZE), 20_000)
    assert outcome == MetadataLiars(20_000, frozenset({"liar"}))
    assert set(claims.fetchers) == {417} and claims.claims == {"honest": 417}


def test_a_mixed_copy_that_fails_is_fetched_again_one_claimant_at_a_time() -> None:
    """After a copy with two senders fails, only one claimant at a time is asked for that size."""
    claims = _claims()
    size = 2 * METADATA_PIECE_SIZE
    claims.claim("a", size)
    claims.claim("b", size)
    claims.fetchers[size].max_in_flight_per_peer = 1
    assert claims.next_requests("a", 0.0) == [0]
    assert claims.next_requests("b", 0.0) == [1]
    claims.on_data("a", 0, os.urandom(METADATA_PIECE_SIZE), size)
    outcome = claims.on_data("b", 1, os.urandom(METADATA_PIECE_SIZE), size)
    assert outcome == MetadataLiars(size, frozenset())
    assert claims.next_requests("a", 1.0) == [0]
    assert claims.next_requests("b", 1.0) == []


def test_sizes_past_the_limit_are_ignored_and_absurd_ones_refused() -> None:
    """A fifth distinct size is ignored (not fetched), and a size past max_size is a protocol error."""
    claims = _claims()
    for n in range(4):
        assert claims.claim(f"p{n}", 1000 + n)
    assert not claims.claim("p9", 5000)
    assert claims.next_requests("p9", 0.0) == []
    with pytest.raises(RemoteProtocolError):
        claims.claim("big", (8 << 20) + 1)
    claims.forget_peer("p0")
    assert claims.claim("p9", 5000)
