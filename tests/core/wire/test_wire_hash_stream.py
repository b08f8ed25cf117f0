"""BEP 52 hash messages inside the peer-wire stream: the parser, the connection and the v2 bit."""

from __future__ import annotations

import struct

import pytest

from p2pshare.config import HashesLimits
from p2pshare.core.wire import Have, MessageParser, Unchoke, encode
from p2pshare.core.wire.hashes import Hashes, HashReject, HashRequest, max_frame_length, supports_v2
from p2pshare.core.wire.messages import make_reserved
from p2pshare.errors import RemoteProtocolError, Violation
from tests.core.wire.wire_helpers import INFO_HASH, PEER_A, PEER_B, Pair, parse_all, split_every_way

ROOT = bytes(range(32))
REQUEST = HashRequest(ROOT, 3, 4, 4, 2)
REJECT = HashReject(ROOT, 3, 4, 4, 2)
HASHES = Hashes(ROOT, 3, 4, 4, 2, tuple(bytes([i]) * 32 for i in range(5)))


def test_hash_messages_parse_among_others_at_every_split() -> None:
    """Hash messages framed between BEP 3 messages come out whole however the bytes are cut."""
    msgs = [Have(1), REQUEST, HASHES, Unchoke(), REJECT]
    stream = b"".join(encode(m) for m in msgs)
    for chunks in split_every_way(stream):
        assert parse_all(chunks) == msgs


def test_hashes_length_over_the_limit_is_refused_from_five_bytes() -> None:
    """A hashes frame longer than the largest legal answer is refused before its payload arrives."""
    limits = HashesLimits()
    too_long = max_frame_length(22, limits) + 1
    parser = MessageParser()
    parser.feed(struct.pack(">IB", too_long, 22))
    with pytest.raises(RemoteProtocolError) as err:
        parser.next_message()
    assert err.value.kind is Violation.TOO_LARGE


def test_short_hash_request_is_malformed() -> None:
    """A hash request shorter than its 48-byte header is malformed."""
    parser = MessageParser()
    parser.feed(struct.pack(">IB", 10, 21) + bytes(9))
    with pytest.raises(RemoteProtocolError) as err:
        parser.next_message()
    assert err.value.kind is Violation.MALFORMED


def test_hashes_that_miscount_their_uncles_are_malformed() -> None:
    """A hashes message whose hash count does not fit its length and proof layers is malformed."""
    body = encode(HASHES)[5:-32]  # drop one uncle
    parser = MessageParser()
    parser.feed(struct.pack(">IB", len(body) + 1, 22) + body)
    with pytest.raises(RemoteProtocolError, match="needs 5") as err:
        parser.next_message()
    assert err.value.kind is Violation.MALFORMED


def test_connection_delivers_hash_messages_both_ways() -> None:
    """Hash messages sent over a connection pair arrive as the same objects on the other side."""
    pair = Pair()
    assert pair.a_sends(REQUEST) == [REQUEST]
    assert pair.b_sends(HASHES, REJECT) == [HASHES, REJECT]


def test_v2_bit_in_the_handshake() -> None:
    """A connection built with v2=True sets the BEP 52 bit, and the other side sees it."""
    from p2pshare.core.wire import PeerConnection

    a = PeerConnection(INFO_HASH, PEER_A, initiator=True, num_pieces=4, v2=True)
    b = PeerConnection(INFO_HASH, PEER_B, initiator=False, num_pieces=4)
    assert supports_v2(a.our_reserved) and not supports_v2(b.our_reserved)
    b.receive_data(a.handshake_bytes())
    assert b.next_event() is not None
    assert b.peer_supports_v2
    assert not a.peer_supports_v2
    assert make_reserved(v2=True) == bytes(7) + b"\x10"
