"""Each broken rule raises RemoteProtocolError with the Violation kind that names it."""

from __future__ import annotations

import struct

import pytest

from p2pshare.config import WireLimits
from p2pshare.core.wire import PeerConnection
from p2pshare.core.wire.metadata import MetadataFetcher, decode_metadata_message
from p2pshare.errors import RemoteProtocolError, Violation
from tests.core.wire.wire_helpers import INFO_HASH, PEER_A, PEER_B, Pair, parse_all


def _msg(msg_id: int, payload: bytes = b"") -> bytes:
    return struct.pack(">IB", 1 + len(payload), msg_id) + payload


def _kind(pair: Pair, data: bytes) -> Violation:
    with pytest.raises(RemoteProtocolError) as info:
        pair.to_b(data)
    return info.value.kind


def test_a_piece_outside_the_torrent_is_out_of_range() -> None:
    """A piece message for a piece past the last is Violation.OUT_OF_RANGE (an unasked one is only waste)."""
    pair = Pair(num_pieces=8)
    assert _kind(pair, _msg(7, struct.pack(">II", 8, 0) + b"x")) is Violation.OUT_OF_RANGE


def test_a_have_past_the_last_piece_is_out_of_range() -> None:
    """A have for a piece index the torrent does not have is Violation.OUT_OF_RANGE."""
    pair = Pair(num_pieces=8)
    assert _kind(pair, _msg(4, struct.pack(">I", 8))) is Violation.OUT_OF_RANGE


def test_a_fast_message_without_the_fast_bits_is_not_negotiated() -> None:
    """Have-all from a peer that did not negotiate BEP 6 is Violation.NOT_NEGOTIATED."""
    pair = Pair(a_fast=False, b_fast=False)
    assert _kind(pair, _msg(0x0E)) is Violation.NOT_NEGOTIATED


def test_a_handshake_for_another_torrent_is_wrong_torrent() -> None:
    """A handshake naming another info hash is Violation.WRONG_TORRENT."""
    a = PeerConnection(b"\xff" * 20, PEER_A, initiator=True)
    b = PeerConnection(INFO_HASH, PEER_B, initiator=False)
    b.receive_data(a.handshake_bytes())
    with pytest.raises(RemoteProtocolError) as info:
        b.next_event()
    assert info.value.kind is Violation.WRONG_TORRENT


def test_an_oversized_message_is_too_large() -> None:
    """A length prefix past the limit is Violation.TOO_LARGE, before the body arrives."""
    limits = WireLimits()
    with pytest.raises(RemoteProtocolError) as info:
        parse_all([struct.pack(">IB", limits.max_message_length + 1, 7)], limits)
    assert info.value.kind is Violation.TOO_LARGE


def test_a_request_flood_is_banned_as_a_flood() -> None:
    """More than twice the queue cap of unanswered requests is a banning Violation.FLOOD."""
    limits = WireLimits(max_incoming_requests=2)
    pair = Pair(num_pieces=8, limits=limits)  # b chokes a: every request is owed a reject
    requests = b"".join(_msg(6, struct.pack(">III", 0, i, 1)) for i in range(10))
    with pytest.raises(RemoteProtocolError) as info:
        pair.to_b(requests)
    assert info.value.kind is Violation.FLOOD and info.value.ban


def test_garbage_metadata_messages_are_malformed_and_wrong_sizes_bad_metadata() -> None:
    """Undecodable ut_metadata is MALFORMED; a piece of the wrong size is a banning BAD_METADATA."""
    with pytest.raises(RemoteProtocolError) as info:
        decode_metadata_message(b"not bencode")
    assert info.value.kind is Violation.MALFORMED
    fetcher: MetadataFetcher[str] = MetadataFetcher(INFO_HASH, 100, 1000)
    assert fetcher.next_request("p", 0.0) == 0
    with pytest.raises(RemoteProtocolError) as info:
        fetcher.on_data("p", 0, b"short", 100)
    assert info.value.kind is Violation.BAD_METADATA and info.value.ban
