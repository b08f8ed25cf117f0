"""Strict bencode: what decodes, what is refused, and the raw ``info`` span."""

from __future__ import annotations

import hashlib

import pytest

from p2pshare.config import BencodeLimits
from p2pshare.core import bencode
from p2pshare.errors import BencodeError, P2PShareError


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b"i0e", 0),
        (b"i42e", 42),
        (b"i-7e", -7),
        (b"i123456789012345678901234567890e", 123456789012345678901234567890),
        (b"0:", b""),
        (b"4:spam", b"spam"),
        (b"3:\xff\x00\xfe", b"\xff\x00\xfe"),
        (b"le", []),
        (b"l4:spami1ee", [b"spam", 1]),
        (b"de", {}),
        (b"d3:cow3:moo4:spaml1:a1:bee", {b"cow": b"moo", b"spam": [b"a", b"b"]}),
    ],
)
def test_decode_valid_values(data: bytes, value: object) -> None:
    """Canonical bencode decodes to ints, raw bytes, lists and bytes-keyed dicts."""
    assert bencode.decode(data) == value


def test_strings_stay_bytes() -> None:
    """Byte strings are never decoded to text, even when they are valid UTF-8."""
    decoded = bencode.decode(b"d4:name5:hello4:listl2:hiee")
    assert decoded == {b"name": b"hello", b"list": [b"hi"]}
    assert all(isinstance(k, bytes) for k in decoded)


def test_encode_sorts_keys() -> None:
    """Encoding emits dict keys in sorted (raw byte) order, as BEP 3 requires."""
    assert bencode.encode({b"zz": 1, b"a": 2, b"B": 3}) == b"d1:Bi3e1:ai2e2:zzi1ee"


def test_encode_rejects_unsupported_types() -> None:
    """A value bencode cannot hold (a float) raises BencodeError, not a library error."""
    with pytest.raises(BencodeError):
        bencode.encode({b"x": 1.5})


@pytest.mark.parametrize(
    "data",
    [
        b"i03e",  # leading zero
        b"i-0e",  # negative zero
        b"i00e",
        b"ie",  # no digits
        b"i-e",
        b"i1.5e",
        b"i 1e",
        b"i+1e",
        b"i12",  # unterminated
        b"01:a",  # string length with a leading zero
        b"-1:a",
        b"5:abc",  # runs past the end
        b"4",
        b"x",
        b"l",
        b"d",
        b"d3:fooe",  # key without value
        b"di1ei2ee",  # integer key
        b"dl1:ae1:be",  # list key
        b"d1:ai1e1:ai2ee",  # duplicate key
        b"e",
        b"",
    ],
)
def test_malformed_input_raises_bencode_error(data: bytes) -> None:
    """Every malformation, including non-canonical integers, raises BencodeError."""
    with pytest.raises(BencodeError):
        bencode.decode(data)


@pytest.mark.parametrize("data", [b"i1ei2e", b"lee", b"4:spamx", b"de\n", b"i1e "])
def test_trailing_data_rejected(data: bytes) -> None:
    """Anything after one complete value is an error, even a newline."""
    with pytest.raises(BencodeError, match="trailing"):
        bencode.decode(data)


def test_non_bytes_input_rejected() -> None:
    """Text instead of bytes is refused with BencodeError."""
    with pytest.raises(BencodeError):
        bencode.decode("i1e")  # type: ignore[arg-type]


def test_unsorted_keys_are_accepted() -> None:
    """Dicts whose keys are out of order still decode (real torrents have them)."""
    assert bencode.decode(b"d1:bi1e1:ai2ee") == {b"a": 2, b"b": 1}


def test_depth_limit_boundary() -> None:
    """Nesting up to ``max_depth`` decodes and one level more is refused."""
    limits = BencodeLimits(max_depth=5)
    ok = b"l" * 5 + b"e" * 5
    assert bencode.decode(ok, limits) == [[[[[]]]]]
    with pytest.raises(BencodeError, match="deeper"):
        bencode.decode(b"l" * 6 + b"e" * 6, limits)


def test_hostile_depth_does_not_recurse() -> None:
    """A million nested lists raise BencodeError, not RecursionError."""
    with pytest.raises(BencodeError):
        bencode.decode(b"l" * 1_000_000 + b"e" * 1_000_000)


def test_default_depth_limit_applies() -> None:
    """The default limit refuses a document one level deeper than configured."""
    depth = BencodeLimits().max_depth
    bencode.decode(b"l" * depth + b"e" * depth)
    with pytest.raises(BencodeError):
        bencode.decode(b"d1:a" * (depth + 1) + b"i1e" + b"e" * (depth + 1))


def test_input_size_cap() -> None:
    """Input longer than ``max_input`` is refused before any parsing."""
    limits = BencodeLimits(max_input=10)
    assert bencode.decode(b"6:abcdef", limits) == b"abcdef"
    with pytest.raises(BencodeError, match="exceeds"):
        bencode.decode(b"9:abcdefghi", limits)


def test_bencode_error_is_a_project_error() -> None:
    """BencodeError belongs to the project's hierarchy (and is a ValueError)."""
    assert issubclass(BencodeError, P2PShareError)
    assert issubclass(BencodeError, ValueError)


def test_decode_prefix_returns_end_offset() -> None:
    """decode_prefix decodes the leading value and says where raw bytes begin (BEP 9)."""
    data = b"d8:msg_typei1e5:piecei0ee" + b"RAWPAYLOAD"
    value, end = bencode.decode_prefix(data)
    assert value == {b"msg_type": 1, b"piece": 0}
    assert data[end:] == b"RAWPAYLOAD"


def test_value_end_finds_each_value() -> None:
    """value_end walks one value at a time through a concatenation."""
    data = b"i1e4:spamli2eed1:ai3ee"
    ends = []
    pos = 0
    while pos < len(data):
        pos = bencode.value_end(data, pos)
        ends.append(pos)
    assert ends == [3, 9, 14, len(data)]


def test_find_info_span_returns_received_bytes_for_unsorted_info() -> None:
    """The info span is the bytes as received, so its hash differs from a re-encoding's."""
    info_raw = b"d6:lengthi5e4:name1:x12:piece lengthi16384e6:pieces20:" + b"\x01" * 20 + b"e"
    # Keys in info are out of order ("name" before "length" would be sorted; here
    # "length" < "name" is fine, so swap two to make it unsorted).
    unsorted = b"d4:name1:x6:lengthi5e12:piece lengthi16384e6:pieces20:" + b"\x01" * 20 + b"e"
    assert bencode.encode(bencode.decode(unsorted)) == info_raw
    torrent = b"d8:announce3:url4:info" + unsorted + b"7:comment2:hie"
    start, end = bencode.find_info_span(torrent)
    assert torrent[start:end] == unsorted
    assert hashlib.sha1(torrent[start:end]).digest() != hashlib.sha1(info_raw).digest()


def test_find_info_span_skips_values_that_contain_the_word_info() -> None:
    """A string value "4:info" before the real key does not fool the scanner."""
    torrent = b"d1:a4:info1:bd4:infoi1ee4:infod1:xi2eee"
    start, end = bencode.find_info_span(torrent)
    assert torrent[start:end] == b"d1:xi2ee"


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"d1:ai1ee", "no 'info'"),
        (b"li1ee", "dict"),
        (b"d4:infodee1:x", "trailing"),
        (b"d4:infod", "truncated"),
    ],
)
def test_find_info_span_errors(data: bytes, match: str) -> None:
    """A document without a top-level info dict, or malformed, raises BencodeError."""
    with pytest.raises(BencodeError, match=match):
        bencode.find_info_span(data)


@pytest.mark.parametrize("data", [b"i-0e", b"i03e", b"01:a", b"d1:ai1e1:ai2ee", b"di1ei2ee"])
def test_value_end_alone_is_strict(data: bytes) -> None:
    """The scanner used on its own (BEP 9 prefixes, info spans) refuses what decode refuses."""
    with pytest.raises(BencodeError):
        bencode.value_end(data, 0)
