"""The drop rules after the issue 10 audit (docs/wire-rules.md): relaxed where libtorrent and Transmission
accept more, kept where they drop too or where the rule protects memory."""

from __future__ import annotations

import pytest

from p2pshare.config import BLOCK_SIZE, WireLimits
from p2pshare.core.geometry import Geometry
from p2pshare.core.wire import (
    AllowedFast,
    BitfieldMsg,
    Extended,
    Have,
    HaveAll,
    Interested,
    Message,
    Piece,
    RejectRequest,
    Request,
    RequestDenied,
    Suggest,
    Unchoke,
    UnwantedPiece,
    encode,
)
from p2pshare.errors import RemoteProtocolError
from tests.core.wire.wire_helpers import Pair, drain

GEOM = Geometry(40000, [40000 * 3 + 1000])  # 4 pieces: three of 40000 bytes, last of 1000


def seeding_pair(**kwargs: object) -> Pair:
    """``b`` seeds and has unchoked an interested ``a``."""
    pair = Pair(geometry=GEOM, **kwargs)  # type: ignore[arg-type]
    pair.b_sends(BitfieldMsg(b"\xf0"))
    pair.a_sends(Interested())
    pair.b_sends(Unchoke())
    return pair


# --- relaxed -----------------------------------------------------------------


def test_spare_bits_set_in_a_bitfield_are_ignored() -> None:
    """Bits past the last piece are masked, not fatal (libtorrent reads n bits, Transmission masks)."""
    pair = Pair(num_pieces=10)
    assert pair.to_a(encode(BitfieldMsg(b"\x80\x7f"))) == [BitfieldMsg(b"\x80\x7f")]
    assert pair.a.peer_has is not None and list(pair.a.peer_has) == [0, 9]


def test_spare_bits_in_a_bitfield_before_the_piece_count_are_ignored() -> None:
    """A bitfield kept for a magnet link is masked the same way once the piece count arrives."""
    pair = Pair(num_pieces=None)
    pair.to_a(encode(BitfieldMsg(b"\x80\x7f")))
    pair.a.set_num_pieces(10)
    assert drain(pair.a) == []
    assert pair.a.peer_has is not None and list(pair.a.peer_has) == [0, 9]


@pytest.mark.parametrize("msg", [Suggest(8), AllowedFast(8)], ids=["suggest", "allowed-fast"])
def test_suggest_or_allowed_fast_past_the_last_piece_is_ignored(msg: Message) -> None:
    """libtorrent ignores a suggest / allowed-fast for a piece that does not exist; so do we."""
    pair = Pair(num_pieces=8)
    assert pair.to_a(encode(msg)) == []
    assert pair.a.allowed_fast_in == set()


def test_allowed_fast_past_the_end_before_the_piece_count_is_forgotten() -> None:
    """An allowed-fast kept for a magnet link and past the last piece is dropped from the set, not fatal."""
    pair = Pair(num_pieces=None)
    pair.to_a(encode(AllowedFast(3)) + encode(AllowedFast(10)))
    pair.a.set_num_pieces(10)
    assert drain(pair.a) == []
    assert pair.a.allowed_fast_in == {3}


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (Request(0, 0, BLOCK_SIZE + 1), "bytes"),
        (Request(0, 0, 0), "bytes"),
        (Request(4, 0, 16), "past the last"),
        (Request(3, 512, 1000), "past the end"),
    ],
    ids=["too-long", "zero", "past-last-piece", "past-piece-end"],
)
def test_invalid_request_is_rejected_not_fatal(request_: Request, reason: str) -> None:
    """An invalid request is rejected (BEP 6) or ignored, as libtorrent and Transmission do, never fatal."""
    for fast in (True, False):
        pair = seeding_pair(a_fast=fast, b_fast=fast)
        [denied] = pair.to_b(encode(request_))
        assert isinstance(denied, RequestDenied) and reason in denied.reason and denied.reject is fast
        assert pair.b.is_requested(*denied.block) is fast
        if fast:
            assert pair.b.send(RejectRequest(*denied.block)) == encode(RejectRequest(*denied.block))


def test_invalid_requests_still_count_towards_the_flood_limit() -> None:
    """Unanswered invalid requests fill the same bounded set: past twice the cap the peer is banned."""
    limits = WireLimits(max_incoming_requests=4)
    pair = seeding_pair(limits=limits)
    data = b"".join(encode(Request(0, 0, BLOCK_SIZE + 1 + i)) for i in range(8))
    pair.b.receive_data(data + encode(Request(0, 0, 10 * BLOCK_SIZE)))
    with pytest.raises(RemoteProtocolError, match="flooded") as exc:
        drain(pair.b)
    assert exc.value.ban


def test_piece_never_requested_is_unwanted_not_fatal() -> None:
    """A valid block nobody asked for is reported as unwanted (libtorrent counts it as waste)."""
    pair = seeding_pair()
    assert pair.to_a(encode(Piece(0, 0, b"abc"))) == [UnwantedPiece(0, 0, b"abc")]
    assert pair.to_a(encode(Piece(0, 0, b"abc"))) == [UnwantedPiece(0, 0, b"abc")]


def test_reject_for_a_request_never_sent_is_ignored() -> None:
    """A reject matching none of our requests reports nothing (libtorrent and Transmission ignore it)."""
    pair = seeding_pair()
    assert pair.to_a(encode(RejectRequest(0, 0, 10))) == []


def test_extended_message_without_bep10_is_ignored() -> None:
    """An extended message from a peer that did not set the BEP 10 bit is ignored, not fatal."""
    pair = Pair(b_ext=False)
    assert pair.to_a(encode(Extended(0, b"d1:md11:ut_metadatai3eee")) + encode(Have(1))) == [Have(1)]
    assert pair.a.peer_extensions is None


@pytest.mark.parametrize(
    "payload",
    [b"i1e", b"d1:mi1ee", b"d1:md1:xi300eee", b"d1:vi5ee", b"d1:md"],
    ids=["not-a-dict", "m-not-a-dict", "id-over-255", "v-not-a-string", "truncated"],
)
def test_malformed_extension_handshake_is_ignored_and_a_good_one_still_counts(payload: bytes) -> None:
    """A malformed extension handshake keeps nothing and drops nobody; a later valid one is taken."""
    pair = Pair()
    assert pair.to_a(encode(Extended(0, payload))) == []
    assert pair.a.peer_extensions is None
    assert len(pair.to_a(encode(Extended(0, b"d1:md11:ut_metadatai3eee")))) == 1
    assert pair.a.peer_ext_id("ut_metadata") == 3


def test_extension_handshake_over_the_entry_limit_is_ignored() -> None:
    """Over limits.max_extensions `m` entries: the handshake is not kept (the limit holds); the peer stays."""
    pair = Pair(limits=WireLimits(max_extensions=2))
    m = b"".join(b"2:e%di%de" % (i, i + 1) for i in range(3))
    assert pair.to_a(encode(Extended(0, b"d1:md" + m + b"ee"))) == []
    assert pair.a.peer_extensions is None


# --- kept ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "piece",
    [Piece(4, 0, b"x"), Piece(3, 999, b"xy")],
    ids=["past-last-piece", "past-piece-end"],
)
def test_piece_that_cannot_be_a_block_is_refused(piece: Piece) -> None:
    """libtorrent drops a piece outside the torrent (invalid_piece); so do we."""
    pair = seeding_pair()
    pair.a.receive_data(encode(piece))
    with pytest.raises(RemoteProtocolError, match="past"):
        pair.a.next_event()


def test_piece_of_another_length_than_requested_is_refused() -> None:
    """A piece at a requested offset but of another length is not the block we asked for: dropped."""
    pair = seeding_pair()
    pair.a.send(Request(0, 0, 10))
    pair.a.receive_data(encode(Piece(0, 0, bytes(9))))
    with pytest.raises(RemoteProtocolError, match="we asked for"):
        pair.a.next_event()


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (encode(Have(8)), "past the last"),
        (encode(BitfieldMsg(b"\x00\x00")), "bitfield"),
        (b"\x00\x00\x00\x02\x04\x00", "must be 5"),
    ],
    ids=["have-past-last", "bitfield-size", "have-length"],
)
def test_rules_libtorrent_and_transmission_also_enforce_still_drop(data: bytes, match: str) -> None:
    """A have past the last piece, a bitfield of the wrong size, a message of the wrong length: dropped."""
    pair = Pair(num_pieces=8)
    pair.a.receive_data(data)
    with pytest.raises(RemoteProtocolError, match=match):
        pair.a.next_event()


def test_fast_message_without_fast_still_drops() -> None:
    """Both libtorrent and Transmission drop BEP 6 messages from a peer that did not negotiate BEP 6."""
    pair = Pair(num_pieces=8, b_fast=False)
    pair.a.receive_data(encode(HaveAll()))
    with pytest.raises(RemoteProtocolError, match="fast"):
        pair.a.next_event()
