"""KRPC codec: whole messages, compact encodings, and hostile input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pshare.core import bencode
from p2pshare.core.dht import krpc
from p2pshare.core.dht.krpc import (
    AnnouncePeerArgs,
    ErrorMessage,
    FindNodeArgs,
    GetPeersArgs,
    KrpcError,
    PingArgs,
    Query,
    Response,
)
from p2pshare.errors import RemoteProtocolError

NID = bytes(range(20))
IH = bytes(range(100, 120))
MAX = 1500
ANN = b"d1:ad2:id20:" + NID + b"9:info_hash20:" + IH


def dec(data: bytes) -> krpc.Message:
    return krpc.decode_message(data, max_packet=MAX)


def test_ping_query_round_trip() -> None:
    """A ping query encodes to BEP 5 bencode and decodes back to a Query with PingArgs."""
    data = krpc.encode_query(b"aa", b"ping", {b"id": NID}, version=b"PS\x00\x01")
    assert data == b"d1:ad2:id20:" + NID + b"e1:q4:ping1:t2:aa1:v4:PS\x00\x011:y1:qe"
    msg = dec(data)
    assert msg == Query(b"aa", b"ping", NID, PingArgs(), False, b"PS\x00\x01")


def test_read_only_flag_is_sent_and_read() -> None:
    """BEP 43: a read-only query carries ro=1 at the top level and decodes with read_only set."""
    data = krpc.encode_query(b"t", b"ping", {b"id": NID}, read_only=True)
    assert b"2:roi1e" in data
    msg = dec(data)
    assert isinstance(msg, Query) and msg.read_only


@pytest.mark.parametrize(
    ("method", "args", "expected"),
    [
        (b"find_node", {b"target": IH}, FindNodeArgs(IH, frozenset())),
        (b"find_node", {b"target": IH, b"want": [b"n4", b"n6"]}, FindNodeArgs(IH, frozenset({b"n4", b"n6"}))),
        (b"get_peers", {b"info_hash": IH}, GetPeersArgs(IH, frozenset())),
        (
            b"announce_peer",
            {b"info_hash": IH, b"port": 6881, b"token": b"tok"},
            AnnouncePeerArgs(IH, 6881, b"tok", False),
        ),
        (
            b"announce_peer",
            {b"info_hash": IH, b"port": 0, b"token": b"tok", b"implied_port": 1},
            AnnouncePeerArgs(IH, 0, b"tok", True),
        ),
    ],
)
def test_query_arguments_are_typed(method: bytes, args: dict[bytes, object], expected: object) -> None:
    """Each BEP 5 method's arguments decode into their typed dataclass."""
    msg = dec(krpc.encode_query(b"xy", method, {b"id": NID, **args}))
    assert isinstance(msg, Query) and msg.args == expected


def test_unknown_method_decodes_with_no_args() -> None:
    """A query for a method we do not know decodes (args None) so the node can answer 204."""
    msg = dec(krpc.encode_query(b"xy", b"vote", {b"id": NID}))
    assert isinstance(msg, Query) and msg.method == b"vote" and msg.args is None


def test_response_with_ip_nodes_values_token() -> None:
    """A get_peers response carries the BEP 42 ip, compact nodes, peers and token."""
    nodes = [(NID, ("1.2.3.4", 6881)), (IH, ("5.6.7.8", 80))]
    body = {
        b"id": NID,
        b"token": b"secret",
        b"nodes": krpc.pack_nodes(nodes),
        b"values": [krpc.pack_addr(("9.9.9.9", 1234)), b"bad", krpc.pack_addr(("8.8.8.8", 0))],
    }
    msg = dec(krpc.encode_response(b"zz", body, ip=("10.0.0.1", 999), version=b"XX01"))
    assert isinstance(msg, Response)
    assert msg.ip == ("10.0.0.1", 999) and msg.sender_id == NID and msg.version == b"XX01"
    assert krpc.response_nodes(msg) == nodes
    assert krpc.response_values(msg) == [("9.9.9.9", 1234)]  # malformed and port-0 entries skipped
    assert krpc.response_token(msg) == b"secret"


def test_ipv6_compact_forms() -> None:
    """BEP 32: IPv6 peers are 18 bytes and nodes6 entries 38 bytes."""
    assert len(krpc.pack_addr(("::1", 6881))) == 18
    assert krpc.unpack_addr(krpc.pack_addr(("2001:db8::5", 80))) == ("2001:db8::5", 80)
    nodes = [(NID, ("2001:db8::1", 6881))]
    packed = krpc.pack_nodes(nodes)
    assert len(packed) == 38
    assert krpc.unpack_nodes(packed, ipv6=True) == nodes
    resp = dec(krpc.encode_response(b"t", {b"id": NID, b"nodes6": packed}))
    assert isinstance(resp, Response) and krpc.response_nodes(resp, ipv6=True) == nodes


def test_error_message_round_trip() -> None:
    """An error reply decodes to its code and text."""
    msg = dec(krpc.encode_error(b"ee", 204, "Method Unknown"))
    assert msg == ErrorMessage(b"ee", 204, "Method Unknown")


def test_compact_node_info_of_wrong_length_is_rejected() -> None:
    """Compact node info that is not a whole number of 26-byte entries is a protocol error."""
    with pytest.raises(KrpcError):
        krpc.unpack_nodes(b"x" * 27)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not bencode",
        b"le",
        b"i42e",
        b"d1:y1:qe",  # no transaction id
        b"d1:t2:aa1:y1:xe",  # unknown message type
        b"d1:t2:aa1:y1:q1:q4:pinge",  # no args
        b"d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe",  # short id
        b"d1:ad2:idi5ee1:q4:ping1:t2:aa1:y1:qe",  # id of the wrong type
        b"d1:t2:aa1:y1:r1:rd2:id3:abcee",  # short id in a response
        b"d1:t2:aa1:y1:r1:rle",  # r is not a dict
        b"d1:t2:aa1:y1:e1:eli201eee",  # error list too short
        b"d1:t2:aa1:y1:e1:el3:abc3:defee",  # error code not an int
        b"d1:t" + b"33:" + b"a" * 33 + b"1:y1:qe",  # transaction id too long
        b"d1:ad2:id20:" + NID + b"6:target3:abce1:q9:find_node1:t2:aa1:y1:qe",  # short target
        b"d1:ad2:id20:"
        + NID
        + b"9:info_hash20:"
        + IH
        + b"4:porti0e5:token1:xe1:q13:announce_peer1:t1:a1:y1:qe",
        b"d1:ad2:id20:"
        + NID
        + b"9:info_hash20:"
        + IH
        + b"4:porti99999e5:token1:xe1:q13:announce_peer1:t1:a1:y1:qe",
        b"d1:ad2:id20:" + NID + b"9:info_hash20:" + IH + b"4:porti80ee1:q13:announce_peer1:t1:a1:y1:qe",
        b"d1:ad2:id20:" + NID + b"4:wanti1ee1:q9:find_node1:t2:aa1:y1:qe",
        b"d1:ad1:ad1:ad1:ad1:aleeeeee1:t1:a1:y1:qe",  # too deep for KRPC
        b"d1:t2:aa1:y1:qe" + b"x",  # trailing data
    ],
)
def test_malformed_datagrams_raise_krpc_error(data: bytes) -> None:
    """Malformed or mistyped messages raise KrpcError (a RemoteProtocolError), nothing else."""
    with pytest.raises(KrpcError) as info:
        dec(data)
    assert isinstance(info.value, RemoteProtocolError)


def test_malformed_query_keeps_tid_and_is_flagged() -> None:
    """A sound query envelope with bad arguments reports its transaction id so the node can answer 203."""
    with pytest.raises(KrpcError) as info:
        dec(b"d1:ad2:id20:" + NID + b"6:target3:abce1:q9:find_node1:t2:aa1:y1:qe")
    assert info.value.tid == b"aa" and info.value.query and info.value.code == 203


@pytest.mark.parametrize(
    "data",
    [
        b"d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe",  # sender id of the wrong length
        b"d1:q4:ping1:t2:aa1:y1:qe",  # no argument dictionary
        b"d1:ad2:id20:" + NID + b"e1:t2:aa1:y1:qe",  # no method
        b"d1:ade1:q4:ping1:t2:aa1:y1:qe",  # no sender id
    ],
)
def test_query_without_sound_envelope_is_not_flagged(data: bytes) -> None:
    """A datagram that is not a sound query (method, arguments, 20-byte id) earns no error reply."""
    with pytest.raises(KrpcError) as info:
        dec(data)
    assert not info.value.query


def test_oversized_datagram_is_rejected_unread() -> None:
    """A datagram larger than max_packet is refused before decoding."""
    data = krpc.encode_response(b"t", {b"id": NID, b"pad": b"x" * 2000})
    with pytest.raises(KrpcError, match="exceeds"):
        dec(data)
    assert isinstance(krpc.decode_message(data, max_packet=4000), Response)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_krpc_error(data: bytes) -> None:
    """Random bytes either decode or raise KrpcError; no other exception escapes."""
    try:
        dec(data)
    except KrpcError:
        pass


_bvalues = st.recursive(
    st.integers(min_value=-(2**40), max_value=2**40) | st.binary(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.binary(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
_keys = st.sampled_from([b"t", b"y", b"q", b"a", b"r", b"e", b"id", b"ip", b"ro", b"v", b"x"])
_fields = st.dictionaries(_keys, _bvalues | st.sampled_from([b"q", b"r", b"e", NID, b"ping"]), max_size=6)


@settings(max_examples=500, deadline=None)
@given(
    _fields, st.dictionaries(_keys | st.sampled_from([b"target", b"info_hash", b"port", b"token"]), _bvalues)
)
def test_random_krpc_shaped_dicts_raise_only_krpc_error(
    top: dict[bytes, object], inner: dict[bytes, object]
) -> None:
    """Dictionaries shaped like KRPC with random field types never crash the decoder."""
    for key in (b"a", b"r"):
        msg = dict(top)
        msg[key] = {b"id": NID, **inner}
        try:
            data = bencode.encode(msg)
        except Exception:
            continue
        try:
            dec(data)
        except KrpcError:
            pass
