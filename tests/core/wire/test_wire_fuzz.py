"""Hypothesis: hostile bytes and message sequences only ever raise RemoteProtocolError."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pshare.config import WireLimits
from p2pshare.core.wire import (
    AllowedFast,
    BitfieldMsg,
    Cancel,
    Choke,
    Extended,
    ExtensionHandshake,
    Have,
    HaveAll,
    HaveNone,
    Interested,
    KeepAlive,
    Message,
    MessageParser,
    NotInterested,
    PeerClosed,
    PeerConnection,
    Piece,
    Port,
    RejectRequest,
    Request,
    Suggest,
    Unchoke,
    decode_metadata_message,
    encode,
    encode_handshake,
)
from p2pshare.errors import LocalProtocolError, RemoteProtocolError
from tests.core.wire.wire_helpers import INFO_HASH, PEER_A, PEER_B

LIMITS = WireLimits(max_incoming_requests=4, max_unknown_bitfield=64, max_late_blocks=8)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

small = st.integers(min_value=0, max_value=12)
lengths = st.sampled_from([0, 1, 5, 16, 16384, 16385])
messages: st.SearchStrategy[Message] = st.one_of(
    st.sampled_from([KeepAlive(), Choke(), Unchoke(), Interested(), NotInterested(), HaveAll(), HaveNone()]),
    st.builds(Have, small),
    st.builds(BitfieldMsg, st.binary(max_size=3)),
    st.builds(Request, small, small, lengths),
    st.builds(Cancel, small, small, lengths),
    st.builds(RejectRequest, small, small, lengths),
    st.builds(Piece, small, small, st.sampled_from([b"", b"x", b"12345"])),
    st.builds(Port, st.integers(0, 65535)),
    st.builds(Suggest, small),
    st.builds(AllowedFast, small),
    st.builds(
        Extended,
        st.integers(0, 3),
        st.one_of(
            st.binary(max_size=20),
            st.just(ExtensionHandshake.ours(metadata_size=100).encode()),
            st.just(b"d8:msg_typei1e5:piecei0e10:total_sizei5eeabcde"),
            st.just(b"d8:msg_typei0e5:piecei0ee"),
        ),
    ),
)
num_pieces = st.one_of(st.none(), st.integers(min_value=0, max_value=20))


def drain_safely(conn: PeerConnection) -> bool:
    """Drain events; return False if the peer broke the protocol."""
    try:
        for _ in range(10_000):
            event = conn.next_event()
            if event is None or isinstance(event, PeerClosed):
                return True
    except RemoteProtocolError:
        return False
    raise AssertionError("next_event never returned None")


@FUZZ
@given(data=st.binary(max_size=400), n=num_pieces, chunk=st.integers(1, 50))
def test_random_bytes_into_the_parser_raise_only_remote_errors(
    data: bytes, n: int | None, chunk: int
) -> None:
    """Arbitrary bytes fed to the parser in chunks never raise anything but RemoteProtocolError."""
    parser = MessageParser(LIMITS, n)
    try:
        for i in range(0, len(data), chunk):
            parser.feed(data[i : i + chunk])
            while parser.next_message() is not None:
                pass
    except RemoteProtocolError:
        pass


@FUZZ
@given(
    data=st.binary(max_size=400),
    n=num_pieces,
    later=num_pieces,
    fast=st.booleans(),
    ext=st.booleans(),
    with_handshake=st.booleans(),
)
def test_random_bytes_into_a_connection_raise_only_remote_errors(
    data: bytes, n: int | None, later: int | None, fast: bool, ext: bool, with_handshake: bool
) -> None:
    """Arbitrary bytes after (or instead of) a handshake never raise anything but RemoteProtocolError."""
    conn = PeerConnection(INFO_HASH, PEER_A, initiator=True, num_pieces=n, limits=LIMITS)
    conn.handshake_bytes()
    prefix = encode_handshake(INFO_HASH, PEER_B, fast=fast, extensions=ext) if with_handshake else b""
    conn.receive_data(prefix + data)  # b"" (end of stream) is a fine input too
    if drain_safely(conn) and n is None and later is not None:
        conn.set_num_pieces(later)
        drain_safely(conn)


actions = st.lists(st.tuples(st.sampled_from(["recv", "send"]), messages), max_size=40)


@FUZZ
@given(
    steps=actions,
    n=num_pieces,
    later=num_pieces,
    our_fast=st.booleans(),
    peer_fast=st.booleans(),
    ext=st.booleans(),
)
def test_any_message_sequence_keeps_the_state_consistent(
    steps: list[tuple[str, Message]],
    n: int | None,
    later: int | None,
    our_fast: bool,
    peer_fast: bool,
    ext: bool,
) -> None:
    """Interleaved sends and arbitrary well-formed receives raise only protocol errors and keep the limits."""
    conn = PeerConnection(INFO_HASH, PEER_A, initiator=True, num_pieces=n, limits=LIMITS, fast=our_fast)
    conn.handshake_bytes()
    conn.receive_data(encode_handshake(INFO_HASH, PEER_B, fast=peer_fast, extensions=ext))
    assert drain_safely(conn)
    for i, (kind, msg) in enumerate(steps):
        if i == len(steps) // 2 and n is None and later is not None:
            conn.set_num_pieces(later)
        if kind == "send":
            try:
                conn.send(msg)
            except LocalProtocolError:
                pass
            continue
        try:
            wire = encode(msg)
        except LocalProtocolError:
            continue
        conn.receive_data(wire)
        if not drain_safely(conn):
            return
        cap = LIMITS.max_incoming_requests
        assert len(conn.incoming) <= cap
        assert len(conn.incoming) + len(conn.owed_rejects) <= 2 * cap
        assert len(conn._late) <= LIMITS.max_late_blocks
        if not conn.fast_enabled:
            assert not conn.owed_rejects


@FUZZ
@given(st.binary(max_size=200))
def test_random_extension_and_metadata_payloads_raise_only_remote_errors(payload: bytes) -> None:
    """Arbitrary extended payloads fail only with RemoteProtocolError."""
    for decode in (ExtensionHandshake.decode, decode_metadata_message):
        try:
            decode(payload)
        except RemoteProtocolError:
            pass
