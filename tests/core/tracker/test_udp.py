"""BEP 15 packets and the UDP tracker machine on a virtual clock."""

from __future__ import annotations

import itertools
import random
import struct
from collections.abc import Callable
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pshare.config import TrackerConfig
from p2pshare.core.tracker import (
    AnnounceDone,
    AnnounceEvent,
    AnnounceRequest,
    RequestFailed,
    ScrapeDone,
    ScrapeStats,
    TrackerFailure,
    TrackerTimeout,
    UdpTrackerMachine,
    udp,
)
from p2pshare.core.types import InfoHash, PeerAddress
from p2pshare.errors import LocalProtocolError, RemoteProtocolError

CFG = TrackerConfig()
IH = InfoHash(b"\x11" * 20)
REQ = AnnounceRequest(
    info_hash=IH, peer_id=b"-PS0100-abcdefghijkl", port=6881, uploaded=1, downloaded=2, left=3,
    event=AnnounceEvent.STARTED, numwant=None, key=0xCAFEBABE,
)  # fmt: skip


def test_connect_and_announce_requests_have_the_bep15_layout() -> None:
    """Connect is magic/0/tid; announce is 98 bytes with the fields at the offsets BEP 15 gives."""
    assert udp.encode_connect(7) == bytes.fromhex("0000041727101980") + b"\0\0\0\0" + b"\0\0\0\x07"
    raw = udp.encode_announce(0x0102030405060708, 9, REQ)
    assert len(raw) == 98
    assert raw[:8] == bytes(range(1, 9)) and raw[8:12] == b"\0\0\0\x01" and raw[12:16] == b"\0\0\0\x09"
    assert raw[16:36] == IH.value and raw[36:56] == REQ.peer_id
    assert struct.unpack(">QQQ", raw[56:80]) == (2, 3, 1)  # downloaded, left, uploaded
    assert struct.unpack(">IIIiH", raw[80:98]) == (2, 0, 0xCAFEBABE, -1, 6881)
    back = udp.decode_request(raw)
    assert back.announce == REQ and back.connection_id == 0x0102030405060708


def test_answers_parse_including_ipv6_peers_and_scrape_triples() -> None:
    """Announce answers carry interval, leechers, seeders and peers; scrape answers a triple per hash."""
    peers = [PeerAddress("127.0.0.9", 7001), PeerAddress("127.0.0.10", 7002)]
    raw = udp.encode_announce_response(5, 1200, 4, 6, peers)
    resp = udp.parse_announce(raw, ipv6=False, cfg=CFG)
    assert (resp.interval, resp.incomplete, resp.complete, resp.peers) == (1200.0, 4, 6, tuple(peers))
    v6 = udp.encode_announce_response(5, 1200, 0, 0, [PeerAddress("::1", 1)])
    assert udp.parse_announce(v6, ipv6=True, cfg=CFG).peers == (PeerAddress("::1", 1),)
    with pytest.raises(RemoteProtocolError):
        udp.parse_announce(raw, ipv6=True, cfg=CFG)  # 12 peer bytes are not a multiple of 18
    other = InfoHash(b"\x22" * 20)
    scraped = udp.parse_scrape(udp.encode_scrape_response(1, [ScrapeStats(1, 2, 3), ScrapeStats(4, 5, 6)]),
                               [IH, other])  # fmt: skip
    assert scraped.files == {IH: ScrapeStats(1, 2, 3), other: ScrapeStats(4, 5, 6)}
    with pytest.raises(RemoteProtocolError):
        udp.parse_scrape(udp.encode_scrape_response(1, [ScrapeStats()] * 2), [IH])


@given(st.binary(max_size=120))
def test_answer_parsers_fuzz_raise_only_protocol_errors(raw: bytes) -> None:
    """Arbitrary datagrams either parse or raise RemoteProtocolError in every parser."""
    for parse in (
        udp.decode_header,
        udp.parse_connect,
        lambda d: udp.parse_announce(d, ipv6=False, cfg=CFG),
        lambda d: udp.parse_scrape(d, [IH]),
        udp.decode_request,
    ):
        try:
            parse(raw)
        except RemoteProtocolError:
            pass


class FakeTracker:
    """Answers the machine's datagrams the way a BEP 15 tracker would."""

    def __init__(self) -> None:
        self.conn_ids: list[int] = []
        self.seen: list[udp.UdpRequest] = []

    def answer(self, datagram: bytes) -> bytes:
        req = udp.decode_request(datagram)
        self.seen.append(req)
        if req.action == udp.ACTION_CONNECT:
            self.conn_ids.append(random.getrandbits(64))
            return udp.encode_connect_response(req.transaction_id, self.conn_ids[-1])
        assert req.connection_id == self.conn_ids[-1]
        if req.action == udp.ACTION_ANNOUNCE:
            return udp.encode_announce_response(
                req.transaction_id, 900, 1, 2, [PeerAddress("127.0.0.3", 6881)]
            )
        return udp.encode_scrape_response(req.transaction_id, [ScrapeStats(7, 8, 9)] * len(req.info_hashes))


def one(m: UdpTrackerMachine) -> bytes:
    out = m.datagrams_to_send()
    assert len(out) == 1
    return out[0]


def test_announce_connects_first_then_reuses_the_id_for_one_minute() -> None:
    """The first announce connects; a second within 60 s reuses the id; after 60 s it connects again."""
    m, tracker = UdpTrackerMachine(CFG, rand=random.Random(1)), FakeTracker()
    m.start_announce(REQ, now=0.0)
    m.receive_datagram(tracker.answer(one(m)), now=0.1)
    m.receive_datagram(tracker.answer(one(m)), now=0.2)
    event = m.next_event()
    assert isinstance(event, AnnounceDone) and event.response.peers == (PeerAddress("127.0.0.3", 6881),)
    assert not m.busy and m.get_timer() is None
    m.start_scrape([IH], now=59.0)
    m.receive_datagram(tracker.answer(one(m)), now=59.1)
    event = m.next_event()
    assert isinstance(event, ScrapeDone) and event.response.files[IH] == ScrapeStats(7, 8, 9)
    m.start_announce(REQ, now=60.2)
    assert udp.decode_request(one(m)).action == udp.ACTION_CONNECT
    assert [r.action for r in tracker.seen] == [0, 1, 2]


def test_retry_schedule_is_15_times_2_to_the_n_until_the_retries_run_out() -> None:
    """Unanswered tries are resent at 15, 30, 60 ... seconds (capped), then the request times out."""
    cfg = replace(CFG, udp_max_retries=8, udp_retry_cap=3840.0)
    m = UdpTrackerMachine(cfg, rand=random.Random(2))
    m.start_announce(REQ, now=0.0)
    sent_at = [0.0]
    one(m)
    while m.busy:
        timer = m.get_timer()
        assert timer is not None
        m.handle_timer(timer - 0.001)  # early: nothing happens
        assert m.datagrams_to_send() == []
        m.handle_timer(timer)
        out = m.datagrams_to_send()
        if out:
            sent_at.append(timer)
            assert udp.decode_request(out[0]).action == udp.ACTION_CONNECT
    gaps = [b - a for a, b in itertools.pairwise(sent_at)]
    assert gaps == [15.0 * 2**n for n in range(8)]
    event = m.next_event()
    assert isinstance(event, RequestFailed) and isinstance(event.error, TrackerTimeout)
    assert len(sent_at) == 9


def test_retry_wait_is_capped() -> None:
    """No single wait exceeds udp_retry_cap."""
    m = UdpTrackerMachine(replace(CFG, udp_max_retries=5, udp_retry_cap=50.0), rand=random.Random(3))
    m.start_announce(REQ, now=0.0)
    waits, now = [], 0.0
    while m.busy:
        timer = m.get_timer()
        assert timer is not None
        waits.append(timer - now)
        now = timer
        m.handle_timer(now)
    assert waits == [15.0, 30.0, 50.0, 50.0, 50.0, 50.0]


def test_retransmission_after_the_id_expires_reconnects_and_stale_answers_are_ignored() -> None:
    """A late answer to an old transaction is ignored; a resend past the id's minute connects again."""
    cfg = replace(CFG, udp_retry_base=40.0, udp_max_retries=2)
    m, tracker = UdpTrackerMachine(cfg, rand=random.Random(4)), FakeTracker()
    m.start_announce(REQ, now=0.0)
    m.receive_datagram(tracker.answer(one(m)), now=1.0)
    first_announce = one(m)
    m.handle_timer(41.0)  # 40 s without an answer: resend, the id (from t=1) is still good
    resend = one(m)
    assert udp.decode_request(resend).action == udp.ACTION_ANNOUNCE
    m.receive_datagram(tracker.answer(first_announce), now=42.0)  # answer to the old transaction id
    assert m.next_event() is None and m.ignored == 1 and m.busy
    m.handle_timer(121.0)  # 80 s later: the id has expired, so connect again
    assert udp.decode_request(one(m)).action == udp.ACTION_CONNECT


def test_error_action_ends_the_request_with_its_message() -> None:
    """An action-3 answer with our transaction id ends the request with TrackerFailure."""
    m = UdpTrackerMachine(CFG, rand=random.Random(5))
    m.start_announce(REQ, now=0.0)
    tid = udp.decode_request(one(m)).transaction_id
    m.receive_datagram(udp.encode_error(tid, "Requested download is not authorized"), now=0.1)
    event = m.next_event()
    assert isinstance(event, RequestFailed) and isinstance(event.error, TrackerFailure)
    assert event.error.reason == "Requested download is not authorized"


@pytest.mark.parametrize(
    "answer",
    [
        lambda tid: udp.encode_announce_response(tid, 1, 0, 0, []),  # wrong action for connect
        lambda tid: struct.pack(">II", 0, tid) + b"\x01",  # connect answer too short
    ],
)
def test_malformed_answer_with_our_tid_fails_the_request(answer: Callable[[int], bytes]) -> None:
    """Our transaction id with a wrong action or a short body ends the request with RemoteProtocolError."""
    m = UdpTrackerMachine(CFG, rand=random.Random(6))
    m.start_announce(REQ, now=0.0)
    tid = udp.decode_request(one(m)).transaction_id
    m.receive_datagram(answer(tid), now=0.1)
    event = m.next_event()
    assert isinstance(event, RequestFailed) and isinstance(event.error, RemoteProtocolError)
    assert not m.busy


def test_junk_and_oversize_datagrams_are_ignored() -> None:
    """Short, oversize, unsolicited and foreign-tid datagrams are counted and dropped."""
    m = UdpTrackerMachine(replace(CFG, udp_max_packet=64), rand=random.Random(7))
    m.receive_datagram(b"x" * 20, now=0.0)  # nothing in flight
    m.start_announce(REQ, now=0.0)
    tid = udp.decode_request(one(m)).transaction_id
    for junk in (
        b"",
        b"abc",
        udp.encode_connect_response(tid ^ 1, 5),
        udp.encode_connect_response(tid, 5) + bytes(60),
    ):
        m.receive_datagram(junk, now=0.1)
    assert m.ignored == 5 and m.busy and m.next_event() is None


def test_one_request_at_a_time_and_scrape_bounds() -> None:
    """Starting a second request while one is in flight, or scraping 0 or 75 hashes, is our bug."""
    m = UdpTrackerMachine(CFG)
    with pytest.raises(LocalProtocolError):
        m.start_scrape([], now=0.0)
    with pytest.raises(LocalProtocolError):
        m.start_scrape([IH] * 75, now=0.0)
    m.start_announce(REQ, now=0.0)
    with pytest.raises(LocalProtocolError):
        m.start_announce(REQ, now=0.0)


@given(st.lists(st.binary(max_size=40), max_size=20))
def test_machine_survives_any_datagram_sequence(datagrams: list[bytes]) -> None:
    """Whatever arrives, the machine never raises and stays consistent."""
    m = UdpTrackerMachine(CFG, rand=random.Random(8))
    m.start_announce(REQ, now=0.0)
    tid = udp.decode_request(one(m)).transaction_id
    for i, d in enumerate(datagrams):
        m.receive_datagram(d[:4] + struct.pack(">I", tid) + d[4:] if i % 2 else d, now=float(i))
        m.datagrams_to_send()
    while (event := m.next_event()) is not None:
        assert isinstance(event, AnnounceDone | RequestFailed)


def test_empty_announce_answer_is_a_refusal() -> None:
    """An announce answer of only its 8-byte header (opentracker's refusal) ends with TrackerFailure."""
    m = UdpTrackerMachine(CFG, rand=random.Random(9))
    m.start_announce(REQ, now=0.0)
    tid = udp.decode_request(one(m)).transaction_id
    m.receive_datagram(udp.encode_connect_response(tid, 77), now=0.1)
    tid = udp.decode_request(one(m)).transaction_id
    m.receive_datagram(struct.pack(">II", udp.ACTION_ANNOUNCE, tid), now=0.2)
    event = m.next_event()
    assert isinstance(event, RequestFailed) and isinstance(event.error, TrackerFailure)


def test_url_data_follows_the_announce_in_255_byte_options() -> None:
    """BEP 41: the URL's path and query follow the 98 bytes as URLData options and parse back whole."""
    path = b"/announce?passkey=" + b"k" * 300
    raw = udp.encode_announce(1, 2, REQ, path)
    assert raw[98] == 2 and raw[99] == 255 and raw[100:355] == path[:255]
    assert raw[355] == 2 and raw[356] == len(path) - 255
    assert udp.decode_request(raw).url_data == path
    assert udp.decode_request(raw[:98] + b"\x01\x02\x03abc\x00\x02\x01z").url_data == b"abc"
    assert udp.decode_request(udp.encode_announce(1, 2, REQ)).url_data == b""


def test_machine_sends_its_url_data_with_each_announce() -> None:
    """A machine made with url_data puts it on announces (not on connects or scrapes)."""
    m = UdpTrackerMachine(CFG, rand=random.Random(10), url_data=b"/announce?k=1")
    m.start_announce(REQ, now=0.0)
    tid = udp.decode_request(one(m)).transaction_id
    m.receive_datagram(udp.encode_connect_response(tid, 9), now=0.1)
    assert udp.decode_request(one(m)).url_data == b"/announce?k=1"
