"""BEP 14 Local Service Discovery: the BT-SEARCH codec and the announcer/listener on a virtual clock."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pshare.config import LsdConfig
from p2pshare.core.lsd import Announce, LsdNode, PeerFound, decode_announce, encode_announce, group_host
from p2pshare.errors import LocalProtocolError, RemoteProtocolError

CONFIG = LsdConfig()
IH_A = bytes.fromhex("a1" * 20)
IH_B = bytes.fromhex("b2" * 20)
V4 = ("239.192.152.143", 6771)
V6 = ("ff15::efc0:988f", 6771)

LIBTORRENT_STYLE = (
    b"BT-SEARCH * HTTP/1.1\r\n"
    b"Host: 239.192.152.143:6771\r\n"
    b"Port: 6881\r\n"
    b"Infohash: " + b"a1" * 20 + b"\r\n"
    b"cookie: 5f3e\r\n"
    b"\r\n\r\n"
)


def test_encode_matches_the_bep_layout() -> None:
    """Request line, Host, Port, one Infohash header per hash, cookie, then two blank lines."""
    data = encode_announce("239.192.152.143:6771", 6881, [IH_A], "5f3e")
    assert data == LIBTORRENT_STYLE


def test_group_host_brackets_ipv6() -> None:
    """The Host header names the group, with brackets around an IPv6 address."""
    assert group_host(V4) == "239.192.152.143:6771"
    assert group_host(V6) == "[ff15::efc0:988f]:6771"


def test_decode_whole_message() -> None:
    """A BEP 14 announce decodes to its host, port, info hashes and cookie."""
    assert decode_announce(LIBTORRENT_STYLE, CONFIG) == Announce(
        "239.192.152.143:6771", 6881, (IH_A,), "5f3e"
    )


def test_decode_is_case_insensitive_and_ignores_unknown_headers() -> None:
    """Header names in any case; unknown headers are skipped (forward compatibility)."""
    data = (
        b"BT-SEARCH * HTTP/1.1\r\nHOST: [ff15::efc0:988f]:6771\r\nX-Future: 1\r\nport: 51413\r\n"
        b"INFOHASH: " + b"A1" * 20 + b"\r\nInfohash: " + b"b2" * 20 + b"\r\n\r\n"
    )
    assert decode_announce(data, CONFIG) == Announce("[ff15::efc0:988f]:6771", 51413, (IH_A, IH_B), None)


def test_every_truncation_is_refused() -> None:
    """Cut before its final blank line, an announce is a RemoteProtocolError at every byte."""
    end = LIBTORRENT_STYLE.index(b"\r\n\r\n") + 4
    for cut in range(end):
        with pytest.raises(RemoteProtocolError):
            decode_announce(LIBTORRENT_STYLE[:cut], CONFIG)
    for cut in range(end, len(LIBTORRENT_STYLE) + 1):  # the trailing CRLFs are optional
        assert decode_announce(LIBTORRENT_STYLE[:cut], CONFIG).info_hashes == (IH_A,)


@pytest.mark.parametrize(
    "data",
    [
        LIBTORRENT_STYLE.replace(b"BT-SEARCH", b"M-SEARCH"),
        LIBTORRENT_STYLE.replace(b"Port: 6881", b"Port: 0"),
        LIBTORRENT_STYLE.replace(b"Port: 6881", b"Port: 65536"),
        LIBTORRENT_STYLE.replace(b"Port: 6881", b"Port: 68x1"),
        LIBTORRENT_STYLE.replace(b"Port: 6881", b"Port: 6881\r\nPort: 6882"),
        LIBTORRENT_STYLE.replace(b"a1" * 20, b"a1" * 19),
        LIBTORRENT_STYLE.replace(b"a1" * 20, b"g1" * 20),
        LIBTORRENT_STYLE.replace(b"Host: 239.192.152.143:6771\r\n", b""),
        LIBTORRENT_STYLE.replace(b"Port: 6881\r\n", b""),
        LIBTORRENT_STYLE.replace(b"Infohash: " + b"a1" * 20 + b"\r\n", b""),
        LIBTORRENT_STYLE.replace(b"Port: 6881", b"Port 6881"),
        LIBTORRENT_STYLE.replace(b"Port: 6881", b"Po rt: 6881"),
        LIBTORRENT_STYLE + b"body",
        LIBTORRENT_STYLE.replace(b"Host", b"Host: x\r\nHost"),
    ],
)
def test_malformed_announces_are_refused(data: bytes) -> None:
    """Wrong request line, bad or missing port, bad hash, missing headers, a body: RemoteProtocolError."""
    with pytest.raises(RemoteProtocolError):
        decode_announce(data, CONFIG)


def test_limits_on_size_hashes_and_headers() -> None:
    """Messages over max_message bytes, max_infohashes hashes or max_headers unknown headers are refused."""
    small = LsdConfig(max_message=200, max_infohashes=2, max_headers=2)
    many = encode_announce("h:1", 1, [bytes([i]) * 20 for i in range(3)], None)
    with pytest.raises(RemoteProtocolError, match="more than 2 info hashes"):
        decode_announce(many, LsdConfig(max_infohashes=2))
    with pytest.raises(RemoteProtocolError, match="exceeds"):
        decode_announce(many, small)
    chatty = LIBTORRENT_STYLE.replace(b"cookie", b"A: 1\r\nB: 2\r\nC: 3\r\ncookie")
    with pytest.raises(RemoteProtocolError, match="more than 2 unknown headers"):
        decode_announce(chatty, LsdConfig(max_headers=2))


def test_encoder_refuses_bad_arguments() -> None:
    """No hashes, a short hash, port 0 or a cookie with spaces are our own errors."""
    for args in (("h", 1, [], None), ("h", 1, [b"x"], None), ("h", 0, [IH_A], None), ("h", 1, [IH_A], "a b")):
        with pytest.raises(LocalProtocolError):
            encode_announce(*args)  # type: ignore[arg-type]


@given(st.binary(max_size=1500))
def test_decoder_fuzz(data: bytes) -> None:
    """Any datagram: an Announce or a RemoteProtocolError, nothing else."""
    try:
        result = decode_announce(data, CONFIG)
    except RemoteProtocolError:
        return
    assert isinstance(result, Announce) and result.info_hashes


@given(
    st.lists(st.binary(min_size=20, max_size=20), min_size=1, max_size=20, unique=True),
    st.integers(1, 65535),
    st.text(alphabet="0123456789abcdef", min_size=1, max_size=16),
)
def test_round_trip(hashes: list[bytes], port: int, cookie: str) -> None:
    """Whatever we encode decodes back to the same port, hashes and cookie."""
    decoded = decode_announce(encode_announce(group_host(V6), port, hashes, cookie), CONFIG)
    assert decoded == Announce(group_host(V6), port, tuple(hashes), cookie)


# -- the node -----------------------------------------------------------------------------------


def node(**overrides: object) -> LsdNode:
    return LsdNode(LsdConfig(**overrides), port=6881, cookie="me", groups=[V4, V6])  # type: ignore[arg-type]


def test_announces_at_start_to_both_groups_then_every_five_minutes() -> None:
    """A torrent is announced at once to the v4 and v6 groups, then again 300 s later."""
    n = node()
    n.add_torrent(IH_A, 0.0)
    assert n.get_timer() == 0.0
    n.handle_timer(0.0)
    sent = n.datagrams_to_send()
    assert [g for g, _ in sent] == [V4, V6]
    assert sent[0][1] == encode_announce("239.192.152.143:6771", 6881, [IH_A], "me")
    assert b"Host: [ff15::efc0:988f]:6771" in sent[1][1]
    assert n.get_timer() == 300.0
    n.handle_timer(299.0)
    assert n.datagrams_to_send() == []
    n.handle_timer(300.0)
    assert len(n.datagrams_to_send()) == 2


def test_no_more_than_one_announce_a_minute() -> None:
    """A torrent added 10 s after an announce waits until a minute has passed since it."""
    n = node()
    n.add_torrent(IH_A, 0.0)
    n.handle_timer(0.0)
    n.datagrams_to_send()
    n.add_torrent(IH_B, 10.0)
    assert n.get_timer() == 60.0
    n.handle_timer(30.0)
    assert n.datagrams_to_send() == []
    n.handle_timer(60.0)
    (v4, _v6) = n.datagrams_to_send()
    assert decode_announce(v4[1], CONFIG).info_hashes == (IH_B,)


def test_many_torrents_share_messages_within_the_size_limit() -> None:
    """Forty due torrents go out in messages of at most max_infohashes hashes and max_message bytes."""
    n = node(max_infohashes=16)
    hashes = [bytes([i]) * 20 for i in range(40)]
    for ih in hashes:
        n.add_torrent(ih, 0.0)
    announced: list[bytes] = []
    now = 0.0
    for _ in range(3):
        now = n.get_timer() or now
        n.handle_timer(now)
        for group, payload in n.datagrams_to_send():
            assert len(payload) <= CONFIG.max_message
            if group == V4:
                announced += decode_announce(payload, CONFIG).info_hashes
    assert sorted(announced) == sorted(hashes) and now == 120.0


def test_others_announce_for_our_torrent_is_a_peer_found() -> None:
    """An announce from 192.168.1.11 for a torrent we have names that address and its Port."""
    n = node()
    n.add_torrent(IH_A, 0.0)
    n.receive_data(encode_announce("x", 6882, [IH_A, IH_B], "other"), "192.168.1.11", 1.0)
    assert n.next_event() == PeerFound(IH_A, "192.168.1.11", 6882)
    assert n.next_event() is None  # IH_B is not ours


def test_our_own_announce_is_ignored_by_cookie() -> None:
    """Our announce looped back by multicast yields no peer."""
    n = node()
    n.add_torrent(IH_A, 0.0)
    n.handle_timer(0.0)
    for _group, payload in n.datagrams_to_send():
        n.receive_data(payload, "192.168.1.10", 0.1)
    assert n.next_event() is None and n.own_ignored == 2


def test_link_local_source_keeps_its_scope() -> None:
    """An IPv6 link-local sender is reported with its interface, so it can be dialled."""
    n = node()
    n.add_torrent(IH_A, 0.0)
    n.receive_data(encode_announce("x", 1, [IH_A], None), "fe80::1%eth0", 0.0)
    assert n.next_event() == PeerFound(IH_A, "fe80::1%eth0", 1)


def test_malformed_datagram_is_counted_and_raised() -> None:
    """Garbage raises RemoteProtocolError and is counted; the node goes on."""
    n = node()
    with pytest.raises(RemoteProtocolError):
        n.receive_data(b"GET / HTTP/1.1\r\n\r\n", "192.168.1.11", 0.0)
    assert n.malformed == 1


def test_removed_torrent_is_no_longer_announced_or_reported() -> None:
    """After remove_torrent, no timer for it and no peers for it."""
    n = node()
    n.add_torrent(IH_A, 0.0)
    n.remove_torrent(IH_A)
    assert n.get_timer() is None
    n.receive_data(encode_announce("x", 1, [IH_A], None), "192.168.1.11", 0.0)
    assert n.next_event() is None


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("add"), st.integers(0, 5)),
            st.tuples(st.just("remove"), st.integers(0, 5)),
            st.tuples(st.just("timer"), st.floats(0.0, 2000.0)),
            st.tuples(st.just("hear"), st.integers(0, 5)),
        ),
        max_size=60,
    )
)
def test_announces_never_come_closer_than_a_minute(ops: list[tuple[str, float]]) -> None:
    """Whatever torrents come and go and whenever the timer fires, announces are >= 60 s apart."""
    n = node()
    now = 0.0
    sent_at: list[float] = []
    for kind, value in ops:
        ih = bytes([int(value) % 6]) * 20
        if kind == "add":
            n.add_torrent(ih, now)
        elif kind == "remove":
            n.remove_torrent(ih)
        elif kind == "hear":
            n.receive_data(encode_announce("x", 1, [ih], "other"), "10.0.0.1", now)
            while (event := n.next_event()) is not None:
                assert event.info_hash == ih
        else:
            now = max(now, value)
            n.handle_timer(now)
        if n.datagrams_to_send():
            sent_at.append(now)
    assert all(b - a >= 60.0 for a, b in itertools.pairwise(sent_at))
