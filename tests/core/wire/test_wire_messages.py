"""BEP 3/6/10 message encoding, the streaming parser, peer ids and the allowed-fast set."""

from __future__ import annotations

import struct

import pytest

from p2pshare.config import WireLimits
from p2pshare.core.wire import (
    HANDSHAKE_LENGTH,
    AllowedFast,
    BitfieldMsg,
    Cancel,
    Choke,
    Extended,
    Handshake,
    Have,
    HaveAll,
    HaveNone,
    Interested,
    KeepAlive,
    Message,
    MessageParser,
    NotInterested,
    Piece,
    Port,
    RejectRequest,
    Request,
    Suggest,
    Unchoke,
    allowed_fast_set,
    client_name,
    encode,
    encode_handshake,
    encode_piece_header,
    make_peer_id,
    make_reserved,
)
from p2pshare.errors import LocalProtocolError, RemoteProtocolError
from tests.core.wire.wire_helpers import INFO_HASH, PEER_A, parse_all, split_every_way

ALL_MESSAGES: list[tuple[Message, bytes]] = [
    (KeepAlive(), b"\0\0\0\0"),
    (Choke(), b"\0\0\0\1\0"),
    (Unchoke(), b"\0\0\0\1\1"),
    (Interested(), b"\0\0\0\1\2"),
    (NotInterested(), b"\0\0\0\1\3"),
    (Have(0x01020304), b"\0\0\0\5\4\1\2\3\4"),
    (BitfieldMsg(b"\xff\xc0"), b"\0\0\0\3\5\xff\xc0"),
    (Request(1, 16384, 16384), b"\0\0\0\x0d\6" + struct.pack(">III", 1, 16384, 16384)),
    (Piece(2, 0, b"abc"), b"\0\0\0\x0c\7" + struct.pack(">II", 2, 0) + b"abc"),
    (Cancel(1, 0, 5), b"\0\0\0\x0d\x08" + struct.pack(">III", 1, 0, 5)),
    (Port(6881), b"\0\0\0\3\x09\x1a\xe1"),
    (Suggest(7), b"\0\0\0\5\x0d\0\0\0\7"),
    (HaveAll(), b"\0\0\0\1\x0e"),
    (HaveNone(), b"\0\0\0\1\x0f"),
    (RejectRequest(3, 4, 5), b"\0\0\0\x0d\x10" + struct.pack(">III", 3, 4, 5)),
    (AllowedFast(9), b"\0\0\0\5\x11\0\0\0\x09"),
    (Extended(0, b"de"), b"\0\0\0\4\x14\0de"),
]


@pytest.mark.parametrize(("msg", "wire"), ALL_MESSAGES, ids=lambda v: type(v).__name__)
def test_encode_matches_the_spec_layout(msg: Message, wire: bytes) -> None:
    """Each message encodes to BEP 3/6/10's length-prefixed layout."""
    assert encode(msg) == wire


@pytest.mark.parametrize(("msg", "wire"), ALL_MESSAGES, ids=lambda v: type(v).__name__)
def test_parser_round_trips_each_message(msg: Message, wire: bytes) -> None:
    """The parser turns each message's bytes back into an equal message."""
    assert parse_all([wire], num_pieces=10) == [msg]


def test_stream_of_all_messages_parses_at_every_split_point() -> None:
    """A stream of every message kind parses identically whole, byte by byte and split anywhere."""
    stream = b"".join(wire for _, wire in ALL_MESSAGES)
    expected = [msg for msg, _ in ALL_MESSAGES]
    for chunks in split_every_way(stream):
        assert parse_all(chunks, num_pieces=10) == expected


def test_piece_header_fast_path_equals_full_encoding() -> None:
    """encode_piece_header + data is byte-identical to encoding the Piece."""
    data = bytes(range(256)) * 64
    assert encode_piece_header(5, 16384, len(data)) + data == encode(Piece(5, 16384, data))


def test_encode_refuses_values_that_do_not_fit() -> None:
    """A negative or oversized field is a local error, not a silent wrap."""
    with pytest.raises(LocalProtocolError):
        encode(Have(-1))
    with pytest.raises(LocalProtocolError):
        encode(Port(70000))


def test_handshake_layout_and_reserved_bits() -> None:
    """The handshake is 68 bytes and the reserved bits sit where BEP 5/6/10 put them."""
    wire = encode_handshake(INFO_HASH, PEER_A, fast=True, extensions=True, dht=True)
    assert len(wire) == HANDSHAKE_LENGTH
    assert wire[:20] == b"\x13BitTorrent protocol"
    assert wire[20:28] == bytes([0, 0, 0, 0, 0, 0x10, 0, 0x05])
    assert wire[28:48] == INFO_HASH and wire[48:] == PEER_A
    hs = Handshake(INFO_HASH, PEER_A, make_reserved(fast=True))
    assert hs.supports_fast and not hs.supports_extensions and not hs.supports_dht
    hs = Handshake(INFO_HASH, PEER_A, make_reserved(extensions=True, dht=True))
    assert not hs.supports_fast and hs.supports_extensions and hs.supports_dht


def test_handshake_parses_at_every_split_point() -> None:
    """The parser reads a handshake followed by a message however the bytes are split."""
    wire = encode_handshake(INFO_HASH, PEER_A) + encode(Interested())
    for chunks in split_every_way(wire):
        parser = MessageParser(WireLimits())
        got: list[object] = []
        for chunk in chunks:
            parser.feed(chunk)
            if not got:
                hs = parser.next_handshake()
                if hs is None:
                    continue
                got.append(hs)
            while (msg := parser.next_message()) is not None:
                got.append(msg)
        assert got == [Handshake(INFO_HASH, PEER_A, make_reserved(fast=True, extensions=True)), Interested()]


def test_wrong_protocol_string_is_refused_from_the_first_byte() -> None:
    """A stream that does not start with the BitTorrent protocol string fails without waiting for 68 bytes."""
    parser = MessageParser(WireLimits())
    parser.feed(b"GET ")
    with pytest.raises(RemoteProtocolError, match="not a BitTorrent handshake"):
        parser.next_handshake()
    parser = MessageParser(WireLimits())
    parser.feed(b"\x13BitTorrent protocoX" + bytes(48))
    with pytest.raises(RemoteProtocolError):
        parser.next_handshake()


FIXED = [
    (0, 1), (1, 1), (2, 1), (3, 1), (4, 5), (6, 13), (8, 13), (9, 3),
    (0x0D, 5), (0x0E, 1), (0x0F, 1), (0x10, 13), (0x11, 5),
]  # fmt: skip


@pytest.mark.parametrize(("msg_id", "length"), FIXED)
@pytest.mark.parametrize("delta", [-1, 1])
def test_fixed_size_messages_with_another_length_are_refused(msg_id: int, length: int, delta: int) -> None:
    """A fixed-size message announced one byte too short or too long is a protocol error at its header."""
    bad = length + delta
    if bad == 0:
        return  # that is a keep-alive
    parser = MessageParser(WireLimits(), 10)
    parser.feed(struct.pack(">IB", bad, msg_id))  # only the header: no need to wait for the body
    with pytest.raises(RemoteProtocolError, match="must be"):
        parser.next_message()


def test_piece_shorter_than_its_header_is_refused() -> None:
    """A piece message needs at least index and begin (length >= 9)."""
    parser = MessageParser(WireLimits())
    parser.feed(struct.pack(">IB", 8, 7) + bytes(7))
    with pytest.raises(RemoteProtocolError):
        parser.next_message()


def test_oversized_length_prefix_is_refused_before_the_body_arrives() -> None:
    """A length over the limit fails on the 4-byte prefix alone, so nothing big is buffered."""
    parser = MessageParser(WireLimits())
    parser.feed(struct.pack(">I", 10 * 1024 * 1024))
    with pytest.raises(RemoteProtocolError, match="exceeds"):
        parser.next_message()


def test_piece_over_max_message_length_is_refused() -> None:
    """A piece message longer than limits.max_message_length is refused at its header."""
    limits = WireLimits()
    parser = MessageParser(limits)
    parser.feed(struct.pack(">IB", limits.max_message_length + 1, 7))
    with pytest.raises(RemoteProtocolError, match="piece message"):
        parser.next_message()


def test_bitfield_must_have_the_exact_size_when_the_piece_count_is_known() -> None:
    """With a known piece count, a bitfield of another size is refused."""
    parser = MessageParser(WireLimits(), num_pieces=9)  # 2 bytes
    parser.feed(encode(BitfieldMsg(b"\xff")))
    with pytest.raises(RemoteProtocolError, match="bitfield"):
        parser.next_message()
    assert parse_all([encode(BitfieldMsg(b"\xff\x80"))], num_pieces=9) == [BitfieldMsg(b"\xff\x80")]


def test_bitfield_is_capped_when_the_piece_count_is_unknown() -> None:
    """Without a piece count, a bitfield may be at most limits.max_unknown_bitfield bytes."""
    limits = WireLimits(max_unknown_bitfield=100)
    assert parse_all([encode(BitfieldMsg(bytes(100)))], limits) == [BitfieldMsg(bytes(100))]
    parser = MessageParser(limits)
    parser.feed(struct.pack(">IB", 102, 5))
    with pytest.raises(RemoteProtocolError):
        parser.next_message()


def test_extended_message_over_its_limit_is_refused() -> None:
    """An extended message longer than limits.max_extended_message is refused."""
    limits = WireLimits(max_extended_message=10)
    assert parse_all([encode(Extended(3, bytes(10)))], limits) == [Extended(3, bytes(10))]
    parser = MessageParser(limits)
    parser.feed(struct.pack(">IBB", 13, 20, 3))
    with pytest.raises(RemoteProtocolError, match="extended"):
        parser.next_message()


def test_extended_message_without_its_id_byte_is_refused() -> None:
    """An extended message must carry at least the extended id byte."""
    parser = MessageParser(WireLimits())
    parser.feed(struct.pack(">IB", 1, 20))
    with pytest.raises(RemoteProtocolError):
        parser.next_message()


def test_unknown_message_ids_are_skipped() -> None:
    """A message with an unknown id is skipped and the next message still parses."""
    wire = struct.pack(">IB", 4, 0x42) + b"xyz" + encode(Interested())
    for chunks in split_every_way(wire):
        assert parse_all(chunks) == [Interested()]


def test_unknown_message_ids_are_still_length_checked() -> None:
    """An unknown id longer than limits.max_message_length is a protocol error."""
    limits = WireLimits()
    parser = MessageParser(limits)
    parser.feed(struct.pack(">IB", limits.max_message_length + 1, 0x42))
    with pytest.raises(RemoteProtocolError):
        parser.next_message()


def test_many_pieces_fed_in_odd_chunks_parse_in_linear_time() -> None:
    """Two thousand 16 KiB pieces fed in 1000-byte chunks all come out intact."""
    block = bytes(range(256)) * 64
    wire = b"".join(encode(Piece(i, 0, block)) for i in range(2000))
    chunks = [wire[i : i + 1000] for i in range(0, len(wire), 1000)]
    out = parse_all(chunks)
    assert len(out) == 2000
    assert all(isinstance(m, Piece) and m.data == block for m in out)


def test_make_peer_id_is_azureus_style() -> None:
    """Our peer id is -PS0100- and 12 random bytes, different each time."""
    a, b = make_peer_id(), make_peer_id()
    assert len(a) == 20 and a.startswith(b"-PS0100-") and a != b


@pytest.mark.parametrize(
    ("peer_id", "name"),
    [
        (b"-LT20B0-xxxxxxxxxxxx", "libtorrent 2.0.11"),
        (b"-LT1230-xxxxxxxxxxxx", "libtorrent 1.2.3"),
        (b"-TR2940-xxxxxxxxxxxx", "Transmission 2.94"),
        (b"-TR300Z-xxxxxxxxxxxx", "Transmission 3.00+"),
        (b"-qB4520-xxxxxxxxxxxx", "qBittorrent 4.5.2"),
        (b"-UT355W-xxxxxxxxxxxx", "\u00b5Torrent 3.5.5.32"),
        (b"-PS0100-xxxxxxxxxxxx", "p2pshare 0.1.0"),
        (b"-AR1000-xxxxxxxxxxxx", "Arctic 1.0"),
        (b"A2-1-36-0-xxxxxxxxxx", "aria2 1.36.0"),
        (b"M7-10-3--xxxxxxxxxxx", "Mainline 7.10.3"),
        (b"\x00\x01\x02\x03\x04\x05\x06\x07" + bytes(12), "unknown (0001020304050607)"),
        (b"XBT054d-xxxxxxxxxxxx", "unknown (XBT054d-)"),
    ],
)
def test_client_name_decodes_common_peer_id_styles(peer_id: bytes, name: str) -> None:
    """client_name recognises Azureus, aria2 and Mainline style peer ids."""
    assert client_name(peer_id) == name


def test_client_name_prefers_the_extension_handshake_v() -> None:
    """The BEP 10 `v` string wins over the peer id, with control characters removed."""
    assert client_name(b"-LT20B0-xxxxxxxxxxxx", b"qBittorrent/4.6.0\x1b") == "qBittorrent/4.6.0"
    assert client_name(b"-LT20B0-xxxxxxxxxxxx", None) == "libtorrent 2.0.11"


def test_allowed_fast_set_matches_the_bep6_example() -> None:
    """The canonical allowed-fast set reproduces BEP 6's published example."""
    ip = bytes([80, 4, 4, 200])
    ih = b"\xaa" * 20
    assert allowed_fast_set(ip, ih, 1313, 7) == [1059, 431, 808, 1217, 287, 376, 1188]
    assert allowed_fast_set(ip, ih, 1313, 9) == [1059, 431, 808, 1217, 287, 376, 1188, 353, 508]
    assert sorted(allowed_fast_set(ip, ih, 3, 10)) == [0, 1, 2]
