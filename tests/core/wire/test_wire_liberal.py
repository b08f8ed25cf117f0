"""PeerConnection accepts what real clients send where they differ from the letter of BEP 3 (issue 10)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pshare.core.bitfield import Bitfield
from p2pshare.core.wire import (
    AllowedFast,
    BitfieldMsg,
    Event,
    Extended,
    ExtensionHandshake,
    ExtensionHandshakeReceived,
    Have,
    HaveAll,
    HaveNone,
    Interested,
    KeepAlive,
    Message,
    PeerConnection,
    Port,
    encode,
)
from p2pshare.errors import RemoteProtocolError
from tests.core.wire.wire_helpers import INFO_HASH, PEER_A, PEER_B, Pair, drain, split_every_way

N = 20  # pieces: three bitfield bytes, four spare bits

ARIA2_EXT = ExtensionHandshake(m={"ut_metadata": 9}, v="aria2/1.36.0", p=46881, metadata_size=20579)


def bits(*indices: int, n: int = N) -> bytes:
    bf = Bitfield(n)
    for i in indices:
        bf.add(i)
    return bf.to_bytes()


def aria2_opening() -> list[Message]:
    """What aria2 1.36 sent a p2pshare seeder on a reconnect (its log): ext, bitfield, ..., bitfield."""
    return [
        Extended(0, ARIA2_EXT.encode()),
        BitfieldMsg(bits(0, 5, 7)),
        AllowedFast(3),
        AllowedFast(11),
        Interested(),
        BitfieldMsg(bits(0, 5, 7, 8, 19)),  # again, mid-connection, with two more pieces
    ]


def received(conn: PeerConnection, chunks: list[bytes]) -> list[Event]:
    events: list[Event] = []
    for chunk in chunks:
        conn.receive_data(chunk)
        events += drain(conn)
    return events


def test_aria2_opening_is_accepted_at_every_split() -> None:
    """aria2's extension handshake before its bitfield, and its second bitfield, pass at any split."""
    data = b"".join(encode(m) for m in aria2_opening())
    for chunks in split_every_way(data):
        pair = Pair(num_pieces=N)
        events = received(pair.a, chunks)
        assert events == [
            ExtensionHandshakeReceived(ARIA2_EXT),
            BitfieldMsg(bits(0, 5, 7)),
            AllowedFast(3),
            AllowedFast(11),
            Interested(),
            Have(8),
            Have(19),
        ]
        assert pair.a.peer_has is not None and list(pair.a.peer_has) == [0, 5, 7, 8, 19]


@pytest.mark.parametrize(
    ("first", "expected"),
    [(BitfieldMsg(bits(1, 2)), [1, 2]), (HaveAll(), list(range(N))), (HaveNone(), [])],
    ids=["bitfield", "have-all", "have-none"],
)
def test_extension_handshake_may_precede_the_first_have_set(first: Message, expected: list[int]) -> None:
    """Extended messages, a port and keep-alives before the bitfield / have-all / have-none are fine."""
    pair = Pair(num_pieces=N)
    data = encode(Extended(0, ARIA2_EXT.encode())) + encode(Port(6881)) + encode(KeepAlive()) + encode(first)
    events = pair.to_a(data)
    assert events[-1] == first
    assert pair.a.peer_has is not None and list(pair.a.peer_has) == expected


def test_later_bitfield_adds_its_new_pieces_as_haves() -> None:
    """A second bitfield yields a Have for each piece it adds and keeps pieces it leaves out."""
    pair = Pair(num_pieces=N)
    pair.to_a(encode(BitfieldMsg(bits(1, 2, 3))))
    events = pair.to_a(encode(Interested()) + encode(BitfieldMsg(bits(2, 4, 19))))
    assert events == [Interested(), Have(4), Have(19)]
    assert pair.a.peer_has is not None and list(pair.a.peer_has) == [1, 2, 3, 4, 19]


def test_later_have_all_completes_the_peer() -> None:
    """Have-all after other messages makes the peer a seed, one Have per missing piece."""
    pair = Pair(num_pieces=N)
    pair.to_a(encode(HaveNone()) + encode(Have(6)))
    events = pair.to_a(encode(HaveAll()))
    assert events == [Have(i) for i in range(N) if i != 6]
    assert pair.a.peer_has is not None and pair.a.peer_has.complete


def test_later_have_none_changes_nothing() -> None:
    """Have-none after the first message reports nothing and forgets no piece."""
    pair = Pair(num_pieces=N)
    pair.to_a(encode(BitfieldMsg(bits(0, 9))))
    assert pair.to_a(encode(HaveNone())) == []
    assert pair.a.peer_has is not None and list(pair.a.peer_has) == [0, 9]


def test_bitfield_after_a_have_is_their_union() -> None:
    """A have before the bitfield (out of BEP 3 order) merges with it."""
    pair = Pair(num_pieces=N)
    events = pair.to_a(encode(Have(12)) + encode(BitfieldMsg(bits(12, 13))))
    assert events == [Have(12), Have(13)]
    assert pair.a.peer_has is not None and list(pair.a.peer_has) == [12, 13]


def test_later_bitfield_of_wrong_size_is_still_refused() -> None:
    """A later bitfield longer than the piece count needs is refused by the parser."""
    pair = Pair(num_pieces=N)
    pair.to_a(encode(HaveNone()))
    pair.a.receive_data(encode(BitfieldMsg(b"\x00\x00\x00\x00")))
    with pytest.raises(RemoteProtocolError, match="bitfield"):
        pair.a.next_event()


def test_later_have_all_without_the_fast_extension_is_still_refused() -> None:
    """Have-all needs BEP 6 on both sides, first message or not."""
    pair = Pair(num_pieces=N, b_fast=False)
    pair.to_a(encode(BitfieldMsg(bits(1))))
    pair.a.receive_data(encode(HaveAll()))
    with pytest.raises(RemoteProtocolError, match="fast"):
        pair.a.next_event()


def magnet_receiver() -> PeerConnection:
    """A receiver that does not know the piece count yet (a magnet link), after both handshakes."""
    conn = PeerConnection(None, PEER_A, initiator=False)
    sender = PeerConnection(INFO_HASH, PEER_B, initiator=True)
    conn.receive_data(sender.handshake_bytes())
    drain(conn)
    conn.handshake_bytes()
    return conn


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([BitfieldMsg(bits(1, 2)), Have(5), BitfieldMsg(bits(2, 9))], [1, 2, 5, 9]),
        ([HaveNone(), BitfieldMsg(bits(4))], [4]),
        ([HaveNone(), HaveAll()], list(range(N))),
        ([Have(3), BitfieldMsg(bits(7))], [3, 7]),
        ([HaveAll(), BitfieldMsg(bits(7))], list(range(N))),
    ],
    ids=["bitfield-have-bitfield", "none-bitfield", "none-all", "have-bitfield", "all-bitfield"],
)
def test_later_have_sets_wait_for_the_piece_count(messages: list[Message], expected: list[int]) -> None:
    """Before the metadata arrives, later have sets are merged and checked once the piece count is known."""
    conn = magnet_receiver()
    conn.receive_data(b"".join(encode(m) for m in messages))
    drain(conn)
    conn.set_num_pieces(N)
    assert conn.next_event() is None
    assert conn.peer_has is not None and list(conn.peer_has) == expected


def test_later_bitfield_of_the_wrong_size_fails_once_the_count_is_known() -> None:
    """A later bitfield (no metadata yet) longer than the torrent needs fails once the count arrives."""
    conn = magnet_receiver()
    conn.receive_data(encode(BitfieldMsg(bits(1))) + encode(BitfieldMsg(b"\x00\x00\x00\x01")))
    drain(conn)
    conn.set_num_pieces(N)
    with pytest.raises(RemoteProtocolError, match="bitfield"):
        conn.next_event()


@given(st.lists(st.sets(st.integers(0, N - 1)), min_size=1, max_size=6))
def test_any_run_of_bitfields_gives_their_union_once(sets: list[set[int]]) -> None:
    """Whatever bitfields follow one another, peer_has is their union and each piece is reported once."""
    pair = Pair(num_pieces=N)
    events = pair.to_a(b"".join(encode(BitfieldMsg(bits(*s))) for s in sets))
    union = set().union(*sets)
    assert pair.a.peer_has is not None and set(pair.a.peer_has) == union
    haves = [e.index for e in events if isinstance(e, Have)]
    assert sorted(haves) == sorted(union - sets[0]) and len(set(haves)) == len(haves)
