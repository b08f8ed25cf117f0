"""Small validated types: info hashes, peer addresses, entropy."""

from __future__ import annotations

import base64
import hashlib

import pytest

from p2pshare.core.types import InfoHash, InfoHashV2, PeerAddress, parse_host_port, random_bytes

RAW = hashlib.sha1(b"x").digest()


def test_info_hash_forms_agree() -> None:
    """Hex, upper hex and base32 forms all give the same hash."""
    h = InfoHash(RAW)
    assert InfoHash.from_hex(RAW.hex()) == h
    assert InfoHash.parse(RAW.hex().upper()) == h
    assert InfoHash.parse(base64.b32encode(RAW).decode()) == h
    assert InfoHash.from_base32(base64.b32encode(RAW).decode().lower()) == h
    assert str(h) == h.hex == RAW.hex()
    assert RAW.hex() in repr(h)


@pytest.mark.parametrize("value", [b"", b"\x00" * 19, b"\x00" * 21, "a" * 20])
def test_info_hash_must_be_20_bytes(value: object) -> None:
    """An info hash is exactly 20 bytes."""
    with pytest.raises(ValueError):
        InfoHash(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["", "g" * 40, "a" * 39, "a" * 41, "1" * 32, "a" * 31])
def test_info_hash_parse_rejects(text: str) -> None:
    """Text of the wrong length or alphabet is a ValueError."""
    with pytest.raises(ValueError):
        InfoHash.parse(text)


def test_peer_address() -> None:
    """Ports must be 1..65535; IPv6 hosts print in brackets."""
    assert str(PeerAddress("127.0.0.1", 1)) == "127.0.0.1:1"
    assert str(PeerAddress("::1", 65535)) == "[::1]:65535"
    assert PeerAddress("::1", 5).as_tuple() == ("::1", 5)
    for port in (0, 65536, -1):
        with pytest.raises(ValueError):
            PeerAddress("127.0.0.1", port)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:80", PeerAddress("127.0.0.1", 80)),
        ("[::1]:6881", PeerAddress("::1", 6881)),
        (" host:1 ", PeerAddress("host", 1)),
    ],
)
def test_parse_host_port(text: str, expected: PeerAddress) -> None:
    """HOST:PORT and [V6]:PORT parse into a PeerAddress."""
    assert parse_host_port(text) == expected


@pytest.mark.parametrize("text", ["", "host", ":80", "host:", "host:x", "[::1]", "[::1]80", "h:70000"])
def test_parse_host_port_rejects(text: str) -> None:
    """Malformed HOST:PORT text is a ValueError."""
    with pytest.raises(ValueError):
        parse_host_port(text)


def test_random_bytes() -> None:
    """random_bytes gives the requested length and differs between calls."""
    a, b = random_bytes(20), random_bytes(20)
    assert len(a) == 20 and a != b
    assert random_bytes(0) == b""


def test_info_hash_v2_is_32_bytes_and_truncates() -> None:
    """A v2 hash holds exactly 32 bytes and truncates to the 20-byte swarm id."""
    value = bytes(range(32))
    h = InfoHashV2(value)
    assert h.hex == value.hex() == str(h)
    assert h.truncated == InfoHash(value[:20])
    assert InfoHashV2.from_hex(value.hex().upper()) == h
    assert "InfoHashV2(" in repr(h)
    for bad in (value[:20], value + b"x", "x" * 32):
        with pytest.raises(ValueError):
            InfoHashV2(bad)  # type: ignore[arg-type]
    for text in ("ab" * 31, "zz" * 32, "ab" * 33):
        with pytest.raises(ValueError, match="64-character"):
            InfoHashV2.from_hex(text)
