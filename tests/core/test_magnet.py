"""Magnet links: generating and parsing hex, base32 and bare hashes with peer hints."""

from __future__ import annotations

import base64
import hashlib

import pytest

from p2pshare.core.magnet import make_magnet, parse_magnet
from p2pshare.core.types import InfoHash, InfoHashV2, PeerAddress
from p2pshare.errors import ExitCode, TargetError

IH = InfoHash(hashlib.sha1(b"some info dict").digest())
B32 = base64.b32encode(IH.value).decode()


def test_make_magnet_shape() -> None:
    """A generated link carries the 40-hex btih first, then the escaped display name."""
    link = make_magnet(IH, "my files & more")
    assert link == f"magnet:?xt=urn:btih:{IH.hex}&dn=my%20files%20%26%20more"


def test_make_magnet_without_name() -> None:
    """Without a name the link holds only the hash."""
    assert make_magnet(IH) == f"magnet:?xt=urn:btih:{IH.hex}"


@pytest.mark.parametrize("name", ["plain", "café ☕ menu.txt", "a&b=c?d#e", "100% sure", "x+y"])
def test_round_trip_name(name: str) -> None:
    """Any display name survives make_magnet then parse_magnet."""
    m = parse_magnet(make_magnet(IH, name))
    assert m.info_hash == IH
    assert m.name == name


def test_round_trip_peers() -> None:
    """x.pe peer hints (IPv4 and bracketed IPv6) survive a round trip in order."""
    peers = (PeerAddress("127.0.0.1", 6881), PeerAddress("::1", 51413))
    link = make_magnet(IH, "n", peers)
    assert "x.pe=127.0.0.1:6881" in link
    assert "x.pe=[::1]:51413" in link
    assert parse_magnet(link).peers == peers


def test_parse_hex_upper_and_lower() -> None:
    """The hex btih is case-insensitive."""
    for text in (IH.hex, IH.hex.upper()):
        assert parse_magnet(f"magnet:?xt=urn:btih:{text}").info_hash == IH


def test_parse_base32() -> None:
    """A 32-character base32 btih decodes to the same hash, in either case."""
    for text in (B32, B32.lower()):
        assert parse_magnet(f"magnet:?xt=urn:btih:{text}&dn=x").info_hash == IH


@pytest.mark.parametrize("text", [IH.hex, IH.hex.upper(), B32, f"  {IH.hex}\n"])
def test_parse_bare_hash(text: str) -> None:
    """A bare 40-hex or 32-base32 info hash is accepted as a target."""
    m = parse_magnet(text)
    assert m.info_hash == IH
    assert m.name is None and m.peers == ()


def test_parse_keys_case_and_order() -> None:
    """Parameters may come in any order and the scheme and keys in any case."""
    link = f"MAGNET:?dn=hello&XT=urn:BTIH:{IH.hex}&tr=udp%3A%2F%2F127.0.0.1%3A1"
    m = parse_magnet(link)
    assert m.info_hash == IH
    assert m.name == "hello"
    assert m.trackers == ("udp://127.0.0.1:1",)


def test_bad_peer_hint_is_skipped() -> None:
    """A malformed x.pe does not make the whole link invalid."""
    m = parse_magnet(f"magnet:?xt=urn:btih:{IH.hex}&x.pe=nonsense&x.pe=127.0.0.1:99999&x.pe=127.0.0.1:1")
    assert m.peers == (PeerAddress("127.0.0.1", 1),)


def test_non_btih_xt_ignored_when_btih_present() -> None:
    """Another xt (e.g. a v2 btmh) next to a btih is ignored."""
    link = f"magnet:?xt=urn:btmh:1220{'ab' * 32}&xt=urn:btih:{IH.hex}"
    assert parse_magnet(link).info_hash == IH


@pytest.mark.parametrize(
    "text",
    [
        "magnet:?dn=nohash",
        "magnet:?",
        f"magnet:?xt=urn:sha1:{IH.hex}",
    ],
)
def test_missing_xt(text: str) -> None:
    """A link without a btih or btmh is a TargetError that says what is missing."""
    with pytest.raises(TargetError, match="btih"):
        parse_magnet(text)


@pytest.mark.parametrize(
    "text",
    [
        "magnet:?xt=urn:btih:1234",
        f"magnet:?xt=urn:btih:{IH.hex[:-1]}g",
        f"magnet:?xt=urn:btih:{IH.hex}00",
        "magnet:?xt=urn:btih:" + "1" * 32,  # '1' is not base32
        "magnet:?xt=urn:btih:",
    ],
)
def test_bad_hash_in_link(text: str) -> None:
    """A btih of the wrong length or alphabet is a TargetError."""
    with pytest.raises(TargetError, match="bad btih"):
        parse_magnet(text)


@pytest.mark.parametrize(
    "text", ["", "hello", IH.hex[:39], IH.hex + "0", "z" * 40, "http://example.invalid/x"]
)
def test_bad_bare_hash(text: str) -> None:
    """Text that is neither a magnet link nor a hash is a TargetError (exit code 3)."""
    with pytest.raises(TargetError) as info:
        parse_magnet(text)
    assert info.value.exit_code == ExitCode.BAD_TARGET


IH2 = InfoHashV2(hashlib.sha256(b"some v2 info dict").digest())


def test_make_magnet_v2_only() -> None:
    """A v2-only link carries the btmh as a SHA2-256 multihash (1220 + 64 hex) and no btih."""
    link = make_magnet(None, "n", info_hash_v2=IH2)
    assert link == f"magnet:?xt=urn:btmh:1220{IH2.hex}&dn=n"


def test_make_magnet_hybrid_order() -> None:
    """A hybrid link carries the btih first, then the btmh."""
    link = make_magnet(IH, None, info_hash_v2=IH2)
    assert link == f"magnet:?xt=urn:btih:{IH.hex}&xt=urn:btmh:1220{IH2.hex}"


def test_make_magnet_needs_a_hash() -> None:
    """A link with neither hash cannot be built."""
    with pytest.raises(ValueError):
        make_magnet(None, "n")


def test_parse_btmh_alone() -> None:
    """A btmh-only link gives the v2 hash and, as swarm id, its first 20 bytes."""
    m = parse_magnet(f"magnet:?xt=urn:btmh:1220{IH2.hex.upper()}&dn=x")
    assert m.info_hash_v2 == IH2
    assert m.info_hash == InfoHash(IH2.value[:20])
    assert m.info_hash_v1 is None
    assert not m.has_v1
    assert m.name == "x"


def test_parse_btmh_beside_btih() -> None:
    """A hybrid link gives both hashes, whichever comes first."""
    for link in (
        f"magnet:?xt=urn:btih:{IH.hex}&xt=urn:btmh:1220{IH2.hex}",
        f"magnet:?xt=urn:btmh:1220{IH2.hex}&xt=urn:btih:{IH.hex}",
        f"magnet:?xt.1=urn:btih:{IH.hex}&xt.2=urn:btmh:1220{IH2.hex}",
    ):
        m = parse_magnet(link)
        assert m.info_hash == IH
        assert m.info_hash_v1 == IH
        assert m.info_hash_v2 == IH2


@pytest.mark.parametrize(
    ("btmh", "match"),
    [
        (f"1114{'ab' * 20}", "1220"),  # SHA-1 multihash
        (f"1220{'ab' * 31}", "64-character"),
        (f"1220{'ab' * 33}", "64-character"),
        (f"1220{'zz' * 32}", "64-character"),
        ("", "1220"),
    ],
)
def test_bad_btmh(btmh: str, match: str) -> None:
    """A btmh that is not a 32-byte SHA2-256 multihash is a TargetError that says so."""
    with pytest.raises(TargetError, match=match):
        parse_magnet(f"magnet:?xt=urn:btmh:{btmh}")


def test_bare_v2_hash() -> None:
    """A bare 64-hex string is read as a v2 info hash."""
    m = parse_magnet(IH2.hex)
    assert m.info_hash_v2 == IH2
    assert not m.has_v1


@pytest.mark.parametrize("name", [None, "café & co"])
def test_round_trip_hybrid(name: str | None) -> None:
    """make_magnet then parse_magnet keeps both hashes, the name and the peer hints."""
    peers = (PeerAddress("127.0.0.2", 6881),)
    m = parse_magnet(make_magnet(IH, name, peers, info_hash_v2=IH2))
    assert (m.info_hash, m.info_hash_v2, m.name, m.peers) == (IH, IH2, name, peers)
