"""The uTP packet codec: header fields, the SACK extension, every truncation, and fuzzed input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pshare.core.utp.packet import (
    EXT_PADDING,
    HEADER_SIZE,
    Packet,
    PacketType,
    UtpPacketError,
    decode,
    encode,
    encode_with_extensions,
    seq_diff,
    seq_less,
)
from p2pshare.errors import RemoteProtocolError

# ST_DATA, version 1, SACK extension, conn id 0x1234, ts 0x01020304, diff 0x05060708,
# wnd 0x00100000, seq 0xfffe, ack 0x0001, then a 4-byte bitmask and 3 bytes of payload.
KNOWN = bytes.fromhex("01 01 1234 01020304 05060708 00100000 fffe 0001 00 04 05000080 616263")


def test_known_packet_decodes_field_by_field() -> None:
    """A hand-assembled DATA packet with a SACK decodes to exactly its fields."""
    p = decode(KNOWN)
    assert p.type is PacketType.DATA
    assert (p.conn_id, p.timestamp, p.timestamp_diff, p.wnd_size) == (0x1234, 0x01020304, 0x05060708, 1 << 20)
    assert (p.seq_nr, p.ack_nr) == (0xFFFE, 1)
    assert p.sack == bytes.fromhex("05000080")
    assert bytes(p.payload) == b"abc"


def test_known_packet_encodes_to_the_same_bytes() -> None:
    """Encoding the decoded packet gives back the original datagram byte for byte."""
    assert encode(decode(KNOWN)) == KNOWN


@pytest.mark.parametrize("kind", list(PacketType))
def test_every_type_round_trips(kind: PacketType) -> None:
    """Each of the five packet types survives encode/decode, type nibble and version included."""
    pkt = Packet(kind, 7, 1, 2, 3, 4, 5, None, b"" if kind is not PacketType.DATA else b"xyz")
    raw = encode(pkt)
    assert raw[0] == (kind << 4) | 1
    assert decode(raw) == pkt


def test_every_truncation_is_rejected_or_a_shorter_payload() -> None:
    """Cut at every byte, the datagram either fails with a typed error or decodes with less payload."""
    sack_end = HEADER_SIZE + 2 + 4
    for cut in range(len(KNOWN)):
        part = KNOWN[:cut]
        if cut < sack_end:
            with pytest.raises(UtpPacketError):
                decode(part)
        else:
            p = decode(part)
            assert bytes(p.payload) == KNOWN[sack_end:cut]
            assert p.sack == bytes.fromhex("05000080")


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (bytes([0x02]) + bytes(19), "version 2"),
        (bytes([0x51]) + bytes(19), "type 5"),
        (bytes([0x01, 1]) + bytes(18) + bytes([0, 3, 1, 2, 3]), "multiple of 4"),
        (bytes([0x01, 1]) + bytes(18) + bytes([0, 0]), "multiple of 4"),
        (bytes([0x01, 9]) + bytes(18) + bytes([0, 8, 1]), "past the end"),
        (bytes([0x01, 9]) + bytes(18) + bytes([0]), "past the end"),
    ],
)
def test_malformed_headers_raise_remote_protocol_errors(raw: bytes, match: str) -> None:
    """A wrong version, an unknown type or a broken extension chain is a RemoteProtocolError."""
    with pytest.raises(RemoteProtocolError, match=match):
        decode(raw)


def test_unknown_extensions_are_skipped() -> None:
    """Padding (an extension nobody knows) is stepped over and the SACK behind it still read."""
    raw = encode_with_extensions(
        0, 9, 0, 0, 100, 3, 2, [(EXT_PADDING, bytes(255)), (1, b"\x01\x00\x00\x00"), (99, b"zz")], b"data"
    )
    p = decode(raw)
    assert p.sack == b"\x01\x00\x00\x00"
    assert bytes(p.payload) == b"data"


def test_sequence_numbers_wrap_at_16_bits() -> None:
    """0xffff comes before 0 and 1; the difference is taken on the circle."""
    assert seq_diff(1, 0xFFFF) == 2
    assert seq_diff(0xFFFF, 1) == -2
    assert seq_less(0xFFFF, 0) and not seq_less(0, 0xFFFF)


@given(st.binary(max_size=120))
def test_random_bytes_decode_or_raise_the_typed_error(raw: bytes) -> None:
    """Fuzzed datagrams never raise anything but UtpPacketError."""
    try:
        p = decode(raw)
    except UtpPacketError:
        return
    assert p.type in PacketType


@given(
    st.sampled_from(list(PacketType)),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
    st.one_of(st.none(), st.integers(1, 8).flatmap(lambda n: st.binary(min_size=4 * n, max_size=4 * n))),
    st.binary(max_size=64),
)
def test_any_packet_round_trips(
    kind: PacketType,
    cid: int,
    ts: int,
    diff: int,
    wnd: int,
    seq: int,
    ack: int,
    sack: bytes | None,
    body: bytes,
) -> None:
    """Every field value, with or without a SACK, survives encode then decode."""
    pkt = Packet(kind, cid, ts, diff, wnd, seq, ack, sack, body)
    got = decode(encode(pkt))
    assert got == Packet(kind, cid, ts, diff, wnd, seq, ack, sack, got.payload)
    assert bytes(got.payload) == body
