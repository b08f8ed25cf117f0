"""PeerConnection: handshakes, every BEP 3/6/10 rule it enforces, and whole exchanges over a fake link."""

from __future__ import annotations

import hashlib
import struct

import pytest

from p2pshare.config import BLOCK_SIZE, WireLimits
from p2pshare.core.bitfield import Bitfield
from p2pshare.core.geometry import Geometry
from p2pshare.core.wire import (
    AllowedFast,
    BitfieldMsg,
    Cancel,
    Choke,
    ConnectionState,
    Extended,
    ExtensionHandshake,
    ExtensionHandshakeReceived,
    HandshakeReceived,
    Have,
    HaveAll,
    HaveNone,
    Interested,
    KeepAlive,
    MetadataData,
    MetadataFetcher,
    MetadataReject,
    MetadataRequest,
    NotInterested,
    PeerClosed,
    PeerConnection,
    Piece,
    Port,
    RejectRequest,
    Request,
    RequestDenied,
    RequestsDropped,
    Suggest,
    Unchoke,
    UnwantedPiece,
    encode,
    encode_handshake,
    metadata_response,
)
from p2pshare.core.wire.metadata import MetadataComplete
from p2pshare.errors import LocalProtocolError, RemoteProtocolError
from tests.core.wire.wire_helpers import INFO_HASH, PEER_A, PEER_B, Pair, drain

GEOM = Geometry(40000, [40000 * 3 + 1000])  # 4 pieces: three of 40000 bytes, last of 1000


def payload_for(geometry: Geometry) -> bytes:
    return bytes((i * 7 + 3) % 251 for i in range(geometry.total_length))


def unchoked_pair(**kwargs: object) -> Pair:
    """``b`` is a seed that has unchoked an interested ``a``."""
    pair = Pair(geometry=GEOM, **kwargs)  # type: ignore[arg-type]
    b_has = Bitfield(GEOM.num_pieces, full=True)
    first = pair.b.initial_have_message(b_has)
    assert first is not None
    pair.b_sends(first)
    pair.a_sends(Interested())
    pair.b_sends(Unchoke())
    return pair


# ---------------------------------------------------------------------------
# handshake


def test_handshake_exchange_reports_the_peer_and_negotiates_features() -> None:
    """Both sides see the other's handshake; fast/extensions are on only when both set the bit."""
    pair = Pair(handshake=False, b_fast=False)
    [event] = pair.to_b(pair.a.handshake_bytes())
    assert event == HandshakeReceived(INFO_HASH, PEER_A, bytes([0, 0, 0, 0, 0, 0x10, 0, 0x04]))
    assert event.supports_fast and event.supports_extensions and not event.supports_dht
    [event] = pair.to_a(pair.b.handshake_bytes())
    assert isinstance(event, HandshakeReceived) and event.peer_id == PEER_B
    assert pair.a.peer_supports_extensions and not pair.a.peer_supports_fast
    assert not pair.a.fast_enabled and not pair.b.fast_enabled
    assert pair.a.extensions_enabled and pair.b.extensions_enabled
    assert pair.a.state is ConnectionState.FIRST and pair.a.handshake_complete


def test_handshake_split_at_every_point_gives_the_same_events() -> None:
    """The handshake and first messages may arrive in any fragmentation."""
    wire = encode_handshake(INFO_HASH, PEER_B) + encode(HaveAll()) + encode(Unchoke())
    for cut in range(1, len(wire)):
        conn = PeerConnection(INFO_HASH, PEER_A, initiator=True, num_pieces=4)
        conn.handshake_bytes()
        conn.receive_data(wire[:cut])
        events = drain(conn)
        conn.receive_data(wire[cut:])
        events += drain(conn)
        assert [type(e) for e in events] == [HandshakeReceived, HaveAll, Unchoke]


def test_handshake_for_another_torrent_is_refused() -> None:
    """An initiator drops a peer whose handshake names another info hash."""
    conn = PeerConnection(INFO_HASH, PEER_A, initiator=True)
    conn.handshake_bytes()
    conn.receive_data(encode_handshake(b"\x01" * 20, PEER_B))
    with pytest.raises(RemoteProtocolError, match="torrent"):
        conn.next_event()


def test_receiver_without_info_hash_adopts_the_peers() -> None:
    """A receiver built with info_hash=None takes the peer's hash and can then answer."""
    conn = PeerConnection(None, PEER_B, initiator=False)
    with pytest.raises(LocalProtocolError):
        conn.handshake_bytes()
    conn.receive_data(encode_handshake(INFO_HASH, PEER_A))
    event = conn.next_event()
    assert isinstance(event, HandshakeReceived) and conn.info_hash == INFO_HASH
    assert conn.handshake_bytes()[28:48] == INFO_HASH


def test_bytes_that_are_not_a_handshake_are_refused() -> None:
    """A message sent before the handshake (or another protocol) is refused."""
    conn = PeerConnection(INFO_HASH, PEER_A, initiator=True)
    conn.receive_data(encode(Interested()))
    with pytest.raises(RemoteProtocolError, match="handshake"):
        conn.next_event()


def test_connecting_to_ourselves_is_refused() -> None:
    """A handshake carrying our own peer id means we dialled ourselves."""
    conn = PeerConnection(INFO_HASH, PEER_A, initiator=True)
    conn.receive_data(encode_handshake(INFO_HASH, PEER_A))
    with pytest.raises(RemoteProtocolError, match="ourselves"):
        conn.next_event()


def test_we_cannot_send_messages_before_the_handshakes() -> None:
    """send() before our handshake, or before the peer's, is a local error."""
    conn = PeerConnection(INFO_HASH, PEER_A, initiator=True, num_pieces=4)
    with pytest.raises(LocalProtocolError):
        conn.send(Interested())
    conn.handshake_bytes()
    with pytest.raises(LocalProtocolError):
        conn.send(Interested())
    with pytest.raises(LocalProtocolError):
        conn.handshake_bytes()  # only once


def test_errors_are_sticky() -> None:
    """Once the peer broke a rule, every later next_event raises the same error."""
    conn = PeerConnection(INFO_HASH, PEER_A, initiator=True)
    conn.receive_data(b"junk")
    with pytest.raises(RemoteProtocolError) as first:
        conn.next_event()
    with pytest.raises(RemoteProtocolError) as again:
        conn.next_event()
    assert first.value is again.value and conn.state is ConnectionState.ERROR


def test_end_of_stream_reports_peer_closed_after_buffered_events() -> None:
    """b"" marks the end; buffered messages come first, then PeerClosed on every call."""
    pair = Pair()
    pair.b.receive_data(pair.a.send(Interested()))
    pair.b.receive_data(b"")
    assert drain_until_closed(pair.b) == [Interested()]
    assert pair.b.next_event() == PeerClosed() and pair.b.state is ConnectionState.CLOSED
    with pytest.raises(LocalProtocolError):
        pair.b.receive_data(b"more")


def drain_until_closed(conn: PeerConnection) -> list[object]:
    out: list[object] = []
    while not isinstance(event := conn.next_event(), PeerClosed):
        assert event is not None
        out.append(event)
    return out


# ---------------------------------------------------------------------------
# bitfield / have-all / have-none (BEP 3 and BEP 6)


# A later bitfield / have-all / have-none is accepted: see test_wire_liberal.py.


def test_bitfield_sets_what_the_peer_has() -> None:
    """A bitfield as first message fills peer_has."""
    pair = Pair(num_pieces=10)
    pair.b_sends(BitfieldMsg(bytes([0b10100000, 0b01000000])))
    assert pair.a.peer_has is not None and list(pair.a.peer_has) == [0, 2, 9]


def test_bitfield_of_wrong_size_is_refused() -> None:
    """A bitfield longer than the piece count needs is refused."""
    pair = Pair(num_pieces=10)
    pair.a.receive_data(encode(BitfieldMsg(b"\xff\xc0\x00")))
    with pytest.raises(RemoteProtocolError, match="bitfield"):
        pair.a.next_event()


@pytest.mark.parametrize(
    "msg", [HaveAll(), HaveNone(), Suggest(1), AllowedFast(1), RejectRequest(0, 0, 16384)]
)
def test_fast_messages_need_the_fast_extension(msg: object) -> None:
    """A BEP 6 message from a peer with whom fast is not negotiated is refused."""
    pair = Pair(b_fast=False)
    pair.a.receive_data(encode(msg))  # type: ignore[arg-type]
    with pytest.raises(RemoteProtocolError, match="fast"):
        pair.a.next_event()


@pytest.mark.parametrize("msg", [HaveAll(), Suggest(1), AllowedFast(1), RejectRequest(0, 0, 1)])
def test_we_cannot_send_fast_messages_without_the_fast_extension(msg: object) -> None:
    """send() refuses BEP 6 messages when fast is not negotiated."""
    pair = Pair(b_fast=False)
    with pytest.raises(LocalProtocolError):
        pair.a.send(msg)  # type: ignore[arg-type]


def test_have_all_and_have_none_set_peer_has() -> None:
    """Have-all fills peer_has; have-none leaves it empty."""
    pair = Pair(num_pieces=5)
    pair.b_sends(HaveAll())
    assert pair.a.peer_has is not None and pair.a.peer_has.complete
    pair.a_sends(HaveNone())
    assert pair.b.peer_has is not None and len(pair.b.peer_has) == 0


def test_have_adds_a_piece() -> None:
    """A have message adds the piece to peer_has."""
    pair = Pair(num_pieces=5)
    assert pair.b_sends(Have(3)) == [Have(3)]
    assert pair.a.peer_has is not None and 3 in pair.a.peer_has


@pytest.mark.parametrize("msg", [Have(8)])  # suggest, allowed-fast, request: see test_wire_audit.py
def test_piece_index_out_of_range_is_refused(msg: object) -> None:
    """A have for a piece past the last one is refused."""
    pair = Pair(num_pieces=8)
    pair.a.receive_data(encode(msg))  # type: ignore[arg-type]
    with pytest.raises(RemoteProtocolError, match="past the last"):
        pair.a.next_event()


def test_initial_have_message_follows_the_negotiated_features() -> None:
    """With fast we say have-all/have-none; without it a bitfield or nothing."""
    full, empty = Bitfield(4, full=True), Bitfield(4)
    part = Bitfield.from_indices(4, [1])
    fast = Pair(num_pieces=4)
    assert fast.a.initial_have_message(full) == HaveAll()
    assert fast.a.initial_have_message(empty) == HaveNone()
    assert fast.a.initial_have_message(None) == HaveNone()
    assert fast.a.initial_have_message(part) == BitfieldMsg(part.to_bytes())
    slow = Pair(num_pieces=4, b_fast=False)
    assert slow.a.initial_have_message(full) == BitfieldMsg(full.to_bytes())
    assert slow.a.initial_have_message(empty) is None


# ---------------------------------------------------------------------------
# magnet: the piece count arrives later


def test_bitfield_and_haves_before_the_piece_count_are_applied_later() -> None:
    """With no piece count, bitfield/haves/allowed-fast are kept and applied by set_num_pieces."""
    pair = Pair(num_pieces=None)
    assert pair.a.peer_has is None
    pair.b.set_num_pieces(10)
    pair.b_sends(BitfieldMsg(bytes([0b10000000, 0])), Have(9), AllowedFast(4))
    assert pair.a.peer_has is None
    pair.a.set_num_pieces(10)
    assert drain(pair.a) == []
    assert pair.a.peer_has is not None and list(pair.a.peer_has) == [0, 9]
    assert pair.a.allowed_fast_in == {4}


def test_bad_bitfield_found_by_set_num_pieces_surfaces_from_next_event() -> None:
    """A bitfield of the wrong size sent before the piece count was known fails once it is known."""
    pair = Pair(num_pieces=None)
    pair.to_a(encode(BitfieldMsg(b"\xff\xff\xff")))
    pair.a.set_num_pieces(10)
    with pytest.raises(RemoteProtocolError, match="bitfield"):
        pair.a.next_event()


@pytest.mark.parametrize("index", [10, 12, 30, 8 * 1024])
def test_have_past_the_end_found_by_set_num_pieces_is_refused(index: int) -> None:
    """A have for a piece past the end, sent before the piece count was known, fails once it is known."""
    pair = Pair(num_pieces=None)
    pair.to_a(encode(Have(index)))
    pair.a.set_num_pieces(10)
    with pytest.raises(RemoteProtocolError, match="past the last"):
        pair.a.next_event()


def test_have_beyond_any_torrent_is_refused_before_the_piece_count() -> None:
    """Without a piece count, a have past 8 * max_unknown_bitfield pieces is refused at once."""
    pair = Pair(num_pieces=None, limits=WireLimits(max_unknown_bitfield=2))
    assert pair.to_a(encode(Have(15))) == [Have(15)]
    pair.a.receive_data(encode(Have(16)))
    with pytest.raises(RemoteProtocolError):
        pair.a.next_event()


def test_have_all_before_the_piece_count_means_everything() -> None:
    """Have-all received before the piece count becomes a full peer_has."""
    pair = Pair(num_pieces=None)
    pair.b_sends(HaveAll())
    pair.a.set_geometry(GEOM)
    assert pair.a.peer_has is not None and pair.a.peer_has.complete


def test_piece_count_cannot_change() -> None:
    """set_num_pieces with a different count is a local error."""
    conn = PeerConnection(INFO_HASH, PEER_A, initiator=True, num_pieces=4)
    conn.set_num_pieces(4)
    with pytest.raises(LocalProtocolError):
        conn.set_num_pieces(5)


# ---------------------------------------------------------------------------
# requests we receive


def test_request_is_queued_and_served() -> None:
    """An unchoked peer's request is emitted and stays in `incoming` until the piece is sent."""
    pair = unchoked_pair()
    assert pair.a_sends(Request(0, 0, BLOCK_SIZE)) == [Request(0, 0, BLOCK_SIZE)]
    assert pair.b.incoming == {(0, 0, BLOCK_SIZE)}
    assert pair.b.is_requested(0, 0, BLOCK_SIZE)
    assert pair.b_sends(Piece(0, 0, bytes(BLOCK_SIZE))) == [Piece(0, 0, bytes(BLOCK_SIZE))]
    assert pair.b.incoming == set() and pair.a.outstanding == set()


def test_request_while_choked_is_denied_with_a_reject_under_fast() -> None:
    """A fast peer's request while we choke it must be rejected; a non-fast one's is dropped."""
    pair = Pair(geometry=GEOM)
    pair.b_sends(HaveAll())
    [denied] = pair.to_b(encode(Request(0, 0, 100)))
    assert isinstance(denied, RequestDenied) and denied.reject and "choked" in denied.reason
    assert pair.b.incoming == set() and pair.b.owed_rejects == {(0, 0, 100)}
    slow = Pair(geometry=GEOM, a_fast=False)
    slow.b_sends(BitfieldMsg(Bitfield(4, full=True).to_bytes()))
    [denied] = slow.to_b(encode(Request(0, 0, 100)))
    assert isinstance(denied, RequestDenied) and not denied.reject
    assert slow.b.owed_rejects == set()


def test_request_for_allowed_fast_piece_is_served_while_choked() -> None:
    """A piece in the allowed-fast set we granted may be requested while choked (BEP 6)."""
    pair = Pair(geometry=GEOM)
    pair.b_sends(HaveAll(), AllowedFast(2))
    assert pair.a.allowed_fast_in == {2} and pair.b.allowed_fast_out == {2}
    assert pair.a.peer_choking
    assert pair.a_sends(Request(2, 0, 100)) == [Request(2, 0, 100)]
    with pytest.raises(LocalProtocolError):
        pair.a.send(Request(1, 0, 100))  # not allowed-fast while choked


def test_request_for_a_piece_we_never_advertised_is_denied() -> None:
    """A request for a piece we did not say we have is denied, not served."""
    pair = Pair(geometry=GEOM)
    pair.b_sends(BitfieldMsg(Bitfield.from_indices(4, [1]).to_bytes()), Unchoke())
    [denied] = pair.to_b(encode(Request(0, 0, 100)))
    assert isinstance(denied, RequestDenied) and "never said" in denied.reason
    assert pair.b_sends(Have(0)) == [Have(0)]
    assert pair.to_b(encode(Request(0, 100, 100))) == [Request(0, 100, 100)]


def test_request_before_metadata_is_denied() -> None:
    """Without the piece count we cannot serve anything: requests are denied."""
    pair = Pair(num_pieces=None)
    [denied] = pair.to_b(encode(Request(0, 0, 100)))
    assert isinstance(denied, RequestDenied) and "metadata" in denied.reason


def test_requests_over_the_cap_are_denied_then_a_flood_is_fatal() -> None:
    """Past max_incoming_requests a fast peer's requests are to be rejected; past twice that it is banned."""
    limits = WireLimits(max_incoming_requests=4)
    pair = unchoked_pair(limits=limits)
    events = pair.to_b(b"".join(encode(Request(0, i, 1)) for i in range(4)))
    assert len(events) == 4 and len(pair.b.incoming) == 4
    events = pair.to_b(b"".join(encode(Request(1, i, 1)) for i in range(4)))
    assert all(isinstance(e, RequestDenied) and e.reject for e in events)
    pair.b.receive_data(encode(Request(2, 0, 1)))
    with pytest.raises(RemoteProtocolError, match="flooded") as exc:
        pair.b.next_event()
    assert exc.value.ban


def test_answering_denied_requests_with_rejects_keeps_the_peer_under_the_flood_limit() -> None:
    """Rejects the engine sends free room, so a peer that listens is never banned."""
    limits = WireLimits(max_incoming_requests=2)
    pair = unchoked_pair(limits=limits)
    for round_ in range(5):
        events = pair.to_b(b"".join(pair.a.send(Request(round_ % 3, round_ * 10 + i, 1)) for i in range(4)))
        for event in events:
            if isinstance(event, RequestDenied):
                rejects = pair.b_sends(RejectRequest(event.index, event.begin, event.length))
                assert rejects == [RejectRequest(event.index, event.begin, event.length)]
            else:
                assert isinstance(event, Request)
                pair.b_sends(Piece(event.index, event.begin, b"x"))
    assert pair.b.incoming == set() and pair.b.owed_rejects == set() and pair.a.outstanding == set()


def test_requests_over_the_cap_from_non_fast_peer_are_dropped() -> None:
    """Without fast, requests past the cap are dropped (no reject exists) and never fatal."""
    limits = WireLimits(max_incoming_requests=2)
    pair = unchoked_pair(limits=limits, a_fast=False)
    events = pair.to_b(b"".join(encode(Request(0, i, 1)) for i in range(10)))
    assert [type(e) for e in events] == [Request] * 2 + [RequestDenied] * 8
    assert not any(e.reject for e in events if isinstance(e, RequestDenied))


def test_duplicate_request_is_ignored() -> None:
    """The same request twice is queued once."""
    pair = unchoked_pair()
    assert pair.to_b(encode(Request(0, 0, 10)) * 2) == [Request(0, 0, 10)]


def test_choking_a_non_fast_peer_discards_its_requests() -> None:
    """BEP 3: our choke discards the peer's queued requests; a late piece for them is not sent."""
    pair = unchoked_pair(a_fast=False)
    pair.a_sends(Request(0, 0, 10))
    assert pair.b.send(Choke()) == encode(Choke())
    assert pair.b.incoming == set()
    assert pair.b.send(Piece(0, 0, bytes(10))) == b""
    assert pair.b.send_piece(0, 0, bytes(10)) == []


def test_choking_a_fast_peer_rejects_its_requests_except_allowed_fast() -> None:
    """BEP 6: our choke is followed by a reject for each queued request outside the allowed-fast set."""
    pair = unchoked_pair()
    pair.b_sends(AllowedFast(1))
    pair.a_sends(Request(0, 0, 10), Request(1, 0, 10), Request(2, 5, 10))
    wire = pair.b.send(Choke())
    assert wire == encode(Choke()) + encode(RejectRequest(0, 0, 10)) + encode(RejectRequest(2, 5, 10))
    assert pair.b.incoming == {(1, 0, 10)}
    events = pair.to_a(wire)
    assert events == [Choke(), RejectRequest(0, 0, 10), RejectRequest(2, 5, 10)]
    assert pair.a.outstanding == {(1, 0, 10)}


def test_cancel_from_fast_peer_still_owes_an_answer() -> None:
    """BEP 6: a cancelled request must still get a piece or a reject."""
    pair = unchoked_pair()
    pair.a_sends(Request(0, 0, 10))
    assert pair.a_sends(Cancel(0, 0, 10)) == [Cancel(0, 0, 10)]
    assert pair.b.incoming == set() and pair.b.is_requested(0, 0, 10)
    assert pair.b_sends(RejectRequest(0, 0, 10)) == []  # a's request was cancelled: no event
    assert not pair.b.is_requested(0, 0, 10)
    assert pair.b.send(RejectRequest(0, 0, 10)) == b""  # answered already


def test_cancel_from_non_fast_peer_withdraws_the_request() -> None:
    """Without fast a cancel simply withdraws the request: no piece needs to be sent."""
    pair = unchoked_pair(a_fast=False)
    pair.a_sends(Request(0, 0, 10))
    assert pair.a_sends(Cancel(0, 0, 10)) == [Cancel(0, 0, 10)]
    assert not pair.b.is_requested(0, 0, 10)
    assert pair.a_sends(Cancel(0, 0, 10)) == []  # cancelling again is harmless


# ---------------------------------------------------------------------------
# pieces and rejects we receive


def test_piece_of_the_wrong_length_is_refused() -> None:
    """A piece must have the length we asked for."""
    pair = unchoked_pair()
    pair.a.send(Request(0, 0, 10))
    pair.a.receive_data(encode(Piece(0, 0, bytes(9))))
    with pytest.raises(RemoteProtocolError):
        pair.a.next_event()


def test_piece_for_a_cancelled_request_is_unwanted_not_an_error() -> None:
    """BEP 3 lets a piece cross our cancel: it arrives as UnwantedPiece."""
    pair = unchoked_pair(a_fast=False, b_fast=False)
    pair.a_sends(Request(0, 0, 10))
    pair.b.send(Piece(0, 0, bytes(10)))  # b answers before it sees the cancel
    pair.a.send(Cancel(0, 0, 10))
    assert pair.a.outstanding == set()
    assert pair.to_a(encode(Piece(0, 0, bytes(10)))) == [UnwantedPiece(0, 0, bytes(10))]


def test_reject_clears_the_outstanding_request() -> None:
    """A reject for one of our requests removes it and is reported."""
    pair = unchoked_pair()
    pair.a.send(Request(0, 0, 10))
    assert pair.to_a(encode(RejectRequest(0, 0, 10))) == [RejectRequest(0, 0, 10)]
    assert pair.a.outstanding == set()


def test_choke_from_non_fast_peer_drops_our_requests() -> None:
    """BEP 3: when a non-fast peer chokes us our requests are void and reported as dropped."""
    pair = unchoked_pair(a_fast=False)
    pair.a.send(Request(0, 0, 10))
    pair.a.send(Request(1, 0, 10))
    events = pair.b_sends(Choke())
    assert events == [Choke(), RequestsDropped(((0, 0, 10), (1, 0, 10)))]
    assert pair.a.outstanding == set() and pair.a.peer_choking
    with pytest.raises(LocalProtocolError):
        pair.a.send(Request(0, 0, 10))


def test_choke_from_fast_peer_keeps_our_requests_until_rejected() -> None:
    """BEP 6: a fast peer's choke does not void our requests; each is rejected or served."""
    pair = unchoked_pair()
    pair.a.send(Request(0, 0, 10))
    assert pair.to_a(encode(Choke())) == [Choke()]
    assert pair.a.outstanding == {(0, 0, 10)}
    assert pair.to_a(encode(Piece(0, 0, bytes(10)))) == [Piece(0, 0, bytes(10))]


def test_we_cannot_request_the_same_block_twice() -> None:
    """A duplicate request of ours is a local error."""
    pair = unchoked_pair()
    pair.a.send(Request(0, 0, 10))
    with pytest.raises(LocalProtocolError):
        pair.a.send(Request(0, 0, 10))


# ---------------------------------------------------------------------------
# misc messages and extensions


def test_interest_and_choke_flags_follow_the_messages() -> None:
    """Choke/unchoke/interested/not-interested flip the four BEP 3 flags on both sides."""
    pair = Pair()
    assert pair.a.am_choking and pair.a.peer_choking and not pair.a.am_interested
    pair.a_sends(Interested())
    assert pair.a.am_interested and pair.b.peer_interested
    pair.b_sends(Unchoke())
    assert not pair.b.am_choking and not pair.a.peer_choking
    pair.a_sends(NotInterested())
    assert not pair.a.am_interested and not pair.b.peer_interested


def test_keepalive_and_port_are_reported() -> None:
    """Keep-alives and DHT port messages come out as events and may precede the bitfield."""
    pair = Pair()
    assert pair.b_sends(KeepAlive(), Port(6881), HaveAll()) == [KeepAlive(), Port(6881), HaveAll()]


def test_extended_message_needs_the_extension_bit() -> None:
    """An extended message from a peer without BEP 10 negotiated is ignored, and we send none."""
    pair = Pair(b_ext=False)
    assert pair.to_a(encode(Extended(0, b"de"))) == []
    assert pair.a.peer_extensions is None
    with pytest.raises(LocalProtocolError):
        pair.a.send(ExtensionHandshake())


def test_extension_handshake_is_decoded_and_merged() -> None:
    """Extension handshakes come out decoded, later ones merged over earlier ones."""
    pair = Pair()
    [event] = pair.b_sends(ExtensionHandshake(m={"ut_metadata": 3, "ut_pex": 2}, metadata_size=1234, reqq=50))
    assert isinstance(event, ExtensionHandshakeReceived)
    assert pair.a.peer_ext_id("ut_metadata") == 3 and pair.a.peer_metadata_size == 1234
    assert pair.a.peer_reqq == 50
    pair.b_sends(ExtensionHandshake(m={"ut_metadata": 0}))
    assert pair.a.peer_ext_id("ut_metadata") is None and pair.a.peer_ext_id("ut_pex") == 2


def test_bad_extension_handshake_is_ignored() -> None:
    """An extension handshake that is not a valid dict is ignored (as libtorrent and Transmission do)."""
    pair = Pair()
    assert pair.to_a(encode(Extended(0, b"i1e"))) == []
    assert pair.a.peer_extensions is None


def test_unknown_extended_ids_are_passed_through() -> None:
    """Extended messages with an id we did not assign are handed to the engine raw."""
    pair = Pair()
    assert pair.b_sends(Extended(9, b"hello")) == [Extended(9, b"hello")]


def test_metadata_messages_need_the_peers_ut_metadata_id() -> None:
    """We can only send ut_metadata messages after the peer advertised an id for it."""
    pair = Pair()
    with pytest.raises(LocalProtocolError):
        pair.a.send(MetadataRequest(0))


def test_metadata_exchange_over_the_link() -> None:
    """A magnet downloader fetches the info dict from a seed through ut_metadata."""
    raw = b"d4:name3:abc6:pieces" + b"20:" + bytes(20) + b"12:piece lengthi16384ee"
    raw = raw * 1000  # not a valid info dict, but the exchange only hashes bytes
    info_hash = hashlib.sha1(raw).digest()
    a = PeerConnection(info_hash, PEER_A, initiator=True)
    b = PeerConnection(info_hash, PEER_B, initiator=False, num_pieces=1)
    b.receive_data(a.handshake_bytes())
    drain(b)
    a.receive_data(b.handshake_bytes() + b.send(ExtensionHandshake.ours(metadata_size=len(raw))))
    assert [type(e) for e in drain(a)] == [HandshakeReceived, ExtensionHandshakeReceived]
    b.receive_data(a.send(ExtensionHandshake.ours()))
    drain(b)
    size = a.peer_metadata_size
    assert size == len(raw)
    fetcher = MetadataFetcher(info_hash, size)
    outcome = None
    while outcome is None:
        piece = fetcher.next_request("b", 0.0)
        assert piece is not None
        b.receive_data(a.send(MetadataRequest(piece)))
        for event in drain(b):
            assert isinstance(event, MetadataRequest)
            a.receive_data(b.send(metadata_response(raw, event.piece)))
        for event in drain(a):
            assert isinstance(event, MetadataData)
            outcome = fetcher.on_data("b", event.piece, event.data, event.total_size)
    assert outcome == MetadataComplete(raw)
    b.receive_data(a.send(MetadataRequest(0)))
    [request] = drain(b)
    a.receive_data(b.send(metadata_response(None, 0)))
    assert drain(a) == [MetadataReject(0)]
    assert request == MetadataRequest(0)


# ---------------------------------------------------------------------------
# whole exchanges


@pytest.mark.parametrize("fast", [True, False])
def test_whole_piece_exchanged_over_the_fake_link(fast: bool) -> None:
    """A downloader fetches every block of every piece from a seed and the bytes match."""
    payload = payload_for(GEOM)
    pair = unchoked_pair(a_fast=fast)
    assert pair.a.peer_has is not None and pair.a.peer_has.complete
    got = bytearray(len(payload))
    for piece in range(GEOM.num_pieces):
        wire = b"".join(pair.a.send(Request(b.piece, b.begin, b.length)) for b in GEOM.blocks(piece))
        for event in pair.to_b(wire):
            assert isinstance(event, Request)
            off = GEOM.piece_offset(event.index) + event.begin
            parts = pair.b.send_piece(event.index, event.begin, memoryview(payload)[off : off + event.length])
            assert len(parts) == 2
            for event_a in pair.to_a(b"".join(parts)):
                assert isinstance(event_a, Piece)
                start = GEOM.piece_offset(event_a.index) + event_a.begin
                got[start : start + len(event_a.data)] = event_a.data
        pair.a_sends(Have(piece))
    assert bytes(got) == payload
    assert pair.a.outstanding == set() and pair.b.incoming == set()
    assert pair.b.peer_has is not None and pair.b.peer_has.complete


def test_whole_exchange_survives_byte_by_byte_delivery() -> None:
    """The same exchange delivered one byte at a time yields the same events."""
    pair = unchoked_pair()
    wire = b"".join(pair.a.send(Request(0, b, 100)) for b in range(0, 1000, 100))
    for i in range(len(wire)):
        pair.b.receive_data(wire[i : i + 1])
    assert drain(pair.b) == [Request(0, b, 100) for b in range(0, 1000, 100)]
    reply = b"".join(pair.b.send(Piece(0, b, bytes([b % 256]) * 100)) for b in range(0, 1000, 100))
    events = []
    for i in range(len(reply)):
        pair.a.receive_data(reply[i : i + 1])
        events += drain(pair.a)
    assert events == [Piece(0, b, bytes([b % 256]) * 100) for b in range(0, 1000, 100)]


def test_header_only_pieces_parse_with_struct_layout() -> None:
    """send_piece's header is the 13-byte BEP 3 piece header."""
    pair = unchoked_pair()
    pair.a_sends(Request(1, 16384, 5))
    header, data = pair.b.send_piece(1, 16384, b"hello")
    assert header == struct.pack(">IBII", 14, 7, 1, 16384) and data == b"hello"


def test_send_requests_matches_one_send_per_request() -> None:
    """A batch of requests gives the same bytes and state as sending each one, and keeps the rules."""
    import pytest as _pytest

    from p2pshare.core.wire import connection as _c
    from p2pshare.core.wire import messages as _m
    from p2pshare.errors import LocalProtocolError as _LPE

    def ready() -> _c.PeerConnection:
        a = _c.PeerConnection(b"h" * 20, b"a" * 20, initiator=True, num_pieces=4, fast=False)
        a.handshake_bytes()
        a.receive_data(_m.Handshake(b"h" * 20, b"b" * 20).encode() + _m.encode(_m.Unchoke()))
        while a.next_event() is not None:
            pass
        return a

    blocks = [(0, 0, 16384), (0, 16384, 16384), (3, 0, 100)]
    one, many = ready(), ready()
    expected = b"".join(one.send(_m.Request(*b)) for b in blocks)
    assert many.send_requests(blocks) == expected
    assert many.outstanding == one.outstanding == set(blocks)
    with _pytest.raises(_LPE):
        many.send_requests([(0, 0, 16384)])  # already outstanding
    with _pytest.raises(_LPE):
        many.send_requests([(9, 0, 16384)])  # no such piece
