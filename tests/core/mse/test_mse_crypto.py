"""The arithmetic under MSE: the DH group, the markers, and RC4 with its first 1024 bytes dropped."""

from __future__ import annotations

import pytest

from p2pshare.core.mse import crypto
from p2pshare.core.mse.events import Method
from tests.core.mse.mse_helpers import INFO_HASH, OTHER_HASH, P, rc4, sha1


def test_group_is_the_standard_768_bit_prime() -> None:
    """P is the 768-bit prime every client uses (checked against an independent copy), G is 2."""
    assert crypto.P == P
    assert crypto.P.bit_length() == 768
    assert crypto.G == 2
    assert pow(2, crypto.P - 1, crypto.P) == 1  # Fermat: consistent with a prime


def test_both_sides_derive_the_same_secret() -> None:
    """Ya^xb == Yb^xa, as 96 big-endian bytes including leading zeros."""
    xa = crypto.private_key_from(bytes(range(20)))
    xb = crypto.private_key_from(bytes(range(100, 120)))
    ya, yb = crypto.public_key(xa), crypto.public_key(xb)
    assert len(ya) == len(yb) == 96
    s1 = crypto.shared_secret(int.from_bytes(yb, "big"), xa)
    s2 = crypto.shared_secret(int.from_bytes(ya, "big"), xb)
    assert s1 == s2 and len(s1) == 96


def test_private_key_is_160_bits_and_never_zero() -> None:
    """A private key uses 20 random bytes and is never zero."""
    assert crypto.private_key_from(b"\xff" * 20) == 2**160 - 1
    assert crypto.private_key_from(bytes(20)) == 1


@pytest.mark.parametrize(
    ("y", "ok"), [(0, False), (1, False), (2, True), (P - 2, True), (P - 1, False), (P, False)]
)
def test_public_key_bounds(y: int, ok: bool) -> None:
    """Only 2..P-2 are acceptable public keys."""
    assert (crypto.decode_public_key(y.to_bytes(96, "big")) is not None) is ok


def test_markers_and_keys_follow_the_spec() -> None:
    """req1/req2/req3 and keyA/keyB are SHA-1 over the spec's labels."""
    s = bytes(range(96))
    assert crypto.req1(s) == sha1(b"req1", s)
    assert crypto.req2(INFO_HASH) == sha1(b"req2", INFO_HASH)
    assert crypto.req3(s) == sha1(b"req3", s)
    assert crypto.stream_keys(s, INFO_HASH) == (sha1(b"keyA", s, INFO_HASH), sha1(b"keyB", s, INFO_HASH))


def test_rc4_drops_the_first_1024_bytes() -> None:
    """Rc4 continues the keystream of ARC4 after its first 1024 bytes, across calls and into buffers."""
    key = b"0123456789abcdefghij"
    data = bytes(range(256)) * 20
    want = rc4(key).update(data)
    ours = crypto.Rc4(key)
    out = bytearray(1000)
    got = ours.update(data[:100]) + ours.update(memoryview(data)[100:4120])
    n = ours.update_into(data[4120:5120], out)
    assert got + bytes(out[:n]) == want
    assert want != data and want != crypto.Rc4(b"another key, 20 byte").update(data)


def test_skey_lookup_maps_req2_to_the_torrent() -> None:
    """The lookup finds each served info hash by its req2 hash, and nothing else."""
    lookup = crypto.skey_lookup([INFO_HASH, OTHER_HASH])
    assert lookup(crypto.req2(INFO_HASH)) == INFO_HASH
    assert lookup(crypto.req2(OTHER_HASH)) == OTHER_HASH
    assert lookup(crypto.req2(bytes(20))) is None


def test_method_bits_are_32_bit_big_endian() -> None:
    """crypto_provide / crypto_select are four bytes, plaintext 0x01 and RC4 0x02."""
    assert crypto.method_bits(Method.PLAINTEXT) == b"\x00\x00\x00\x01"
    assert crypto.method_bits(Method.RC4 | Method.PLAINTEXT) == b"\x00\x00\x00\x03"
