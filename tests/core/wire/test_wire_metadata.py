"""BEP 9 ut_metadata: message codec, serving pieces, and the fetcher's scheduling and verification."""

from __future__ import annotations

import hashlib

import pytest

from p2pshare.core import bencode
from p2pshare.core.wire import (
    METADATA_PIECE_SIZE,
    MetadataComplete,
    MetadataData,
    MetadataFetcher,
    MetadataHashMismatch,
    MetadataReject,
    MetadataRequest,
    decode_metadata_message,
    encode_metadata_message,
    metadata_piece,
    metadata_response,
)
from p2pshare.errors import RemoteProtocolError

RAW = bencode.encode({b"name": b"x", b"pieces": bytes(range(256)) * 160, b"piece length": 16384})
INFO_HASH = hashlib.sha1(RAW).digest()


def test_bep9_examples_decode() -> None:
    """The request and data examples from BEP 9 decode to the right messages."""
    assert decode_metadata_message(b"d8:msg_typei0e5:piecei0ee") == MetadataRequest(0)
    assert decode_metadata_message(b"d8:msg_typei2e5:piecei3ee") == MetadataReject(3)
    got = decode_metadata_message(b"d8:msg_typei1e5:piecei0e10:total_sizei34256eexxxxxxxx")
    assert got == MetadataData(0, 34256, b"xxxxxxxx")


@pytest.mark.parametrize(
    "msg", [MetadataRequest(5), MetadataReject(0), MetadataData(2, 40000, b"\x00d1:ae" * 100)]
)
def test_round_trip(msg: MetadataRequest | MetadataReject | MetadataData) -> None:
    """Each ut_metadata message survives encode then decode (data after the dict is raw)."""
    assert decode_metadata_message(encode_metadata_message(msg)) == msg


def test_unknown_msg_type_is_ignored() -> None:
    """BEP 9: an unrecognised msg_type is ignored, not an error."""
    assert decode_metadata_message(b"d8:msg_typei7e5:piecei0ee") is None


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"le",
        b"d5:piecei0ee",
        b"d8:msg_type1:05:piecei0ee",
        b"d8:msg_typei0ee",
        b"d8:msg_typei0e5:piecei-1ee",
        b"d8:msg_typei1e5:piecei0ee",  # data without total_size
        b"d8:msg_typei0e5:piecei0eexx",  # trailing bytes after a request
    ],
)
def test_malformed_messages_are_refused(payload: bytes) -> None:
    """A ut_metadata payload with missing or mistyped fields is a protocol error."""
    with pytest.raises(RemoteProtocolError):
        decode_metadata_message(payload)


def test_data_longer_than_a_metadata_piece_is_refused() -> None:
    """A data message may carry at most 16 KiB."""
    payload = encode_metadata_message(MetadataData(0, 10**6, bytes(METADATA_PIECE_SIZE + 1)))
    with pytest.raises(RemoteProtocolError):
        decode_metadata_message(payload)


def test_serving_pieces() -> None:
    """metadata_piece cuts 16 KiB pieces; metadata_response rejects what we cannot serve."""
    assert len(RAW) > 2 * METADATA_PIECE_SIZE
    assert b"".join(metadata_piece(RAW, i) for i in range(3)) == RAW
    with pytest.raises(IndexError):
        metadata_piece(RAW, 3)
    assert metadata_response(RAW, 1) == MetadataData(1, len(RAW), RAW[16384:32768])
    assert metadata_response(RAW, 3) == MetadataReject(3)
    assert metadata_response(None, 0) == MetadataReject(0)


@pytest.mark.parametrize("size", [0, -1, 8 * 1024 * 1024 + 1])
def test_fetcher_refuses_impossible_sizes(size: int) -> None:
    """A metadata_size of zero, negative or over the cap is the peer's error."""
    with pytest.raises(RemoteProtocolError):
        MetadataFetcher(INFO_HASH, size, 8 * 1024 * 1024)


def test_fetch_from_one_peer() -> None:
    """One peer serving every piece yields the verified metadata."""
    f = MetadataFetcher(INFO_HASH, len(RAW))
    assert f.num_pieces == 3
    result = None
    while (piece := f.next_request("p", 0.0)) is not None:
        result = f.on_data("p", piece, metadata_piece(RAW, piece), len(RAW))
    assert result == MetadataComplete(RAW)
    assert f.result() == RAW and f.complete
    assert f.next_request("p", 0.0) is None


def test_fetch_across_two_peers_one_rejecting_one_timing_out() -> None:
    """A rejecting peer is not asked again, a silent peer's piece is re-issued, and the fetch completes."""
    f = MetadataFetcher(INFO_HASH, len(RAW), request_timeout=10.0, max_in_flight_per_peer=1)
    assert f.next_request("rejecter", 0.0) == 0
    assert f.next_request("slow", 0.0) == 1
    assert f.next_request("slow", 0.0) is None  # one in flight per peer here
    f.on_reject("rejecter", 0)
    assert f.next_request("rejecter", 1.0) == 2  # piece 0 is not offered to it again
    f.on_reject("rejecter", 2)
    assert f.next_request("rejecter", 1.0) is None  # it refused everything it was offered
    assert f.get_timer() == 10.0
    assert f.handle_timer(5.0) == []
    assert f.handle_timer(10.0) == [1]
    # the slow peer answers nothing; after the timeout it gets the other free pieces first
    assert f.next_request("slow", 11.0) == 0
    assert f.on_data("slow", 0, metadata_piece(RAW, 0)) is None
    assert f.next_request("slow", 12.0) == 2
    assert f.on_data("slow", 2, metadata_piece(RAW, 2)) is None
    assert f.next_request("slow", 13.0) == 1  # only the piece it timed out on is left
    assert f.on_data("slow", 1, metadata_piece(RAW, 1)) == MetadataComplete(RAW)


def test_timed_out_piece_goes_to_another_peer_and_late_data_still_counts() -> None:
    """After a timeout another peer takes the piece; the late answer is accepted and the duplicate ignored."""
    f = MetadataFetcher(INFO_HASH, len(RAW), request_timeout=5.0, max_in_flight_per_peer=1)
    assert f.next_request("a", 0.0) == 0
    assert f.handle_timer(5.0) == [0]
    assert f.next_request("b", 6.0) == 0
    assert f.on_data("a", 0, metadata_piece(RAW, 0)) is None  # late, but good
    assert f.pieces_received == 1
    assert f.on_data("b", 0, metadata_piece(RAW, 0)) is None  # duplicate: ignored
    assert f.pieces_received == 1
    assert f.in_flight("b") == []


def test_bad_hash_resets_and_names_the_contributors() -> None:
    """Metadata whose SHA-1 is wrong is discarded and every contributing peer is reported."""
    f = MetadataFetcher(INFO_HASH, len(RAW), max_in_flight_per_peer=2)
    forged = bytearray(RAW)
    forged[-2] ^= 1
    assert f.next_request("honest", 0.0) == 0
    assert f.next_request("honest", 0.0) == 1
    assert f.next_request("liar", 0.0) == 2
    f.on_data("honest", 0, metadata_piece(RAW, 0))
    f.on_data("honest", 1, metadata_piece(RAW, 1))
    outcome = f.on_data("liar", 2, metadata_piece(bytes(forged), 2))
    assert outcome == MetadataHashMismatch(frozenset({"honest", "liar"}))
    assert f.result() is None and f.pieces_received == 0 and f.hash_failures == 1
    assert f.next_request("honest", 1.0) == 0  # everything is fetched again


def test_wrong_size_piece_is_refused() -> None:
    """A non-final piece shorter than 16 KiB (or a last piece of the wrong length) is refused."""
    f = MetadataFetcher(INFO_HASH, len(RAW))
    with pytest.raises(RemoteProtocolError):
        f.on_data("p", 0, metadata_piece(RAW, 0)[:-1])
    with pytest.raises(RemoteProtocolError):
        f.on_data("p", 2, metadata_piece(RAW, 2) + b"x")
    assert f.pieces_received == 0


def test_out_of_range_piece_and_wrong_total_size_are_refused() -> None:
    """Data for a piece past the end, or claiming another total size, is refused."""
    f = MetadataFetcher(INFO_HASH, len(RAW))
    with pytest.raises(RemoteProtocolError):
        f.on_data("p", 3, b"x")
    with pytest.raises(RemoteProtocolError):
        f.on_data("p", 0, metadata_piece(RAW, 0), total_size=len(RAW) + 1)


def test_forget_peer_frees_its_requests() -> None:
    """When a peer disconnects its pieces become available to others at once."""
    f = MetadataFetcher(INFO_HASH, len(RAW), max_in_flight_per_peer=3)
    assert [f.next_request("gone", 0.0) for _ in range(3)] == [0, 1, 2]
    assert f.next_request("other", 0.0) is None
    f.forget_peer("gone")
    assert f.next_request("other", 0.0) == 0
