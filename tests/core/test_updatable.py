"""BEP 46 pieces without I/O: the pointer item, btpk magnets, version diffs and trusted pieces."""

from __future__ import annotations

import random

import pytest

from p2pshare.core import bencode
from p2pshare.core.types import PeerAddress
from p2pshare.core.updatable import (
    diff_versions,
    file_roots,
    make_btpk_magnet,
    parse_btpk_magnet,
    parse_pointer,
    pointer_value,
    trusted_pieces,
)
from p2pshare.errors import RemoteProtocolError, TargetError
from tests.core.v2_helpers import build

PIECE = 16384
KEY = bytes(range(32))


def _files(change: bytes | None = None) -> list[tuple[tuple[str, ...], bytes]]:
    rng = random.Random(5)
    files = [(("a",), rng.randbytes(3 * PIECE + 1)), (("b",), rng.randbytes(2 * PIECE)), (("c",), b"")]
    if change is not None:
        files[1] = (("b",), change)
    return files


def test_pointer_round_trip_carries_both_hashes() -> None:
    """A v2 manifest's pointer names its truncated hash and its full v2 hash, and parses back."""
    info, _ = build(_files(), PIECE)
    ptr = parse_pointer(bencode.encode(pointer_value(info)))
    assert ptr.info_hash == info.info_hash and ptr.info_hash_v2 == info.info_hash_v2


@pytest.mark.parametrize(
    "value",
    [
        b"i1e",
        b"de",
        bencode.encode({b"ih": b"short"}),
        bencode.encode({b"ih": bytes(20), b"ih2": bytes(31)}),
        bencode.encode({b"ih": bytes(20), b"ih2": b"\x01" * 32}),  # ih2 does not extend ih
        b"not bencode",
    ],
)
def test_bad_pointers_are_protocol_errors(value: bytes) -> None:
    """An item value that is not a well-formed pointer is the remote party's error."""
    with pytest.raises(RemoteProtocolError):
        parse_pointer(value)


def test_btpk_magnet_round_trip() -> None:
    """A btpk magnet keeps the key, salt, name and peer hints."""
    text = make_btpk_magnet(KEY, "my share", [PeerAddress("127.0.0.1", 6881)], salt=b"s1")
    got = parse_btpk_magnet(text)
    assert got is not None
    assert (got.public_key, got.salt, got.name, got.peers) == (
        KEY,
        b"s1",
        "my share",
        (PeerAddress("127.0.0.1", 6881),),
    )
    assert parse_btpk_magnet("magnet:?xt=urn:btih:" + "00" * 20) is None


@pytest.mark.parametrize("bad", ["magnet:?xs=urn:btpk:abcd", "magnet:?xs=urn:btpk:" + "zz" * 32])
def test_malformed_btpk_is_a_target_error(bad: str) -> None:
    """A btpk that is not 64 hex digits is refused with a TargetError."""
    with pytest.raises(TargetError):
        parse_btpk_magnet(bad)


def test_diff_and_trusted_pieces_follow_the_roots() -> None:
    """Changing one file marks only it changed: the pieces of the others are trusted, its own are not."""
    old, _ = build(_files(), PIECE)
    new, _ = build([*_files(change=b"x" * (PIECE + 5)), (("d",), b"new file")], PIECE)
    diff = diff_versions(file_roots(old), file_roots(new))
    assert diff.changed == (("b",), ("d",))
    assert diff.unchanged == (("a",), ("c",))
    assert diff.removed == ()
    have = trusted_pieces(new, diff.unchanged)
    a_pieces = set(new.geometry.pieces_for_file(0))
    assert set(have) == a_pieces and len(a_pieces) == 4
    assert diff_versions(file_roots(new), file_roots(old)).removed == (("d",),)
    assert diff_versions(None, file_roots(old)).changed == (("a",), ("b",), ("c",))
