"""HTTP tracker codec: announce/scrape URLs and bencoded answers (BEP 3, 7, 23)."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from urllib.parse import parse_qsl, unquote_to_bytes, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pshare.config import TrackerConfig
from p2pshare.core import bencode
from p2pshare.core.tracker import (
    AnnounceEvent,
    AnnounceRequest,
    TrackerFailure,
    announce_url,
    parse_announce_response,
    parse_scrape_response,
    scrape_request_url,
)
from p2pshare.core.tracker.peers import decode_compact
from p2pshare.core.types import InfoHash, PeerAddress
from p2pshare.errors import RemoteProtocolError

CFG = TrackerConfig()
IH = InfoHash(bytes(range(20)))
PID = b"-PS0100-\x00\xff %&?=/+~._-ab"[:20]


def raw_params(url: str) -> dict[str, bytes]:
    """The query of ``url`` with each value percent-decoded to bytes."""
    query = urlsplit(url).query
    return {k: unquote_to_bytes(v) for k, v in (p.split("=", 1) for p in query.split("&"))}


def request(**kw: object) -> AnnounceRequest:
    base: dict[str, object] = dict(info_hash=IH, peer_id=PID.ljust(20, b"x"), port=6881)
    base.update(kw)
    return AnnounceRequest(**base)  # type: ignore[arg-type]


def test_announce_url_escapes_binary_hash_and_peer_id_byte_for_byte() -> None:
    """Every byte of the hash and peer id survives percent-escaping; only unreserved bytes stay bare."""
    req = request(uploaded=5, downloaded=7, left=9, event=AnnounceEvent.STARTED, numwant=30, key=0xBEEF)
    url = announce_url("http://t.example/announce", req)
    params = raw_params(url)
    assert params["info_hash"] == IH.value
    assert params["peer_id"] == req.peer_id
    assert params["port"] == b"6881"
    assert (params["uploaded"], params["downloaded"], params["left"]) == (b"5", b"7", b"9")
    assert params["compact"] == b"1"
    assert params["event"] == b"started"
    assert params["numwant"] == b"30"
    assert params["key"] == b"0000beef"
    escaped = url.split("info_hash=")[1].split("&")[0]
    assert escaped.startswith("%00%01%02")
    assert all(c.isalnum() or c in "%-._~" for c in url.split("?", 1)[1].replace("&", "").replace("=", ""))


def test_announce_url_keeps_an_existing_query_and_omits_event_for_regular_announces() -> None:
    """A passkey query is kept, a regular announce has no event key, and a tracker id is echoed."""
    url = announce_url("http://t/announce?passkey=abc", request(tracker_id=b"id 1"))
    assert url.startswith("http://t/announce?passkey=abc&info_hash=")
    params = raw_params(url)
    assert "event" not in params and "numwant" not in params
    assert params["trackerid"] == b"id 1"


@given(st.binary(min_size=20, max_size=20), st.binary(min_size=20, max_size=20))
def test_any_hash_and_peer_id_round_trip_through_the_url(ih: bytes, pid: bytes) -> None:
    """Arbitrary 20-byte hashes and peer ids decode back to themselves from the query."""
    url = announce_url("http://t/a", request(info_hash=InfoHash(ih), peer_id=pid))
    params = dict(parse_qsl(urlsplit(url).query, encoding="latin-1"))
    assert params["info_hash"].encode("latin-1") == ih
    assert params["peer_id"].encode("latin-1") == pid


def test_scrape_url_repeats_info_hash() -> None:
    """A scrape for two hashes names both in order."""
    other = InfoHash(b"\xff" * 20)
    url = scrape_request_url("http://t/scrape", [IH, other])
    pairs = [(k, unquote_to_bytes(v)) for k, v in (p.split("=") for p in urlsplit(url).query.split("&"))]
    assert pairs == [("info_hash", IH.value), ("info_hash", other.value)]


def body(d: dict[bytes, object]) -> bytes:
    return bencode.encode(d)


def test_compact_peers_and_peers6_are_parsed_with_counts_and_intervals() -> None:
    """BEP 23 compact IPv4 and BEP 7 peers6 both become addresses, with swarm counts and intervals."""
    v4 = bytes([127, 0, 0, 2, 0x1A, 0xE1, 10, 1, 2, 3, 0, 80])
    v6 = bytes(15) + b"\x01" + b"\x1a\xe2"
    resp = parse_announce_response(
        body({b"interval": 900, b"min interval": 120, b"peers": v4, b"peers6": v6, b"complete": 3,
              b"incomplete": 4, b"tracker id": b"T1", b"warning message": b"be nice"}),
        CFG,
    )  # fmt: skip
    assert resp.peers == (
        PeerAddress("127.0.0.2", 6881),
        PeerAddress("10.1.2.3", 80),
        PeerAddress("::1", 6882),
    )
    assert (resp.interval, resp.min_interval) == (900.0, 120.0)
    assert (resp.complete, resp.incomplete, resp.tracker_id, resp.warning) == (3, 4, b"T1", "be nice")


def test_dict_peers_skip_names_and_port_zero() -> None:
    """BEP 3 dict peers are read; DNS names and port 0 are skipped, not fatal."""
    peers = [
        {b"ip": b"127.0.0.5", b"port": 7000, b"peer id": b"x" * 20},
        {b"ip": b"tracker.example", b"port": 7000},
        {b"ip": b"::2", b"port": 0},
        {b"ip": b"::3", b"port": 9},
    ]
    resp = parse_announce_response(body({b"interval": 60, b"peers": peers}), CFG)
    assert resp.peers == (PeerAddress("127.0.0.5", 7000), PeerAddress("::3", 9))


def test_intervals_are_clamped_and_defaulted() -> None:
    """An interval of 1 s rises to min_interval; a missing one is the default; a huge one is capped."""
    assert parse_announce_response(body({b"interval": 1}), CFG).interval == CFG.min_interval
    assert parse_announce_response(body({}), CFG).interval == CFG.default_interval
    assert parse_announce_response(body({b"interval": 10**9}), CFG).interval == CFG.max_interval


def test_peer_count_is_bounded() -> None:
    """Peers beyond max_peers (IPv4 and IPv6 together) are dropped."""
    cfg = replace(CFG, max_peers=3)
    v4 = b"".join(bytes([127, 0, 0, i, 0, 1]) for i in range(1, 6))
    v6 = bytes(15) + b"\x01\x00\x01"
    resp = parse_announce_response(body({b"peers": v4, b"peers6": v6}), cfg)
    assert [p.host for p in resp.peers] == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    resp = parse_announce_response(body({b"peers": v4[:12], b"peers6": v6}), cfg)
    assert [p.host for p in resp.peers] == ["127.0.0.1", "127.0.0.2", "::1"]


def test_failure_reason_raises_tracker_failure_with_bounded_text() -> None:
    """A failure reason becomes TrackerFailure carrying at most max_text bytes of it."""
    cfg = replace(CFG, max_text=10)
    with pytest.raises(TrackerFailure) as info:
        parse_announce_response(body({b"failure reason": b"Requested download is not authorized"}), cfg)
    assert info.value.reason == "Requested "


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"<html>nope</html>",
        b"li1ee",
        bencode.encode({b"peers": b"12345"}),
        bencode.encode({b"peers6": b"x" * 17}),
        bencode.encode({b"peers": 5}),
        bencode.encode({b"peers": [b"x"]}),
        bencode.encode({b"peers": [{b"ip": 1, b"port": 2}]}),
        bencode.encode({b"peers6": [1]}),
        bencode.encode({b"interval": -5}),
        bencode.encode({b"complete": b"3"}),
        bencode.encode({b"tracker id": b"x" * 300}),
        b"d" * 20 + b"e" * 20,
        b"d8:intervali60ee trailing",
    ],
)
def test_malformed_answers_are_remote_protocol_errors(raw: bytes) -> None:
    """Garbage, wrong types and out-of-range values raise RemoteProtocolError, never anything else."""
    with pytest.raises(RemoteProtocolError):
        parse_announce_response(raw, CFG)


def test_oversize_answer_is_refused() -> None:
    """A body longer than max_response_bytes is refused before decoding."""
    cfg = replace(CFG, max_response_bytes=64)
    with pytest.raises(RemoteProtocolError, match="exceeds"):
        parse_announce_response(body({b"peers": b"\x7f\x00\x00\x01\x00\x01" * 20}), cfg)


@given(st.binary(max_size=300))
def test_announce_parser_fuzz_raises_only_protocol_errors(raw: bytes) -> None:
    """Random bytes either parse or raise a RemoteProtocolError / TrackerFailure."""
    try:
        parse_announce_response(raw, CFG)
    except (RemoteProtocolError, TrackerFailure):
        pass


@given(
    st.dictionaries(
        st.sampled_from([b"interval", b"peers", b"peers6", b"complete", b"failure reason", b"tracker id"]),
        st.one_of(st.integers(-5, 10**6), st.binary(max_size=40), st.lists(st.integers(), max_size=3)),
    )
)
def test_structured_fuzz_raises_only_protocol_errors(d: dict[bytes, object]) -> None:
    """Well-formed bencode with wrong field types never escapes as another exception."""
    try:
        parse_announce_response(bencode.encode(d), CFG)
    except (RemoteProtocolError, TrackerFailure):
        pass


def test_scrape_answer_maps_hashes_to_counts() -> None:
    """A scrape answer's files dict becomes per-hash stats; a failure reason raises."""
    raw = body({b"files": {IH.value: {b"complete": 1, b"downloaded": 2, b"incomplete": 3}}})
    stats = parse_scrape_response(raw, CFG).files[IH]
    assert (stats.complete, stats.downloaded, stats.incomplete) == (1, 2, 3)
    with pytest.raises(TrackerFailure):
        parse_scrape_response(body({b"failure reason": b"no"}), CFG)
    with pytest.raises(RemoteProtocolError):
        parse_scrape_response(body({b"files": {b"short": {}}}), CFG)
    too_many = {bytes([i]) * 20: {} for i in range(CFG.max_scrape_files + 1)}
    with pytest.raises(RemoteProtocolError, match="lists"):
        parse_scrape_response(body({b"files": too_many}), CFG)


@given(st.binary(min_size=16, max_size=16), st.integers(1, 65535))
def test_compact_ipv6_text_matches_the_standard_library(raw: bytes, port: int) -> None:
    """Compact IPv6 peers are spelled exactly as ipaddress spells them (RFC 5952)."""
    (peer,) = decode_compact(raw + port.to_bytes(2, "big"), ipv6=True, limit=5)
    assert peer == PeerAddress(str(ipaddress.IPv6Address(raw)), port)


@given(st.binary(min_size=4, max_size=4), st.integers(1, 65535))
def test_compact_ipv4_text_matches_the_standard_library(raw: bytes, port: int) -> None:
    """Compact IPv4 peers are dotted quads as ipaddress writes them."""
    (peer,) = decode_compact(raw + port.to_bytes(2, "big"), ipv6=False, limit=5)
    assert peer == PeerAddress(str(ipaddress.IPv4Address(raw)), port)


EDGE_V6 = [
    bytes(16),
    bytes(15) + b"\x01",
    b"\x00\x01" * 8,
    bytes(10) + b"\xff\xff\x7f\x00\x00\x01",
    b"\x20\x01\x0d\xb8" + bytes(4) + b"\x00\x01" + bytes(4) + b"\x00\x01",
]


@pytest.mark.parametrize("raw", EDGE_V6)
def test_compact_ipv6_edge_spellings(raw: bytes) -> None:
    """All-zero, loopback, no zero run, IPv4-mapped and equal zero runs are spelled as ipaddress does."""
    (peer,) = decode_compact(raw + b"\x00\x01", ipv6=True, limit=5)
    assert peer.host == str(ipaddress.IPv6Address(raw))
