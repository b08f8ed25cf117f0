"""BEP 52 hash request / hashes / hash reject: exact bytes, every split point, limits, fuzz."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pshare.config import HashesLimits
from p2pshare.core.merkle import MerkleTree, verify_hashes
from p2pshare.core.wire.hashes import (
    Hashes,
    HashMessage,
    HashReject,
    HashRequest,
    decode_payload,
    encode,
    max_frame_length,
    parse_frame,
    set_v2_bit,
    supports_v2,
)
from p2pshare.errors import LocalProtocolError, RemoteProtocolError

ROOT = bytes(range(32))
H = [bytes([i]) * 32 for i in range(1, 8)]


def frame(msg_id: int, fields: tuple[int, int, int, int], hashes: list[bytes] | None = None) -> bytes:
    """The wire bytes written out by hand from BEP 52."""
    body = bytes([msg_id]) + ROOT + struct.pack(">IIII", *fields) + b"".join(hashes or [])
    return struct.pack(">I", len(body)) + body


CASES: list[tuple[HashMessage, bytes]] = [
    (HashRequest(ROOT, 0, 4, 2, 3), frame(21, (0, 4, 2, 3))),
    (HashReject(ROOT, 2, 0, 512, 9), frame(23, (2, 0, 512, 9))),
    (Hashes(ROOT, 0, 4, 2, 3, tuple(H[:5])), frame(22, (0, 4, 2, 3), H[:5])),
    (Hashes(ROOT, 1, 8, 4, 1, tuple(H[:4])), frame(22, (1, 8, 4, 1), H[:4])),
    (Hashes(ROOT, 0, 3, 1, 0, tuple(H[:2])), frame(22, (0, 3, 1, 0), H[:2])),
]


@pytest.mark.parametrize(("msg", "wire"), CASES)
def test_encode_exact_bytes(msg: HashMessage, wire: bytes) -> None:
    """Each message encodes to the length prefix, id, root, four u32 fields and the hashes."""
    assert encode(msg) == wire


@pytest.mark.parametrize(("msg", "wire"), CASES)
def test_parse_whole_byte_by_byte_and_split(msg: HashMessage, wire: bytes) -> None:
    """A frame parses whole, is incomplete at every shorter prefix, and splits anywhere."""
    assert parse_frame(wire) == (msg, len(wire))
    assert parse_frame(wire + b"\x00\x00\x00\x01\x02") == (msg, len(wire))
    for cut in range(len(wire)):
        assert parse_frame(wire[:cut]) is None
    buf = bytearray()
    got = []
    for byte in wire:
        buf.append(byte)
        result = parse_frame(buf)
        if result is not None:
            got.append(result[0])
            del buf[: result[1]]
    assert got == [msg] and not buf


def test_uncles_and_base_hashes_split() -> None:
    """A hashes message separates its base-layer hashes from the uncle hashes."""
    msg = CASES[2][0]
    assert isinstance(msg, Hashes)
    assert msg.base_hashes == tuple(H[:2]) and msg.uncle_hashes == tuple(H[2:5])
    assert "5 hashes" in repr(msg) and H[0].hex() not in repr(msg)


@pytest.mark.parametrize(
    ("wire", "match"),
    [
        (frame(21, (0, 4, 3, 0)), "not a power of two"),
        (frame(21, (0, 0, 0, 0)), "not a power of two"),
        (frame(21, (0, 2, 4, 0)), "not a multiple"),
        (frame(21, (0, 0, 16384, 0)), "exceeds 8192"),
        (frame(21, (64, 0, 2, 0)), "base layer 64"),
        (frame(21, (0, 0, 2, 65)), "proof layers 65"),
        (frame(22, (0, 0, 2, 1), H[:2]), "carries 2 hashes"),
        (frame(22, (0, 0, 2, 0), H[:3]), "carries 3 hashes"),
        (frame(21, (0, 0, 2, 0), H[:1]), "outside 49..49"),
        (b"\x00\x00\x00\x30\x15" + bytes(47), "outside 49..49"),
        (b"\xff\xff\xff\xff\x16", "outside"),
        (b"\x00\x00\x00\x40\x16" + bytes(63), "whole 32-byte hashes"),
    ],
)
def test_malformed_frames(wire: bytes, match: str) -> None:
    """Wrong lengths, counts, alignment and limits are RemoteProtocolErrors."""
    with pytest.raises(RemoteProtocolError, match=match):
        parse_frame(wire)


def test_length_checked_from_the_first_five_bytes() -> None:
    """A huge announced length is refused before any payload arrives."""
    limit = max_frame_length(22)
    assert limit == 1 + 48 + 32 * (8192 + 64 - 12)
    with pytest.raises(RemoteProtocolError):
        parse_frame(struct.pack(">IB", limit + 1, 22))
    assert parse_frame(struct.pack(">IB", limit, 22)) is None


def test_configured_limits_apply() -> None:
    """A smaller configured count cap refuses what the default accepts."""
    small = HashesLimits(max_count=2)
    wire = frame(21, (0, 0, 4, 0))
    assert parse_frame(wire) is not None
    with pytest.raises(RemoteProtocolError, match="exceeds 2"):
        parse_frame(wire, small)


def test_other_ids_are_not_ours() -> None:
    """Message ids other than 21..23 are a caller error, not a peer's."""
    with pytest.raises(ValueError):
        parse_frame(b"\x00\x00\x00\x01\x07")
    with pytest.raises(ValueError):
        max_frame_length(7)
    with pytest.raises(ValueError):
        decode_payload(7, b"")


@pytest.mark.parametrize(
    "msg",
    [
        HashRequest(ROOT[:31], 0, 0, 2, 0),
        HashRequest(ROOT, 0, 0, 3, 0),
        HashRequest(ROOT, -1, 0, 2, 0),
        HashRequest(ROOT, 0, 1 << 32, 2, 0),
        Hashes(ROOT, 0, 0, 2, 0, tuple(H[:1])),
        Hashes(ROOT, 0, 0, 2, 0, (H[0], b"short")),
    ],
)
def test_encode_refuses_invalid(msg: HashMessage) -> None:
    """We never put a malformed hash message on the wire."""
    with pytest.raises(LocalProtocolError):
        encode(msg)


def test_served_hashes_verify_after_the_wire() -> None:
    """A tree's answer, encoded and parsed again, verifies against the file's root."""
    data = bytes(range(256)) * 64 * 40  # 40 leaves -> 64-leaf tree of height 6
    tree = MerkleTree.from_data(data)
    req = HashRequest(tree.root, 0, 16, 8, tree.height - 1)
    parsed = parse_frame(encode(req))
    assert parsed is not None and parsed[0] == req
    answer = tree.hashes_for(req.base_layer, req.index, req.length, req.proof_layers)
    assert answer is not None
    got = parse_frame(encode(Hashes(tree.root, 0, 16, 8, req.proof_layers, tuple(answer))))
    assert got is not None
    msg = got[0]
    assert isinstance(msg, Hashes)
    assert verify_hashes(tree.root, len(data), 0, 16, 8, msg.base_hashes, msg.uncle_hashes)


counts = st.sampled_from([1, 2, 4, 8, 512])


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from([HashRequest, HashReject, Hashes]),
    base=st.integers(0, 63),
    slot=st.integers(0, 1000),
    count=counts,
    proof=st.integers(0, 20),
)
def test_round_trip(kind: type, base: int, slot: int, count: int, proof: int) -> None:
    """Any valid message survives encode then parse unchanged."""
    if kind is Hashes:
        n = count + max(0, proof - (count.bit_length() - 2))
        msg: HashMessage = Hashes(ROOT, base, slot * count, count, proof, tuple(H[i % 7] for i in range(n)))
    else:
        msg = kind(ROOT, base, slot * count, count, proof)
    wire = encode(msg)
    assert parse_frame(wire) == (msg, len(wire))


@settings(max_examples=300, deadline=None)
@given(msg_id=st.sampled_from([21, 22, 23]), payload=st.binary(max_size=200))
def test_fuzz_payloads(msg_id: int, payload: bytes) -> None:
    """Random payloads either decode or raise RemoteProtocolError, nothing else."""
    try:
        decode_payload(msg_id, payload)
    except RemoteProtocolError:
        pass


def test_v2_reserved_bit() -> None:
    """The v2 upgrade bit is 0x10 of the last reserved byte, and leaves the other bits alone."""
    from p2pshare.core.wire.messages import make_reserved

    plain = make_reserved(fast=True, extensions=True, dht=True)
    assert not supports_v2(plain)
    marked = set_v2_bit(plain)
    assert supports_v2(marked)
    assert marked[:7] == plain[:7] and marked[7] == plain[7] | 0x10
    assert set_v2_bit(bytes(8)) == bytes(7) + b"\x10"
    assert not supports_v2(b"\xff" * 7)
    with pytest.raises(ValueError):
        set_v2_bit(bytes(7))
