"""BEP 10 extension handshake: encoding, tolerance of unknown keys, strict types and limits."""

from __future__ import annotations

import pytest

from p2pshare.config import WireLimits
from p2pshare.core import bencode
from p2pshare.core.wire import UT_METADATA_ID, ExtensionHandshake
from p2pshare.errors import RemoteProtocolError


def test_round_trip() -> None:
    """An encoded handshake decodes to an equal one."""
    hs = ExtensionHandshake(
        m={"ut_metadata": 3, "ut_pex": 1}, v="p2pshare 0.1.0", p=6881, reqq=250, metadata_size=31235,
        yourip=b"\x7f\x00\x00\x01",
    )  # fmt: skip
    assert ExtensionHandshake.decode(hs.encode()) == hs


def test_bep10_example_decodes() -> None:
    """BEP 10's example payload (with its string length corrected) decodes, µTorrent name intact."""
    payload = b"d1:md11:LT_metadatai1e7:\xc2\xb5T_PEXi2ee1:pi6881e1:v13:\xc2\xb5Torrent 1.2e"
    hs = ExtensionHandshake.decode(payload)
    assert hs.m == {"LT_metadata": 1, "\u00b5T_PEX": 2}
    assert hs.p == 6881 and hs.v == "\u00b5Torrent 1.2"


def test_unknown_keys_are_ignored() -> None:
    """Keys BEP 10 does not define (or we do not use) are ignored."""
    payload = bencode.encode({b"m": {}, b"upload_only": 1, b"complete_ago": -1, b"ipv6": b"x" * 16})
    assert ExtensionHandshake.decode(payload) == ExtensionHandshake()


@pytest.mark.parametrize(
    "payload",
    [
        {b"m": b"not a dict"},
        {b"m": {b"ut_metadata": b"1"}},
        {b"m": {b"ut_metadata": 256}},
        {b"m": {b"ut_metadata": -1}},
        {b"v": 5},
        {b"p": b"6881"},
        {b"reqq": [1]},
        {b"metadata_size": b"10"},
        {b"metadata_size": -5},
        {b"yourip": 1},
    ],
)
def test_known_keys_with_wrong_types_are_refused(payload: dict[bytes, object]) -> None:
    """A known key holding the wrong type (or an impossible value) is a protocol error."""
    with pytest.raises(RemoteProtocolError):
        ExtensionHandshake.decode(bencode.encode(payload))


@pytest.mark.parametrize("payload", [b"", b"le", b"i1e", b"d1:mde1", b"d1:m"])
def test_non_dict_or_malformed_payload_is_refused(payload: bytes) -> None:
    """A payload that is not exactly one bencoded dict is a protocol error."""
    with pytest.raises(RemoteProtocolError):
        ExtensionHandshake.decode(payload)


def test_too_many_extensions_are_refused() -> None:
    """An `m` with more than limits.max_extensions entries is refused."""
    limits = WireLimits(max_extensions=3)
    ok = bencode.encode({b"m": {b"a": 1, b"b": 2, b"c": 3}})
    assert len(ExtensionHandshake.decode(ok, limits).m) == 3
    bad = bencode.encode({b"m": {b"a": 1, b"b": 2, b"c": 3, b"d": 4}})
    with pytest.raises(RemoteProtocolError, match="extensions"):
        ExtensionHandshake.decode(bad, limits)


def test_oversized_payload_is_refused() -> None:
    """A handshake payload over limits.max_extended_message is refused."""
    limits = WireLimits(max_extended_message=20)
    with pytest.raises(RemoteProtocolError):
        ExtensionHandshake.decode(bencode.encode({b"v": b"x" * 30}), limits)


def test_client_name_is_truncated_and_decoded_leniently() -> None:
    """`v` is cut to limits.max_client_name bytes and bad UTF-8 is replaced, not fatal."""
    limits = WireLimits(max_client_name=4)
    hs = ExtensionHandshake.decode(bencode.encode({b"v": b"\xffabcdef"}), limits)
    assert hs.v == "\ufffdabc"


def test_advisory_fields_with_odd_values_become_none() -> None:
    """A zero port, non-positive reqq or yourip of odd length is dropped rather than trusted."""
    hs = ExtensionHandshake.decode(bencode.encode({b"p": 0, b"reqq": 0, b"yourip": b"abc"}))
    assert hs.p is None and hs.reqq is None and hs.yourip is None


def test_zero_id_means_disabled_and_merging_is_additive() -> None:
    """A later handshake adds to `m`, and id 0 disables an extension (BEP 10)."""
    first = ExtensionHandshake(m={"ut_metadata": 2, "ut_pex": 1}, v="x", metadata_size=10)
    later = ExtensionHandshake(m={"ut_pex": 0, "lt_donthave": 7})
    merged = first.merged(later)
    assert merged.m == {"ut_metadata": 2, "lt_donthave": 7}
    assert merged.ext_id("ut_pex") is None and merged.ext_id("ut_metadata") == 2
    assert merged.v == "x" and merged.metadata_size == 10


def test_ours_advertises_ut_metadata_as_id_1_and_reqq() -> None:
    """Our handshake maps ut_metadata to id 1 and advertises our request queue size."""
    hs = ExtensionHandshake.ours(WireLimits(max_incoming_requests=123), metadata_size=500, port=6881)
    assert hs.m == {"ut_metadata": UT_METADATA_ID} and UT_METADATA_ID == 1
    assert hs.reqq == 123 and hs.metadata_size == 500 and hs.p == 6881
